"""pandas in, pandas out: conversion of the caller's inputs to labelled frames.

Arrays, Series and DataFrames are accepted at every public boundary and converted here,
once. Labels the caller gave are kept exactly (names, dtypes, MultiIndex); arrays get the
documented default labels:

============  ==========================  ===========================
input         rows (index name)           columns (columns name)
============  ==========================  ===========================
paradigm      ``time`` (0 … n−1)          stimulus dimension / pixel
data          ``time`` (0 … n−1)          ``voxel`` (0 … m−1)
parameters    ``voxel`` (0 … m−1)         the model's parameter labels
weights       basis function              ``voxel``
============  ==========================  ===========================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import check_columns, check_finite

TIME = "time"
VOXEL = "voxel"
PARAMETER = "parameter"
STIMULUS_DIMENSION = "stimulus_dimension"

# Labels used by older braincoder versions; accepted and kept as the caller gave them.
LEGACY_VOXEL_NAMES = ("source", "unit")
LEGACY_TIME_NAMES = ("frame",)


def to_frame(values, what, index_name=TIME, columns_name=None, columns=None, index=None):
    """Convert an array, Series or DataFrame to a DataFrame with labels.

    Parameters
    ----------
    values : array-like, Series or DataFrame
        1D values become one column; 2D values are rows × columns.
    what : str
        Name of the input for error messages.
    index_name : str, default "time"
        Name given to a default row index.
    columns_name : str, optional
        Name given to default columns.
    columns : sequence, optional
        Column labels for array input.
    index : sequence or Index, optional
        Row labels for array input.

    Returns
    -------
    DataFrame
        A DataFrame; a DataFrame input is returned as is (not copied, never modified).

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For arrays with more than two dimensions or labels of the wrong length.
    """
    if isinstance(values, pd.DataFrame):
        return values
    if isinstance(values, pd.Series):
        frame = values.to_frame()
        if values.name is None:
            frame.columns = pd.Index([0], name=columns_name)
        return frame
    array = np.asarray(values)
    if array.dtype == object:
        raise TypeError(f"{what} must be numeric, found an array of Python objects")
    if array.ndim == 0:
        raise ValueError(f"{what} must be 1D or 2D, got a scalar")
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise ValueError(f"{what} must be 1D or 2D, got shape {array.shape}")
    if index is None:
        index = pd.RangeIndex(array.shape[0], name=index_name)
    elif not isinstance(index, pd.Index):
        index = pd.Index(index, name=index_name)
    if len(index) != array.shape[0]:
        raise ValueError(f"{what}: {array.shape[0]} rows but {len(index)} row labels")
    if columns is None:
        columns = pd.RangeIndex(array.shape[1], name=columns_name)
    elif not isinstance(columns, pd.Index):
        columns = pd.Index(columns, name=columns_name)
    if len(columns) != array.shape[1]:
        raise ValueError(
            f"{what}: {array.shape[1]} columns but {len(columns)} column labels were expected"
        )
    return pd.DataFrame(array, index=index, columns=columns)


def format_data(data, what="data"):
    """Return data (time × voxel) as a finite float DataFrame.

    Parameters
    ----------
    data : array-like or DataFrame, shape (n_timepoints, n_voxels)
        Measured time series.
    what : str, default "data"
        Name used in error messages.

    Returns
    -------
    DataFrame
        The caller's frame (labels untouched), or a labelled frame for array input.

    Raises
    ------
    ValueError
        If any value is NaN or infinite (the message names the voxel and time point), or
        if the data has no rows or no columns.
    """
    frame = to_frame(data, what, index_name=TIME, columns_name=VOXEL)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {frame.shape})")
    check_finite(frame, what)
    return frame


def format_parameters(parameters, labels, what="parameters", index=None):
    """Return parameters (voxel × parameter) with columns in the model's label order.

    Parameters
    ----------
    parameters : array-like or DataFrame, shape (n_voxels, n_parameters)
        Parameter values. A DataFrame must have exactly the model's labels (any order).
        An array must have one column per label, in label order; a 1D array is one row,
        or one value per voxel when the model has a single label.
    labels : sequence of str
        The model's parameter labels.
    what : str, default "parameters"
        Name used in error messages.
    index : Index, optional
        Voxel labels for array input (e.g. the data's columns).

    Returns
    -------
    DataFrame
        Parameters with columns ordered as ``labels``.

    Raises
    ------
    ValueError
        For missing or extra labels, a wrong number of columns, or NaN/inf values.
    """
    labels = list(labels)
    if isinstance(parameters, pd.DataFrame):
        frame = check_columns(parameters, labels, what)
    else:
        array = np.asarray(parameters, dtype=float)
        if array.ndim == 1 and len(labels) == array.shape[0]:
            array = array[np.newaxis, :]
        elif array.ndim == 1 and len(labels) == 1:
            array = array[:, np.newaxis]
        if array.ndim != 2 or array.shape[1] != len(labels):
            raise ValueError(
                f"{what} must have one column per parameter label {labels}, got shape "
                f"{array.shape}"
            )
        if index is not None and len(index) != array.shape[0]:
            index = None
        frame = to_frame(
            array,
            what,
            index_name=VOXEL,
            columns=pd.Index(labels, name=PARAMETER),
            index=index,
        )
    check_finite(frame, what)
    return frame


def voxel_index(n_voxels):
    """Return the default voxel index ``0 … n_voxels − 1`` named ``voxel``.

    Parameters
    ----------
    n_voxels : int
        Number of voxels.

    Returns
    -------
    RangeIndex
        The default labels.
    """
    return pd.RangeIndex(n_voxels, name=VOXEL)


def series_by_voxel(values, voxels, name):
    """Return a per-voxel result as a Series indexed by the caller's voxel labels.

    Parameters
    ----------
    values : array-like, shape (n_voxels,)
        One value per voxel.
    voxels : Index
        Voxel labels (the data's columns).
    name : str
        Series name (e.g. ``"r2"``).

    Returns
    -------
    Series
        Values indexed by voxel.
    """
    return pd.Series(np.asarray(values), index=voxels, name=name)
