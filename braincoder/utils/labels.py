"""Labels: what "unlabelled" means, how two inputs are aligned, how labels are saved.

Every public entry point that matches rows or columns of one input to those of another
(time points of data and predictions, voxels of data and fitted parameters, stimuli of
predicted and candidate embeddings) asks this module, so one frame is accepted or refused
the same way everywhere.

Rules
-----
* **Unlabelled** labels are a default ``RangeIndex(0, n)`` whose name is ``None`` or one of
  the names braincoder gives array input (``time`` for rows, ``voxel`` for voxels):
  :func:`is_unlabelled`.
* **Alignment**: when either side is unlabelled and both have the same length they are
  matched by position; otherwise by label (any order; the labels of an unlabelled side are
  its positions), and a ``ValueError`` names the missing labels: :func:`label_positions`,
  :func:`align`.
* **Codec**: an ``Index``/``MultiIndex`` (names, dtypes, values) is written as a small
  JSON-able dict and read back exactly: :func:`encode_index`, :func:`decode_index`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import format_labels

__all__ = [
    "UNLABELLED_NAMES",
    "is_unlabelled",
    "label_positions",
    "align",
    "encode_index",
    "decode_index",
]

#: Names of the default labels braincoder gives array input (rows, voxels).
UNLABELLED_NAMES = (None, "time", "voxel", "basis")

#: Label dtypes the codec writes and accepts.
INDEX_DTYPES = ("int64", "float64", "bool", "object", "str", "string")


def is_unlabelled(index):
    """Return True when ``index`` stands for positions, not labels.

    Parameters
    ----------
    index : Index
        Row or column labels.

    Returns
    -------
    bool
        True for a ``RangeIndex(0, n)`` with step 1 named ``None``, ``"time"``,
        ``"voxel"`` or ``"basis"`` (the labels of arrays converted by
        :func:`~braincoder.utils.formatting.to_frame`).

    Examples
    --------
    >>> import pandas as pd
    >>> is_unlabelled(pd.RangeIndex(3)), is_unlabelled(pd.Index(["a", "b"]))
    (True, False)
    """
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name in UNLABELLED_NAMES
    )


def label_positions(reference, other, reference_name, other_name, what="labels"):
    """Positions in ``other`` of the labels of ``reference``.

    Parameters
    ----------
    reference, other : Index
        Labels to line up; ``other`` may hold more labels than ``reference``.
    reference_name, other_name : str
        Names of the inputs for the message.
    what : str, default "labels"
        What the labels are (``"voxels"``, ``"rows"``) for the message.

    Returns
    -------
    ndarray of int
        ``other[positions]`` lines up with ``reference``.

    Raises
    ------
    ValueError
        If labels of ``reference`` are missing from ``other`` (the message names them).
    """
    if other.equals(reference):
        return np.arange(len(reference))
    if _by_position(reference, other):
        return np.arange(len(reference))
    if other.is_unique and set(reference).issubset(set(other)):
        return other.get_indexer(reference)
    present = set(other)
    missing = [label for label in reference if label not in present]
    raise ValueError(
        f"{reference_name} has {what} that {other_name} lacks: {format_labels(missing)} "
        f"({len(missing)} of {len(reference)}); {other_name} has {what} "
        f"{format_labels(other)}{_position_hint(reference, other)}"
    )


def _by_position(first, second):
    """Unlabelled on either side and of the same length: matched by position."""
    return (is_unlabelled(first) or is_unlabelled(second)) and len(first) == len(second)


def _position_hint(first, second):
    if is_unlabelled(first) or is_unlabelled(second):
        return (f" (unlabelled inputs are matched by position only when their lengths agree: "
                f"{len(first)} and {len(second)})")
    return ""


def align(frame, labels, what, reference, axis=0):
    """Reorder ``frame`` along ``axis`` to ``labels``.

    When either side is unlabelled (see :func:`is_unlabelled`) and both have the same
    length, they are matched by position and ``frame`` is returned unchanged; otherwise by
    label (``frame`` may hold more labels).

    Parameters
    ----------
    frame : DataFrame or Series
        Values to reorder.
    labels : Index
        Target labels.
    what, reference : str
        Names of ``frame``'s axis and of the target labels for the message.
    axis : {0, 1}, default 0
        Rows (0) or columns (1) of ``frame``.

    Returns
    -------
    DataFrame or Series
        ``frame`` with its ``axis`` in the order of ``labels``.

    Raises
    ------
    ValueError
        If labels are missing from ``frame`` (the message names them) or repeated.
    """
    own = frame.index if axis == 0 else frame.columns
    if own.equals(labels) or _by_position(own, labels):
        return frame
    present = set(own)
    missing = [label for label in labels if label not in present]
    if missing:
        raise ValueError(f"{what} do not match the {reference}: no {what.split()[0]} for "
                         f"{format_labels(missing)}{_position_hint(own, labels)}")
    if not own.is_unique:
        raise ValueError(f"{what} have repeated labels; they cannot be matched to the "
                         f"{reference}")
    positions = own.get_indexer(labels)
    return frame.iloc[positions] if axis == 0 else frame.iloc[:, positions]


# ---------------------------------------------------------------------- codec
def _scalar(value, what):
    """Return a label as a JSON scalar, or raise TypeError."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypeError(f"{what}: label {value!r} of type {type(value).__name__} cannot be saved "
                    "(labels must be strings, numbers, booleans or None)")


def _check_scalar(value, what):
    if value is not None and not isinstance(value, str | bool | int | float):
        raise ValueError(f"{what}: labels must be JSON strings, numbers, booleans or null, "
                         f"found {type(value).__name__}")
    return value


def _list(value, what):
    if not isinstance(value, list):
        raise ValueError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _dtype_name(index):
    dtype = str(index.dtype)
    return dtype if dtype in INDEX_DTYPES else "object"


def _check_dtype(dtype, what):
    if dtype not in INDEX_DTYPES:
        raise ValueError(f"{what}: unsupported label dtype {dtype!r}; expected one of "
                         f"{list(INDEX_DTYPES)}")
    return dtype


def encode_index(index, what="labels"):
    """Encode a pandas Index (names, dtypes, values) as JSON-serialisable data.

    Parameters
    ----------
    index : Index
        Row or column labels (``RangeIndex``, ``Index`` or ``MultiIndex``).
    what : str, default "labels"
        Name used in error messages.

    Returns
    -------
    dict
        ``{"name", "range": [start, stop, step]}``, ``{"names", "tuples", "dtypes"}`` or
        ``{"name", "dtype", "values"}``.

    Raises
    ------
    TypeError
        For labels that are not strings, numbers, booleans or None.

    Examples
    --------
    >>> import pandas as pd
    >>> encode_index(pd.Index(["a", "b"], name="voxel"))["values"]
    ['a', 'b']
    """
    if isinstance(index, pd.MultiIndex):
        return {
            "names": [_scalar(name, what) for name in index.names],
            "tuples": [[_scalar(item, what) for item in row] for row in index],
            "dtypes": [_dtype_name(index.levels[i]) for i in range(index.nlevels)],
        }
    name = _scalar(index.name, what)
    if isinstance(index, pd.RangeIndex):
        return {"name": name, "range": [index.start, index.stop, index.step]}
    return {"name": name, "dtype": _dtype_name(index),
            "values": [_scalar(v, what) for v in index]}


def decode_index(spec, what="labels"):
    """Rebuild an Index from :func:`encode_index` output, accepting plain data only.

    Older files written as ``{"values", "names", "multi"}`` are read too.

    Parameters
    ----------
    spec : dict or None
        Encoded labels; None gives None.
    what : str, default "labels"
        Name used in error messages.

    Returns
    -------
    Index or None
        The labels.

    Raises
    ------
    ValueError
        For unknown keys, dtypes or non-scalar labels.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"{what} must be an object, got {type(spec).__name__}")
    keys = set(spec)
    if keys in ({"names", "tuples"}, {"names", "tuples", "dtypes"}):
        names = [_check_scalar(name, what) for name in _list(spec["names"], what)]
        rows = [tuple(_check_scalar(v, what) for v in _list(row, what))
                for row in _list(spec["tuples"], what)]
        if any(len(row) != len(names) for row in rows):
            raise ValueError(f"{what}: every label tuple must have {len(names)} items")
        dtypes = spec.get("dtypes", [None] * len(names))
        if len(_list(dtypes, what)) != len(names):
            raise ValueError(f"{what}: one dtype per level expected, got {len(dtypes)}")
        arrays = [
            pd.Index([row[level] for row in rows],
                     dtype=None if dtype is None else _check_dtype(dtype, what))
            for level, dtype in enumerate(dtypes)
        ]
        return pd.MultiIndex.from_arrays(arrays, names=names)
    if keys == {"values", "names", "multi"}:  # older decoder files
        names = _list(spec["names"], what)
        values = _list(spec["values"], what)
        if spec["multi"]:
            return pd.MultiIndex.from_tuples([tuple(v) for v in values], names=names)
        return pd.Index(values, name=names[0])
    name = _check_scalar(spec.get("name"), what)
    if keys == {"name", "range"}:
        bounds = _list(spec["range"], what)
        if len(bounds) != 3 or not all(type(v) is int for v in bounds):
            raise ValueError(f"{what}: range must be three integers, got {bounds!r}")
        return pd.RangeIndex(*bounds, name=name)
    if keys == {"name", "dtype", "values"}:
        dtype = _check_dtype(spec["dtype"], what)
        values = [_check_scalar(v, what) for v in _list(spec["values"], what)]
        return pd.Index(values, dtype=dtype, name=name)
    raise ValueError(f"{what}: unexpected keys {sorted(keys)}")
