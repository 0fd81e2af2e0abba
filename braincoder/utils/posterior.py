"""Summaries of stimulus posteriors (time × stimulus-grid DataFrames), plain numpy/pandas.

A posterior ``pdf`` as returned by
:meth:`~braincoder.models.decoding.DecodingMixin.get_stimulus_pdf` has one row per time
point and one column per grid value. How the columns are read:

* **1D numeric, strictly increasing columns** (e.g. orientations, numerosities): values are
  densities; each grid point stands for a cell whose width is ``numpy.gradient`` of the
  grid (the grid step on a regular grid; the midpoints between neighbours otherwise), so the
  probability mass of point ``i`` is ``pdf[i] · width[i]``.
* **MultiIndex columns with numeric levels** (e.g. dot positions ``(x, y)``): each column is
  a probability mass; summaries are given per level (a DataFrame with one column per level).
* **Anything else** (candidate images labelled by an index): each column is a probability
  mass; only :func:`~braincoder.utils.get_map` is meaningful.

The mass is renormalised per time point, so unnormalised likelihoods are fine too.

**Circular stimuli.** With ``circular=True`` — or ``circular=None`` (the default) and 1D
columns forming a regular grid spanning one period of ``2π`` (``max − min + step = 2π``,
e.g. ``numpy.linspace(-π, π, n, endpoint=False)``) — means are circular means
(``atan2`` of the mass-weighted sine and cosine, returned within the grid's period), standard
deviations are circular (``sqrt(−2 ln R)`` with ``R`` the mean resultant length) and credible
intervals are arcs centred on the circular mean. Pass ``circular=False`` to force linear
summaries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "get_map",
    "get_expected_value",
    "get_sd_posterior",
    "get_credible_interval",
    "in_credible_interval",
]

_TWO_PI = 2.0 * np.pi


def _cell_widths(values):
    """Width of the cell around each grid value (``numpy.gradient``), or None.

    Returns None when the values are not strictly increasing (then grid points are treated
    as probability masses).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2 or not np.all(np.diff(values) > 0):
        return None
    return np.gradient(values)


def _check_pdf(pdf):
    if not isinstance(pdf, pd.DataFrame):
        raise TypeError(f"pdf must be a DataFrame (time × stimulus), got {type(pdf).__name__}")
    if pdf.shape[1] == 0 or pdf.shape[0] == 0:
        raise ValueError(f"pdf is empty (shape {pdf.shape})")
    values = pdf.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("pdf must hold finite, non-negative values")
    return values


def _numeric_columns(pdf):
    """Column values as a float array (1D columns) or None when they are not numeric."""
    if isinstance(pdf.columns, pd.MultiIndex):
        return None
    try:
        return np.asarray(pdf.columns, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _masses(pdf):
    """Return (column values or None, widths or None, masses T × G summing to 1 per row)."""
    density = _check_pdf(pdf)
    values = _numeric_columns(pdf)
    widths = None if values is None else _cell_widths(values)
    mass = density if widths is None else density * widths[np.newaxis, :]
    total = mass.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        row = pdf.index[int(np.flatnonzero(total[:, 0] <= 0)[0])]
        raise ValueError(f"pdf has no mass at {pdf.index.name or 'row'} {row!r}")
    return values, widths, mass / total


def _is_circular(values, circular):
    if circular is not None:
        if circular and values is None:
            raise ValueError("circular summaries need 1D numeric pdf columns (angles in radians)")
        return bool(circular)
    if values is None or values.size < 3:
        return False
    steps = np.diff(values)
    if not np.all(steps > 0) or not np.allclose(steps, steps[0], rtol=1e-4):
        return False
    return abs(values[-1] - values[0] + steps[0] - _TWO_PI) < 1e-4 * _TWO_PI


def _require_1d(values, what):
    if values is None:
        raise ValueError(f"{what} needs a pdf whose columns are 1D numeric stimulus values")


def _wrap(angles, low):
    """Wrap angles into ``[low, low + 2π)``."""
    return np.mod(angles - low, _TWO_PI) + low


def _levels_frame(pdf, mass, reducer, name):
    """Apply ``reducer(level_values, mass)`` to every numeric level of MultiIndex columns."""
    out = {}
    for level, level_name in enumerate(pdf.columns.names):
        try:
            values = np.asarray(pdf.columns.get_level_values(level), dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} needs numeric column levels; level {level_name!r} is not numeric"
            ) from None
        out[level_name if level_name is not None else level] = reducer(values, mass)
    return pd.DataFrame(out, index=pdf.index)


def get_map(pdf):
    """Maximum-a-posteriori stimulus per time point (the grid value with the highest density).

    Parameters
    ----------
    pdf : DataFrame, shape (n_timepoints, n_stimuli)
        Posterior (or likelihood) over a stimulus grid.

    Returns
    -------
    Series or DataFrame
        Series of column labels indexed by time (named ``"map"``); a DataFrame with one
        column per level for MultiIndex columns (e.g. ``x``, ``y`` of dot positions).

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils import get_map
    >>> pdf = pd.DataFrame([[0.1, 0.7, 0.2]], columns=[1.0, 2.0, 3.0])
    >>> get_map(pdf).tolist()
    [2.0]
    """
    density = _check_pdf(pdf)
    best = density.argmax(axis=1)
    if isinstance(pdf.columns, pd.MultiIndex):
        return pdf.columns[best].to_frame(index=False).set_axis(pdf.index)
    return pd.Series(pdf.columns[best], index=pdf.index, name="map")


def get_expected_value(pdf, circular=None):
    """Posterior mean stimulus per time point (circular mean for circular stimuli).

    Parameters
    ----------
    pdf : DataFrame, shape (n_timepoints, n_stimuli)
        Posterior over a stimulus grid (see the module notes for how columns are read).
    circular : bool, optional
        Circular mean; by default detected from the columns (a regular grid spanning
        ``2π``).

    Returns
    -------
    Series or DataFrame
        Expected value indexed by time (named ``"E"``, as in the public braincoder); per
        level for MultiIndex columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from braincoder.utils import get_expected_value
    >>> pdf = pd.DataFrame([[1.0, 1.0, 0.0]], columns=[0.0, 1.0, 2.0])
    >>> get_expected_value(pdf).tolist()
    [0.5]
    """
    values, _, mass = _masses(pdf)
    if isinstance(pdf.columns, pd.MultiIndex):
        return _levels_frame(pdf, mass, lambda v, m: m @ v, "get_expected_value")
    _require_1d(values, "get_expected_value")
    if _is_circular(values, circular):
        mean = np.arctan2(mass @ np.sin(values), mass @ np.cos(values))
        result = _wrap(mean, values.min())
    else:
        result = mass @ values
    return pd.Series(result, index=pdf.index, name="E")


def get_sd_posterior(pdf, circular=None):
    """Posterior standard deviation per time point (circular SD for circular stimuli).

    Parameters
    ----------
    pdf : DataFrame, shape (n_timepoints, n_stimuli)
        Posterior over a stimulus grid.
    circular : bool, optional
        Circular standard deviation ``sqrt(−2 ln R)``; detected from the columns by default.

    Returns
    -------
    Series or DataFrame
        Standard deviation indexed by time (named ``"sd"``); per level for MultiIndex
        columns.
    """
    values, _, mass = _masses(pdf)

    def linear_sd(v, m):
        # Centred second moment (not E[v²] − E[v]², which cancels catastrophically when the
        # spread is small next to the values).
        deviation = v[np.newaxis, :] - (m @ v)[:, np.newaxis]
        return np.sqrt((m * deviation**2).sum(axis=1))

    if isinstance(pdf.columns, pd.MultiIndex):
        return _levels_frame(pdf, mass, linear_sd, "get_sd_posterior")
    _require_1d(values, "get_sd_posterior")
    if _is_circular(values, circular):
        resultant = np.hypot(mass @ np.sin(values), mass @ np.cos(values))
        result = np.sqrt(-2.0 * np.log(np.clip(resultant, 1e-300, 1.0)))
    else:
        result = linear_sd(values, mass)
    return pd.Series(result, index=pdf.index, name="sd")


def _quantiles(positions, widths, mass, probabilities):
    """Quantiles of piecewise-uniform distributions (cells ``position ± width/2``), per row.

    ``positions`` and ``widths`` are (T, G) (sorted along axis 1); returns (T, len(p)).
    """
    cdf = np.cumsum(mass, axis=1)
    rows = np.arange(mass.shape[0])
    out = []
    for p in probabilities:
        cell = np.minimum((cdf < p).sum(axis=1), mass.shape[1] - 1)
        before = np.where(cell > 0, cdf[rows, np.maximum(cell - 1, 0)], 0.0)
        cell_mass = np.maximum(mass[rows, cell], 1e-300)
        fraction = np.clip((p - before) / cell_mass, 0.0, 1.0)
        low_edge = positions[rows, cell] - 0.5 * widths[rows, cell]
        out.append(low_edge + fraction * widths[rows, cell])
    return np.stack(out, axis=1)


def _interval(pdf, level, circular):
    """Return (circular, centre or None, lower, upper) with circular bounds as deviations."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be within (0, 1), got {level}")
    values, widths, mass = _masses(pdf)
    _require_1d(values, "get_credible_interval")
    if widths is None:
        raise ValueError("get_credible_interval needs strictly increasing pdf columns")
    tails = (0.5 * (1.0 - level), 0.5 * (1.0 + level))
    n_rows = mass.shape[0]
    if not _is_circular(values, circular):
        positions = np.broadcast_to(values, mass.shape)
        bounds = _quantiles(positions, np.broadcast_to(widths, mass.shape), mass, tails)
        return False, None, bounds[:, 0], bounds[:, 1]
    centre = np.arctan2(mass @ np.sin(values), mass @ np.cos(values))
    deviation = _wrap(values[np.newaxis, :] - centre[:, np.newaxis], -np.pi)
    order = np.argsort(deviation, axis=1)
    rows = np.arange(n_rows)[:, np.newaxis]
    bounds = _quantiles(
        deviation[rows, order], np.broadcast_to(widths, mass.shape)[rows, order],
        mass[rows, order], tails,
    )
    return True, centre, bounds[:, 0], bounds[:, 1]


def get_credible_interval(pdf, level=0.95, circular=None):
    """Equal-tailed credible interval of the stimulus per time point.

    Grid points are cells of uniform density (see the module notes), so the bounds are
    interpolated within cells. For circular stimuli the interval is the arc from ``lower``
    to ``upper`` (counter-clockwise) holding ``level`` of the mass with equal tails around
    the circular mean; both bounds are wrapped into the grid's period, so ``lower > upper``
    when the arc crosses the wrap point.

    Parameters
    ----------
    pdf : DataFrame, shape (n_timepoints, n_stimuli)
        Posterior over a strictly increasing 1D stimulus grid.
    level : float, default 0.95
        Probability mass inside the interval.
    circular : bool, optional
        Circular interval; detected from the columns by default.

    Returns
    -------
    DataFrame, shape (n_timepoints, 2)
        Columns ``lower`` and ``upper``, indexed by time.

    Raises
    ------
    ValueError
        If ``level`` is not within (0, 1) or the columns are not a 1D increasing grid.
    """
    is_circular, centre, lower, upper = _interval(pdf, level, circular)
    if is_circular:
        low = float(np.asarray(pdf.columns, dtype=np.float64).min())
        lower, upper = _wrap(centre + lower, low), _wrap(centre + upper, low)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=pdf.index)


def in_credible_interval(pdf, values, level=0.95, circular=None):
    """Whether each time point's value lies inside its posterior credible interval.

    Parameters
    ----------
    pdf : DataFrame, shape (n_timepoints, n_stimuli)
        Posterior over a strictly increasing 1D stimulus grid.
    values : array-like or Series, shape (n_timepoints,)
        Values to test (e.g. the true stimuli), in the order of ``pdf``'s rows.
    level : float, default 0.95
        Probability mass inside the interval.
    circular : bool, optional
        Circular interval (values compared modulo ``2π``); detected by default.

    Returns
    -------
    Series of bool
        Indexed by time, named ``"in_interval"``. Its mean is the interval's coverage.

    Raises
    ------
    ValueError
        If ``values`` does not have one value per time point.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from braincoder.utils import in_credible_interval
    >>> grid = np.linspace(-5, 5, 201)
    >>> pdf = pd.DataFrame([np.exp(-0.5 * grid**2)] * 2, columns=grid)
    >>> in_credible_interval(pdf, [0.5, 3.0]).tolist()
    [True, False]
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape[0] != pdf.shape[0]:
        raise ValueError(
            f"values has {values.shape[0]} entries but pdf has {pdf.shape[0]} time points"
        )
    is_circular, centre, lower, upper = _interval(pdf, level, circular)
    if is_circular:
        values = _wrap(values - centre, -np.pi)
    inside = (values >= lower) & (values <= upper)
    return pd.Series(inside, index=pdf.index, name="in_interval")
