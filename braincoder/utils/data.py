"""Example data shipped inside the package (no download)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = ["load_szinte2024"]

SZINTE2024_TR = 1.317025


def _szinte2024_file(name):
    return files("braincoder") / "data" / "szinte2024" / name


def load_szinte2024(resize_factor=1.0, best_voxels=None):
    """Load the V1 example data of Szinte et al. (2024): bar stimulus, BOLD and a pRF fit.

    BOLD time series of 2,365 voxels in primary visual cortex (150 volumes, TR 1.317025 s)
    recorded while a bar swept through the visual field (80 × 45 pixels, about ±8.9° × ±5°),
    and the Gaussian pRF fit of every voxel published with the public braincoder. The
    files ship inside the package (``braincoder/data/szinte2024``), nothing is downloaded.

    The data are from Szinte et al. (2024), distributed with the public braincoder under
    the MIT license (Copyright (c) 2015 Tomas Knapen; see the ``LICENSE`` file next to
    the data). Cite Szinte et al. (2024) and braincoder when you use them.

    Parameters
    ----------
    resize_factor : float, default 1.0
        Shrink the stimulus by this factor in both directions (``scipy.ndimage.zoom`` by
        ``1 / resize_factor``); the pixel coordinates are interpolated the same way. E.g.
        ``2.5`` gives 32 × 18 pixels.
    best_voxels : int, optional
        Keep only the ``best_voxels`` voxels with the highest published R², best first.

    Returns
    -------
    dict
        ``stimulus``
            ndarray, shape (150, n_x, n_y), float32: the bar per frame (0 outside it;
            inside, values up to 9 as stored in the published design matrix).
        ``paradigm``
            DataFrame, time × pixel: ``stimulus`` flattened in the order of
            ``grid_coordinates`` (index ``time``, columns ``pixel``), ready for
            :class:`~braincoder.models.GaussianPRF2DWithHRF`.
        ``grid_coordinates``
            DataFrame with columns ``x`` and ``y``: the centre of each pixel in degrees.
        ``v1_timeseries``
            DataFrame, time × voxel (float32; integer voxel labels).
        ``prf_pars``
            DataFrame, voxel × (``x``, ``y``, ``sd``, ``baseline``, ``amplitude``): the
            published fit. Its ``amplitude`` and ``baseline`` are in the units of the public
            braincoder's model (its own HRF and receptive-field normalisation); ``x``,
            ``y`` and ``sd`` compare directly.
        ``r2``
            Series: the published R² per voxel (NaN for 1,086 voxels without one).
        ``tr``
            float: repetition time in seconds.

    Raises
    ------
    ValueError
        For a non-positive ``resize_factor`` or ``best_voxels``.

    Examples
    --------
    >>> from braincoder.utils.data import load_szinte2024
    >>> data = load_szinte2024(best_voxels=10)
    >>> data["v1_timeseries"].shape, data["paradigm"].shape
    ((150, 10), (150, 3600))
    """
    resize_factor = float(resize_factor)
    if not resize_factor > 0:
        raise ValueError(f"resize_factor must be positive, got {resize_factor!r}")
    with _szinte2024_file("dm_gazecenter.npz").open("rb") as handle:
        stimulus = np.load(handle, allow_pickle=False)["arr_0"].astype(np.float32)
    with _szinte2024_file("grid_coordinates.tsv").open("rb") as handle:
        coordinates = pd.read_csv(handle, sep="\t").astype(np.float32)
    with _szinte2024_file("gauss_parameters.tsv").open("rb") as handle:
        prf_pars = pd.read_csv(handle, sep="\t", index_col="source").astype(np.float32)
    with _szinte2024_file("mask-v1_bold.tsv.gz").open("rb") as handle:
        bold = pd.read_csv(handle, sep="\t", index_col="time", compression="gzip")
    bold = bold.astype(np.float32)
    bold.columns = pd.Index(bold.columns.astype(int), name="voxel")
    prf_pars.index = pd.Index(prf_pars.index.astype(int), name="voxel")

    n_x, n_y = stimulus.shape[1:]
    x = coordinates["x"].to_numpy().reshape(n_x, n_y)
    y = coordinates["y"].to_numpy().reshape(n_x, n_y)
    if resize_factor != 1.0:
        zoom = 1.0 / resize_factor
        stimulus = np.stack([ndimage.zoom(frame, zoom, order=1) for frame in stimulus])
        stimulus = stimulus.astype(np.float32)
        # Coordinates are linear in the pixel index: linear interpolation keeps them exact.
        x = ndimage.zoom(x, zoom, order=1)
        y = ndimage.zoom(y, zoom, order=1)
        coordinates = pd.DataFrame({"x": x.ravel(), "y": y.ravel()}).astype(np.float32)
    coordinates.index = pd.RangeIndex(len(coordinates), name="pixel")

    if best_voxels is not None:
        if int(best_voxels) < 1:
            raise ValueError(f"best_voxels must be a positive number, got {best_voxels!r}")
        best = prf_pars["r2"].sort_values(ascending=False).index[: int(best_voxels)]
        bold = bold.loc[:, best]
        prf_pars = prf_pars.loc[best]

    time = pd.RangeIndex(len(stimulus), name="time")
    bold.index = time
    paradigm = pd.DataFrame(stimulus.reshape(len(stimulus), -1), index=time,
                            columns=pd.RangeIndex(stimulus[0].size, name="pixel"))
    r2 = prf_pars["r2"].rename("r2")
    return {
        "stimulus": stimulus,
        "paradigm": paradigm,
        "grid_coordinates": coordinates,
        "v1_timeseries": bold,
        "prf_pars": prf_pars.drop(columns="r2"),
        "r2": r2,
        "tr": SZINTE2024_TR,
    }
