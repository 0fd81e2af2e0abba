"""Goodness of fit per voxel: R² and Pearson correlation.

The R²-mixture voxel selection of :mod:`braincoder.utils.selection` is importable from
here too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .formatting import to_frame
from .labels import align, is_unlabelled
from .selection import (  # noqa: F401 - re-exported
    fit_r2_mixture,
    r2_fdr_threshold,
    r2_noise_tail_threshold,
    r2_p_signal_threshold,
)
from .validation import check_same_index, format_labels, warn_constant


def _aligned(data, predictions):
    """Return data and predictions as frames with matching rows and columns."""
    data = to_frame(data, "data", columns_name="voxel")
    predictions = to_frame(predictions, "predictions", columns_name="voxel")
    if predictions.shape[1] != data.shape[1]:
        raise ValueError(
            f"data has {data.shape[1]} voxels but predictions have {predictions.shape[1]}"
        )
    check_same_index(data, predictions, "data", "predictions")
    if not (is_unlabelled(data.columns) or is_unlabelled(predictions.columns)):
        present = set(predictions.columns)
        missing = [c for c in data.columns if c not in present]
        if missing:
            raise ValueError(
                f"predictions lack voxels of data: {format_labels(missing)}"
            )
    predictions = align(predictions, data.columns, "predictions voxels", "data voxels", axis=1)
    return data, predictions


def get_rsq(data, predictions, zerovar_nan=True):
    """Coefficient of determination per voxel, R² = 1 − SS_res / SS_tot.

    Parameters
    ----------
    data : DataFrame or array, shape (n_timepoints, n_voxels)
        Measured time series.
    predictions : DataFrame or array, shape (n_timepoints, n_voxels)
        Model predictions for the same time points and voxels (matched by voxel label).
    zerovar_nan : bool, default True
        Give NaN (and warn) for voxels whose data has zero variance.

    Returns
    -------
    Series
        R² indexed by the data's voxel labels, named ``"r2"``.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils import get_rsq
    >>> y = np.array([[1.0], [2.0], [3.0]])
    >>> float(get_rsq(y, y).iloc[0])
    1.0
    """
    data, predictions = _aligned(data, predictions)
    y = data.to_numpy(dtype=np.float64)
    p = predictions.to_numpy(dtype=np.float64)
    ss_res = ((y - p) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    constant = ss_tot <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    if constant.any():
        if zerovar_nan:
            warn_constant(data.columns[constant])
        r2[constant] = np.nan
    return pd.Series(r2, index=data.columns, name="r2")


def get_r(data, predictions):
    """Pearson correlation per voxel between data and predictions.

    Parameters
    ----------
    data : DataFrame or array, shape (n_timepoints, n_voxels)
        Measured time series.
    predictions : DataFrame or array, shape (n_timepoints, n_voxels)
        Model predictions.

    Returns
    -------
    Series
        r indexed by the data's voxel labels, named ``"r"``; NaN (with a warning) where
        either side is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils import get_r
    >>> float(get_r(np.arange(5.0), 2 * np.arange(5.0)).iloc[0])
    1.0
    """
    data, predictions = _aligned(data, predictions)
    y = data.to_numpy(dtype=np.float64)
    p = predictions.to_numpy(dtype=np.float64)
    y = y - y.mean(axis=0)
    p = p - p.mean(axis=0)
    denominator = np.sqrt((y**2).sum(axis=0) * (p**2).sum(axis=0))
    constant = denominator <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (y * p).sum(axis=0) / denominator
    if constant.any():
        warn_constant(data.columns[constant], "data or predictions")
        r[constant] = np.nan
    return pd.Series(r, index=data.columns, name="r")
