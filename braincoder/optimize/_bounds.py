"""Box bounds of each model parameter, used to keep trial points of fits in range."""

from __future__ import annotations

import numpy as np


def parameter_bounds(model):
    """Lower and upper bound of every parameter label (natural space).

    Bounds come from the parameter transforms (e.g. ``sd > 0``, HRF delay within its
    bounds). For 2D models, positions are kept within 1.5× the field's extent and widths
    between 0.8 pixel spacings and the field's width, so that voxels without signal do not
    drift off to degenerate values.

    Parameters
    ----------
    model : EncodingModel
        The model.

    Returns
    -------
    lower, upper : ndarray, shape (n_parameters,)
        Bounds (``-inf``/``inf`` where unbounded).
    """
    labels = model.get_parameter_labels()
    transforms = model.get_parameter_transforms()
    lower = np.array([transforms[label].lower for label in labels], dtype=np.float64)
    upper = np.array([transforms[label].upper for label in labels], dtype=np.float64)
    grid = getattr(model, "grid_coordinates", None)
    if grid is not None:
        coordinates = grid.to_numpy(dtype=np.float64)
        extent = np.abs(coordinates).max()
        width = coordinates.max(axis=0) - coordinates.min(axis=0)
        spacing = _pixel_spacing(coordinates)
        for label in ("x", "y"):
            if label in labels:
                index = labels.index(label)
                lower[index] = max(lower[index], -1.5 * extent)
                upper[index] = min(upper[index], 1.5 * extent)
        if "sd" in labels:
            index = labels.index("sd")
            lower[index] = max(lower[index], 0.8 * spacing)
            upper[index] = min(upper[index], float(width.max()))
    # Strict bounds of transforms (sd > 0) are open: keep a small margin inside them.
    finite = np.isfinite(lower) & np.isfinite(upper)
    margin = np.where(finite, 1e-6 * (upper - lower), 1e-6)
    return np.where(np.isfinite(lower), lower + margin, lower), np.where(
        np.isfinite(upper), upper - margin, upper
    )


def _pixel_spacing(coordinates):
    """Smallest non-zero distance between distinct x (or y) positions of the grid."""
    spacings = []
    for column in range(coordinates.shape[1]):
        values = np.unique(coordinates[:, column])
        if values.size > 1:
            spacings.append(np.diff(values).min())
    return float(min(spacings)) if spacings else 1.0
