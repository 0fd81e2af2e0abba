"""Run handling before a fit: detrending, scaling, averaging or concatenating runs.

Each step takes and returns time × voxel DataFrames and keeps the voxel labels. The usual
order, which :func:`prepare_runs` follows, is per run: detrend (:func:`detrend`, a
polynomial and/or a discrete-cosine high-pass as in SPM), scale
(:func:`percent_signal_change` or :func:`zscore`), then combine the runs
(:func:`average_runs` or :func:`concatenate_runs`) with the paradigm matched by
:func:`match_paradigm`. Detrending keeps each voxel's mean, so percent signal change can
follow it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .formatting import TIME
from .validation import check_finite, format_labels

__all__ = ["detrend", "drift_regressors", "percent_signal_change", "zscore", "average_runs",
           "concatenate_runs", "match_paradigm", "prepare_runs"]


def _frame(data, what):
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(np.asarray(data, dtype=np.float64))
        data.index.name = TIME
    if data.shape[0] < 2 or data.shape[1] < 1:
        raise ValueError(f"{what}: expected at least 2 time points and 1 voxel, got shape "
                         f"{data.shape}")
    check_finite(data, what)
    return data


def _name(frame, position):
    source = frame.attrs.get("source") if isinstance(frame, pd.DataFrame) else None
    label = f"run {position + 1}"
    return f"{label} ({', '.join(map(str, source))})" if source else label


def drift_regressors(n_timepoints, order=None, high_pass=None, tr=None):
    """Slow-drift regressors: Legendre polynomials and discrete cosines, without a constant.

    Parameters
    ----------
    n_timepoints : int
        Number of time points of the run.
    order : int, optional
        Highest polynomial order (1: linear, 2: linear and quadratic, ...).
    high_pass : float, optional
        Cutoff period in seconds of a discrete-cosine high-pass filter (SPM's default is
        128 s): the cosines :math:`\\sqrt{2/n}\\cos(\\pi k (2t + 1) / 2n)` for
        :math:`k = 1, \\ldots, \\lfloor 2 n\\, TR / \\text{cutoff} \\rfloor`, as SPM's
        ``spm_filter`` builds them (nilearn's ``cosine`` drift model is the same basis
        with the cutoff given as a frequency).
    tr : float, optional
        Repetition time in seconds; required with ``high_pass``.

    Returns
    -------
    ndarray, shape (n_timepoints, n_regressors)
        The regressors (polynomials first); zero columns when nothing is asked.

    Raises
    ------
    ValueError
        For a negative order, a non-positive cutoff or TR, ``high_pass`` without ``tr``.

    Examples
    --------
    >>> from braincoder.utils.preprocessing import drift_regressors
    >>> drift_regressors(100, order=2, high_pass=128.0, tr=2.0).shape
    (100, 5)
    """
    n = int(n_timepoints)
    columns = []
    if order is not None:
        if int(order) != order or order < 0:
            raise ValueError(f"detrend order must be a non-negative integer, got {order!r}")
        grid = np.linspace(-1.0, 1.0, n)
        columns += [np.polynomial.legendre.Legendre.basis(k)(grid)
                    for k in range(1, int(order) + 1)]
    if high_pass is not None:
        if tr is None:
            raise ValueError("a high-pass filter needs the repetition time (tr); the file "
                             "metadata does not state it, give it explicitly")
        if not (np.isfinite(high_pass) and high_pass > 0 and np.isfinite(tr) and tr > 0):
            raise ValueError(f"high_pass and tr must be positive seconds, got high_pass="
                             f"{high_pass!r}, tr={tr!r}")
        n_cosines = int(np.floor(2.0 * n * tr / high_pass))
        times = np.arange(n)
        columns += [np.sqrt(2.0 / n) * np.cos(np.pi * k * (2 * times + 1) / (2 * n))
                    for k in range(1, n_cosines + 1)]
    return np.stack(columns, axis=1) if columns else np.zeros((n, 0))


def detrend(data, order=1, high_pass=None, tr=None):
    """Remove slow drifts from each voxel, keeping its mean.

    Each voxel is regressed on a constant and the :func:`drift_regressors`; the fitted
    drift (without the constant) is subtracted, so the mean stays and percent signal
    change can follow.

    Parameters
    ----------
    data : DataFrame, shape (n_timepoints, n_voxels)
        One run.
    order : int or None, default 1
        Highest polynomial order removed (0 or None: no polynomial).
    high_pass : float, optional
        Cutoff period in seconds of a discrete-cosine high-pass filter.
    tr : float, optional
        Repetition time in seconds (needed with ``high_pass``).

    Returns
    -------
    DataFrame
        Detrended data with the labels of ``data``.

    Raises
    ------
    ValueError
        For non-finite values (naming the voxel), as many drift regressors as time points,
        or the argument errors of :func:`drift_regressors`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from braincoder.utils.preprocessing import detrend
    >>> run = pd.DataFrame({"v1": 10 + np.arange(5.0)})
    >>> detrend(run, order=1)["v1"].round(6).tolist()
    [12.0, 12.0, 12.0, 12.0, 12.0]
    """
    data = _frame(data, "data")
    drifts = drift_regressors(len(data), order or None, high_pass, tr)
    if drifts.shape[1] == 0:
        return data.copy()
    if drifts.shape[1] >= len(data) - 1:
        raise ValueError(f"{drifts.shape[1]} drift regressors for {len(data)} time points; "
                         "lower the polynomial order or raise the high-pass cutoff")
    drifts = drifts - drifts.mean(axis=0)
    values = data.to_numpy(dtype=np.float64)
    centred = values - values.mean(axis=0)
    coefficients = np.linalg.lstsq(drifts, centred, rcond=None)[0]
    return pd.DataFrame(values - drifts @ coefficients, index=data.index, columns=data.columns)


def percent_signal_change(data):
    """Express each voxel in percent of its mean: ``100 * (data / mean - 1)``.

    Parameters
    ----------
    data : DataFrame, shape (n_timepoints, n_voxels)
        One run, in scanner units (positive means).

    Returns
    -------
    DataFrame
        Percent signal change, mean 0, with the labels of ``data``.

    Raises
    ------
    ValueError
        For voxels whose mean is zero (e.g. empty medial-wall vertices or voxels outside
        the brain), naming them: select the voxels first.

    Warns
    -----
    RuntimeWarning
        For voxels with a negative mean (data already demeaned?), naming them.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.preprocessing import percent_signal_change
    >>> percent_signal_change(pd.DataFrame({"v1": [99.0, 101.0]}))["v1"].round(6).tolist()
    [-1.0, 1.0]
    """
    data = _frame(data, "data")
    values = data.to_numpy(dtype=np.float64)
    mean = values.mean(axis=0)
    zero = np.abs(mean) <= np.finfo(np.float64).tiny
    if zero.any():
        raise ValueError(f"percent signal change: {int(zero.sum())} voxels have mean 0 "
                         f"({format_labels(data.columns[zero])}); select voxels with "
                         "signal first (data.loc[:, data.mean() != 0])")
    negative = mean < 0
    if negative.any():
        warnings.warn(f"percent signal change: {int(negative.sum())} voxels have a negative "
                      f"mean ({format_labels(data.columns[negative])}); percent signal change "
                      "expects data in scanner units", RuntimeWarning, stacklevel=2)
    return pd.DataFrame(100.0 * (values / mean - 1.0), index=data.index, columns=data.columns)


def zscore(data, ddof=0):
    """Standardise each voxel to mean 0 and standard deviation 1.

    Parameters
    ----------
    data : DataFrame, shape (n_timepoints, n_voxels)
        One run.
    ddof : int, default 0
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    DataFrame
        z-scores with the labels of ``data``.

    Raises
    ------
    ValueError
        For constant voxels (standard deviation 0), naming them.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.preprocessing import zscore
    >>> zscore(pd.DataFrame({"v1": [1.0, 3.0]}))["v1"].tolist()
    [-1.0, 1.0]
    """
    data = _frame(data, "data")
    values = data.to_numpy(dtype=np.float64)
    mean = values.mean(axis=0)
    sd = values.std(axis=0, ddof=ddof)
    constant = ~(sd > 1e-12 * np.maximum(np.abs(mean), 1.0))
    if constant.any():
        raise ValueError(f"z-score: {int(constant.sum())} voxels are constant "
                         f"({format_labels(data.columns[constant])}); select voxels with "
                         "signal first")
    return pd.DataFrame((values - mean) / sd, index=data.index, columns=data.columns)


def _check_runs(runs, truncate, what):
    runs = list(runs)
    if not runs:
        raise ValueError(f"{what}: no runs given")
    frames = [_frame(run, _name(run, i)) for i, run in enumerate(runs)]
    first = frames[0]
    for i, frame in enumerate(frames[1:], start=1):
        if not frame.columns.equals(first.columns):
            if len(frame.columns) != len(first.columns):
                detail = f"{len(frame.columns)} voxels, {_name(runs[0], 0)} has " \
                         f"{len(first.columns)}"
            else:
                where = np.flatnonzero(frame.columns != first.columns)
                detail = (f"voxel label {frame.columns[where[0]]!r} where "
                          f"{_name(runs[0], 0)} has {first.columns[where[0]]!r}"
                          if len(where) else "voxel labels of another type")
            raise ValueError(f"{what}: {_name(runs[i], i)} has {detail}; runs must hold the "
                             "same voxels (same hemispheres, vertices and order)")
    lengths = [len(frame) for frame in frames]
    if len(set(lengths)) > 1 and truncate is not None:
        if not truncate:
            listed = ", ".join(f"{_name(run, i)}: {n}" for i, (run, n) in
                               enumerate(zip(runs, lengths, strict=True)))
            raise ValueError(f"{what}: runs have different lengths ({listed}); trim them, "
                             "pass truncate=True to keep the first "
                             f"{min(lengths)} time points of each, or concatenate them")
        frames = [frame.iloc[:min(lengths)] for frame in frames]
    return frames


def average_runs(runs, truncate=False):
    """Average runs of the same paradigm time point by time point.

    Parameters
    ----------
    runs : sequence of DataFrame
        Runs with the same voxels, each time × voxel.
    truncate : bool, default False
        Runs of different lengths raise an error unless True, which keeps the first
        ``min(length)`` time points of each.

    Returns
    -------
    DataFrame
        The mean run, with the time index of the first run and the common voxel labels.

    Raises
    ------
    ValueError
        For runs with different voxels (naming the run, with its file names when it came
        from a reader) or, without ``truncate``, different lengths.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.preprocessing import average_runs
    >>> runs = [pd.DataFrame({"v": [0.0, 2.0]}), pd.DataFrame({"v": [2.0, 4.0]})]
    >>> average_runs(runs)["v"].tolist()
    [1.0, 3.0]
    """
    frames = _check_runs(runs, bool(truncate), "average_runs")
    mean = np.mean([frame.to_numpy(dtype=np.float64) for frame in frames], axis=0)
    return pd.DataFrame(mean, index=frames[0].index, columns=frames[0].columns)


def concatenate_runs(runs):
    """Stack runs in time (lengths may differ).

    Parameters
    ----------
    runs : sequence of DataFrame
        Runs with the same voxels, each time × voxel.

    Returns
    -------
    DataFrame
        All time points, run after run, with a new ``time`` index 0 … n−1 and the common
        voxel labels.

    Raises
    ------
    ValueError
        For runs with different voxels, naming the run.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.preprocessing import concatenate_runs
    >>> runs = [pd.DataFrame({"v": [0.0, 1.0]}), pd.DataFrame({"v": [2.0, 3.0, 4.0]})]
    >>> concatenate_runs(runs).shape
    (5, 1)
    """
    frames = _check_runs(runs, None, "concatenate_runs")
    values = np.concatenate([frame.to_numpy(dtype=np.float64) for frame in frames])
    return pd.DataFrame(values, index=pd.RangeIndex(len(values), name=TIME),
                        columns=frames[0].columns)


def match_paradigm(paradigms, lengths, combine, truncate=False):
    """Paradigm of combined runs: one repeated, or one per run concatenated.

    Parameters
    ----------
    paradigms : DataFrame or sequence of DataFrame
        One paradigm for every run, or one per run (in run order).
    lengths : sequence of int
        Number of time points of each run.
    combine : {"average", "concatenate"}
        How the runs are combined.
    truncate : bool, default False
        With ``combine="average"``: runs of different lengths are cut to the shortest
        (otherwise an error), and so is the paradigm.

    Returns
    -------
    DataFrame
        ``average``: the paradigm of one run (all given paradigms must be equal);
        ``concatenate``: the paradigms stacked, with a ``time`` index 0 … n−1.

    Raises
    ------
    ValueError
        For a paradigm whose length differs from its run's, several paradigms that are
        not one per run, differing paradigms or (without ``truncate``) different run
        lengths for averaged runs.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.preprocessing import match_paradigm
    >>> match_paradigm(pd.DataFrame({"x": [0.0, 1.0]}), [2, 2], "concatenate")["x"].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    if combine not in ("average", "concatenate"):
        raise ValueError(f"combine must be 'average' or 'concatenate', got {combine!r}")
    given = [paradigms] if isinstance(paradigms, pd.DataFrame | pd.Series | np.ndarray) \
        else list(paradigms)
    given = [p if isinstance(p, pd.DataFrame) else pd.DataFrame(p) for p in given]
    lengths = [int(n) for n in lengths]
    if len(given) not in (1, len(lengths)):
        raise ValueError(f"{len(given)} paradigms for {len(lengths)} runs; give one paradigm "
                         "for every run or one per run")
    if len(given) == 1:
        given = given * len(lengths)
    for i, (paradigm, n) in enumerate(zip(given, lengths, strict=True)):
        if len(paradigm) != n:
            raise ValueError(f"paradigm of run {i + 1} has {len(paradigm)} time points but "
                             f"the run has {n}")
    if combine == "concatenate":
        values = np.concatenate([p.to_numpy() for p in given])
        return pd.DataFrame(values, index=pd.RangeIndex(len(values), name=TIME),
                            columns=given[0].columns)
    if len(set(lengths)) > 1 and not truncate:
        raise ValueError(f"runs have different lengths {lengths}; averaging needs equal "
                         "lengths (truncate to the shortest, or concatenate them)")
    n = min(lengths)
    first = given[0].iloc[:n]
    for i, paradigm in enumerate(given[1:], start=2):
        if paradigm.shape[1] != first.shape[1] or not np.allclose(
                paradigm.iloc[:n].to_numpy(float), first.to_numpy(float)):
            raise ValueError(f"paradigm of run {i} differs from that of run 1; averaged "
                             "runs must share one paradigm (concatenate them instead)")
    return first


def prepare_runs(runs, paradigms=None, order=None, high_pass=None, tr=None, scale=None,
                 combine=None, truncate=False):
    """Detrend and scale each run, then average or concatenate them with their paradigm.

    Parameters
    ----------
    runs : DataFrame or sequence of DataFrame
        Time × voxel runs with the same voxels.
    paradigms : DataFrame or sequence of DataFrame, optional
        One paradigm for all runs or one per run (see :func:`match_paradigm`).
    order : int, optional
        Polynomial detrending order (see :func:`detrend`).
    high_pass : float, optional
        Discrete-cosine high-pass cutoff in seconds.
    tr : float, optional
        Repetition time in seconds (needed with ``high_pass``).
    scale : {None, "psc", "zscore"}, optional
        Percent signal change or z-scoring per run.
    combine : {None, "average", "concatenate"}, optional
        How to combine several runs; required when there are several.
    truncate : bool, default False
        With ``combine="average"``: cut runs of different lengths to the shortest.

    Returns
    -------
    data : DataFrame
        The prepared data.
    paradigm : DataFrame or None
        The matching paradigm (None when ``paradigms`` is None).

    Raises
    ------
    ValueError
        For several runs without ``combine``, an unknown ``scale``, and the errors of the
        individual steps (naming the run or voxel).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from braincoder.utils.preprocessing import prepare_runs
    >>> runs = [pd.DataFrame({"v": 100 + np.random.default_rng(i).normal(size=20)})
    ...         for i in range(2)]
    >>> data, _ = prepare_runs(runs, order=1, scale="psc", combine="average")
    >>> data.shape
    (20, 1)
    """
    runs = [runs] if isinstance(runs, pd.DataFrame) else list(runs)
    if scale not in (None, "psc", "zscore"):
        raise ValueError(f"scale must be None, 'psc' or 'zscore', got {scale!r}")
    if len(runs) > 1 and combine not in ("average", "concatenate"):
        raise ValueError(f"{len(runs)} runs: choose how to combine them (combine='average' "
                         "or 'concatenate')")
    prepared = []
    for i, run in enumerate(runs):
        name = _name(run, i)
        frame = _frame(run, name)
        try:
            if order or high_pass is not None:
                frame = detrend(frame, order=order, high_pass=high_pass, tr=tr)
            if scale == "psc":
                frame = percent_signal_change(frame)
            elif scale == "zscore":
                frame = zscore(frame)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        frame.attrs = dict(run.attrs) if isinstance(run, pd.DataFrame) else {}
        prepared.append(frame)
    lengths = [len(frame) for frame in prepared]
    if len(prepared) == 1:
        data, combine = prepared[0], combine or "average"
    elif combine == "average":
        data = average_runs(prepared, truncate=truncate)
    else:
        data = concatenate_runs(prepared)
    if paradigms is None:
        return data, None
    paradigm = match_paradigm(paradigms, lengths, combine, truncate=truncate)
    return data, paradigm.set_axis(data.index, axis=0)
