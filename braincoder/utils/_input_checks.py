"""One check of model inputs: sample shape and finiteness, with messages naming sizes.

Every deep model and decoder of the library validates its public entry points
(``predict``, ``__call__`` on arrays and DataFrames, ``reconstruct``, ``fit``) through
:func:`check_samples`, so that an input of the wrong size fails with a ``ValueError``
that gives the expected and the received sizes instead of an error from inside TensorFlow.
:func:`is_concrete` tells concrete inputs (NumPy, pandas, eager tensors), which are
checked, from symbolic Keras/graph tensors, which pass through untouched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import check_finite

__all__ = ["check_samples", "is_concrete"]


def is_concrete(inputs):
    """Return True for inputs holding values: NumPy, pandas, lists, eager tensors.

    Parameters
    ----------
    inputs : object
        A model input.

    Returns
    -------
    bool
        False for symbolic tensors (Keras tensors while a model is built, graph tensors
        inside ``tf.function``) and for structures the check does not handle (dicts,
        datasets).
    """
    if isinstance(inputs, (np.ndarray, np.generic, pd.DataFrame, pd.Series, list)):
        return True
    module = type(inputs).__module__
    if module.startswith("tensorflow"):
        import tensorflow as tf

        return isinstance(inputs, tf.Tensor) and tf.executing_eagerly() and hasattr(
            inputs, "numpy")
    return False


def _shape_text(shape):
    return "(n_samples, " + ", ".join(map(str, shape)) + ")"


def check_samples(values, sample_shape, what, axes=None, channel_optional=True):
    """Convert an input to float32 samples of ``sample_shape``; check its size and values.

    Parameters
    ----------
    values : DataFrame, array-like or eager tensor
        ``(n_samples, *sample_shape)``, or ``n_samples × prod(sample_shape)`` flattened in
        C order (a DataFrame is always flattened this way).
    sample_shape : tuple of int
        Shape of one sample.
    what : str
        Name of the input in messages (``"fmri"``, ``"eeg"``, ``"volumes"``).
    axes : tuple of str, optional
        Names of the sample axes (e.g. ``("voxels",)``), used to say which axis has the
        wrong size.
    channel_optional : bool, default True
        Accept samples without a trailing channel axis of size 1.

    Returns
    -------
    ndarray, shape ``(n_samples, *sample_shape)``
        float32 samples.

    Raises
    ------
    ValueError
        If the shape differs (the message gives the expected and received shapes and,
        with ``axes``, the axis and its expected size) or values are NaN or infinite
        (a DataFrame's offending columns are named).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils._input_checks import check_samples
    >>> check_samples(np.zeros((2, 47)), (50,), "fmri", axes=("voxels",))
    Traceback (most recent call last):
    ...
    ValueError: fmri must have shape (n_samples, 50), got (2, 47): 47 voxels (expected 50)
    """
    expected = tuple(int(size) for size in sample_shape)
    n_flat = int(np.prod(expected))
    if isinstance(values, pd.Series):
        values = values.to_frame().T
    if isinstance(values, pd.DataFrame):
        frame = values
        try:
            array = frame.to_numpy(dtype=np.float32)
        except (TypeError, ValueError):
            columns = [str(label) for label, dtype in frame.dtypes.items()
                       if not pd.api.types.is_numeric_dtype(dtype)]
            raise ValueError(f"{what} must hold numbers; columns {', '.join(columns[:5])} "
                             "do not") from None
        check_finite(frame, what)
    else:
        if hasattr(values, "numpy") and not isinstance(values, np.ndarray):
            values = values.numpy()
        try:
            array = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be numeric, got {type(values).__name__}") from None
    received = tuple(array.shape)
    if array.ndim == 2 and array.shape[1] == n_flat and len(expected) > 1:
        array = array.reshape(len(array), *expected)
    if channel_optional and len(expected) > 1 and expected[-1] == 1 \
            and tuple(array.shape[1:]) == expected[:-1]:
        array = array[..., None]
    if array.ndim < 1 or tuple(array.shape[1:]) != expected:
        flat = f" (or n_samples × {n_flat} flattened)" if len(expected) > 1 else ""
        detail = ""
        if array.ndim != len(expected) + 1:
            detail = f": rank {array.ndim}, expected rank {len(expected) + 1}"
        elif axes is not None:
            wrong = [f"{found} {axis} (expected {size})"
                     for axis, found, size in zip(axes, array.shape[1:], expected, strict=False)
                     if found != size]
            detail = f": {', '.join(wrong)}"
        raise ValueError(f"{what} must have shape {_shape_text(expected)}{flat}, got "
                         f"{received}{detail}")
    if not isinstance(values, pd.DataFrame):
        bad = ~np.isfinite(array)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise ValueError(f"{what} has {int(bad.sum())} non-finite values (NaN or inf; "
                             f"first in sample {int(first[0])})")
    return array
