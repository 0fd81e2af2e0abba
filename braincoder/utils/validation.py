"""Input checks with messages that name the offending input, column, voxel or parameter.

All public entry points validate through these functions, so that bad input fails early
with a ``ValueError`` or ``TypeError`` that says which input, which label, what was
expected and what was found.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

_MAX_LISTED = 5


def format_labels(labels, max_listed=_MAX_LISTED):
    """Format up to ``max_listed`` labels for an error message, with a count of the rest.

    Parameters
    ----------
    labels : sequence
        Labels (voxel names, columns, parameters).
    max_listed : int, default 5
        How many labels to show.

    Returns
    -------
    str
        E.g. ``"'a', 'b', 'c' and 4 more"``.
    """
    labels = list(labels)
    shown = ", ".join(repr(_plain(label)) for label in labels[:max_listed])
    if len(labels) > max_listed:
        shown += f" and {len(labels) - max_listed} more"
    return shown


def _plain(label):
    """Return numpy scalars as Python scalars so that messages read naturally."""
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, tuple):
        return tuple(_plain(item) for item in label)
    return label


def check_finite(frame, what):
    """Raise if a DataFrame holds NaN or infinite values, naming the columns and rows.

    Parameters
    ----------
    frame : DataFrame
        Values to check (numeric).
    what : str
        Name of the input for the message, e.g. ``"data"``.

    Raises
    ------
    ValueError
        If any value is NaN or infinite. The message names up to five offending columns,
        how many bad values each holds and the first row label where one occurs.
    """
    values = frame.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        try:
            values = values.astype(float)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be numeric, found dtype {values.dtype}") from None
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    bad_columns = np.flatnonzero(bad.any(axis=0))
    parts = []
    for column in bad_columns[:_MAX_LISTED]:
        rows = np.flatnonzero(bad[:, column])
        parts.append(
            f"column {_plain(frame.columns[column])!r} has {rows.size} non-finite value"
            f"{'s' if rows.size > 1 else ''} (first at {frame.index.name or 'row'} "
            f"{_plain(frame.index[rows[0]])!r})"
        )
    more = len(bad_columns) - _MAX_LISTED
    message = f"{what}: " + "; ".join(parts)
    if more > 0:
        message += f"; and {more} more columns"
    raise ValueError(message + ". Remove or impute NaN/inf values before fitting.")


def check_same_length(first, second, first_name, second_name):
    """Raise if two frames have different numbers of rows.

    Parameters
    ----------
    first, second : DataFrame
        Frames whose rows (time points) must correspond.
    first_name, second_name : str
        Names used in the message.

    Raises
    ------
    ValueError
        If the row counts differ.
    """
    if len(first) != len(second):
        raise ValueError(
            f"{first_name} has {len(first)} time points but {second_name} has {len(second)}; "
            "they must describe the same time points"
        )


def check_same_index(first, second, first_name, second_name):
    """Raise if two frames do not share the same row index, naming the first difference.

    Frames whose index is unlabelled (a default ``RangeIndex(0, n)``, see
    :func:`~braincoder.utils.labels.is_unlabelled`) on one side are
    compared by length only: arrays given without labels take the labels of the other input.

    Parameters
    ----------
    first, second : DataFrame
        Frames whose rows must correspond one to one.
    first_name, second_name : str
        Names used in the message.

    Raises
    ------
    ValueError
        If the lengths differ or the labels differ.
    """
    check_same_length(first, second, first_name, second_name)
    if _is_default_index(first.index) or _is_default_index(second.index):
        return
    if first.index.equals(second.index):
        return
    first_values = first.index.to_numpy()
    second_values = second.index.to_numpy()
    differs = np.flatnonzero(first_values != second_values)
    position = int(differs[0]) if differs.size else 0
    raise ValueError(
        f"{first_name} and {second_name} have different time indices: at position {position} "
        f"{first_name} has {_plain(first.index[position])!r} but {second_name} has "
        f"{_plain(second.index[position])!r}"
    )


def _is_default_index(index):
    """Return True for the labels of an unlabelled array (see :mod:`braincoder.utils.labels`)."""
    from .labels import is_unlabelled  # labels imports this module

    return is_unlabelled(index)


def check_columns(frame, expected, what, reorder=True):
    """Check that a frame has exactly the expected columns and return it in that order.

    Parameters
    ----------
    frame : DataFrame
        E.g. parameters (voxel × parameter).
    expected : sequence of str
        The required column labels, in order.
    what : str
        Name of the input for the message.
    reorder : bool, default True
        Return the columns in the expected order.

    Returns
    -------
    DataFrame
        ``frame`` with its columns in the expected order.

    Raises
    ------
    ValueError
        If labels are missing or extra; the message lists both sets.
    """
    expected = list(expected)
    present = list(frame.columns)
    missing = [label for label in expected if label not in present]
    extra = [label for label in present if label not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {format_labels(missing)}")
        if extra:
            parts.append(f"unexpected {format_labels(extra)}")
        raise ValueError(
            f"{what} columns do not match the model's parameter labels {expected}: "
            + "; ".join(parts)
        )
    return frame[expected] if reorder else frame


def check_names(names, allowed, what):
    """Raise if any of ``names`` is not in ``allowed``.

    Parameters
    ----------
    names : sequence of str
        Names given by the caller (e.g. ``fixed_pars``).
    allowed : sequence of str
        Valid names.
    what : str
        Name of the argument for the message.

    Returns
    -------
    list of str
        ``names`` as a list (empty if ``names`` is None).

    Raises
    ------
    ValueError
        If a name is unknown; the message lists the unknown and the valid names.
    """
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(
            f"{what}: unknown parameter name{'s' if len(unknown) > 1 else ''} "
            f"{format_labels(unknown)}; valid names are {list(allowed)}"
        )
    return names


def check_positive(frame, columns, what):
    """Raise if any of the given columns holds a value <= 0, naming the voxel.

    Parameters
    ----------
    frame : DataFrame
        Parameters (voxel × parameter).
    columns : sequence of str
        Columns that must be strictly positive (widths, concentrations). Columns not present
        are skipped.
    what : str
        Name of the input for the message.

    Raises
    ------
    ValueError
        If a value is not strictly positive.
    """
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy()
        bad = np.flatnonzero(~(values > 0))
        if bad.size:
            raise ValueError(
                f"{what}: parameter {column!r} must be > 0, but {bad.size} "
                f"{frame.index.name or 'row'}{'s' if bad.size > 1 else ''} "
                f"({format_labels(frame.index[bad])}) have values such as {values[bad[0]]!r}"
            )


def check_choice(value, choices, what):
    """Raise if ``value`` is not one of ``choices``.

    Parameters
    ----------
    value : object
        Given value.
    choices : sequence
        Allowed values.
    what : str
        Argument name for the message.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    ValueError
        If ``value`` is not allowed.
    """
    if value not in choices:
        raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")
    return value


def check_kwargs(kwargs, func_name, allowed=()):
    """Raise ``TypeError`` for keyword arguments that a function does not accept.

    Parameters
    ----------
    kwargs : dict
        Keyword arguments received through ``**kwargs``.
    func_name : str
        Name of the function for the message.
    allowed : sequence of str, optional
        Keywords that are accepted.

    Raises
    ------
    TypeError
        If a keyword is not in ``allowed``; the message names it.
    """
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        raise TypeError(
            f"{func_name}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
            f"{format_labels(unknown)}"
            + (f"; accepted keywords are {sorted(allowed)}" if allowed else "")
        )


def check_optimizer_kwargs(kwargs, optimizer_class, func_name):
    """Raise ``TypeError`` for keywords that ``optimizer_class`` does not accept.

    Parameters
    ----------
    kwargs : dict
        Keywords to forward to the optimizer's constructor.
    optimizer_class : type
        E.g. ``keras.optimizers.Adam``.
    func_name : str
        Name of the calling function for the message.

    Raises
    ------
    TypeError
        If a keyword is not a parameter of ``optimizer_class`` (or its base class).
    """
    accepted = set()
    for klass in optimizer_class.__mro__:
        if "__init__" in klass.__dict__:
            accepted.update(inspect.signature(klass.__init__).parameters)
    accepted.discard("self")
    accepted.discard("kwargs")
    check_kwargs(kwargs, func_name, allowed=sorted(accepted))


def constant_columns(frame):
    """Return the labels of columns with zero variance (or a single finite value).

    Parameters
    ----------
    frame : DataFrame
        Data (time × voxel).

    Returns
    -------
    Index
        Labels of constant columns.
    """
    values = frame.to_numpy(dtype=float)
    spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0) if len(values) else None
    if spread is None:
        return frame.columns[:0]
    return frame.columns[~(spread > 0)]


def warn_constant(labels, what="data"):
    """Warn once about constant (zero-variance) voxels, naming the first few.

    Parameters
    ----------
    labels : sequence
        Labels of the constant voxels.
    what : str, default "data"
        Name of the input for the message.
    """
    labels = list(labels)
    if labels:
        warnings.warn(
            f"{what}: {len(labels)} voxel{'s' if len(labels) > 1 else ''} with zero variance "
            f"({format_labels(labels)}); their R² is NaN and they are left out of fits",
            RuntimeWarning,
            stacklevel=3,
        )
