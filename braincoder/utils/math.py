"""Parameter transforms between a model's natural space and an unbounded space.

Fitters optimise unbounded values; models evaluate natural values. Each transform maps
``forward`` from unbounded to natural and ``backward`` from natural to unbounded, for both
numpy arrays and tensors (``keras.ops``), and says which natural values are valid.
"""

from __future__ import annotations

import numpy as np
from keras import ops


class Transform:
    """Base class of parameter transforms (identity).

    Attributes
    ----------
    lower, upper : float
        Bounds of the natural values (``-inf``/``inf`` when unbounded).
    """

    lower = -np.inf
    upper = np.inf

    def forward(self, values):
        """Map unbounded tensor values to natural values.

        Parameters
        ----------
        values : tensor
            Unbounded values.

        Returns
        -------
        tensor
            Natural values.
        """
        return values

    def backward(self, values):
        """Map natural tensor values to unbounded values.

        Parameters
        ----------
        values : tensor
            Natural values.

        Returns
        -------
        tensor
            Unbounded values.
        """
        return values

    def forward_numpy(self, values):
        """Map unbounded values to natural values (numpy, float64).

        Parameters
        ----------
        values : array-like
            Unbounded values.

        Returns
        -------
        ndarray
            Natural values.
        """
        return np.asarray(values, dtype=np.float64)

    def backward_numpy(self, values):
        """Map natural values to unbounded values (numpy, float64).

        Parameters
        ----------
        values : array-like
            Natural values.

        Returns
        -------
        ndarray
            Unbounded values.
        """
        return np.asarray(values, dtype=np.float64)

    def invalid(self, values):
        """Return a boolean mask of natural values outside the transform's range.

        Parameters
        ----------
        values : array-like
            Natural values.

        Returns
        -------
        ndarray of bool
            True where a value cannot be represented.
        """
        values = np.asarray(values, dtype=np.float64)
        return ~((values > self.lower) & (values < self.upper)) & ~(
            np.isinf(self.lower) & np.isinf(self.upper)
        )

    def clip_numpy(self, values, margin=1e-6):
        """Clip natural values into the open interval of the transform.

        Parameters
        ----------
        values : array-like
            Natural values.
        margin : float, default 1e-6
            Relative distance kept from each finite bound.

        Returns
        -------
        ndarray
            Clipped values.
        """
        values = np.asarray(values, dtype=np.float64)
        span = (self.upper - self.lower) if np.isfinite(self.upper - self.lower) else 1.0
        low = self.lower + margin * span if np.isfinite(self.lower) else -np.inf
        high = self.upper - margin * span if np.isfinite(self.upper) else np.inf
        return np.clip(values, low, high)

    def __repr__(self):
        """Return the transform's name."""
        return f"{type(self).__name__}()"


class Identity(Transform):
    """No transform: the parameter is unbounded."""


class Softplus(Transform):
    """Positive parameter: ``natural = lower + softplus(unbounded)``.

    Parameters
    ----------
    lower : float, default 0.0
        Lower bound of the natural value.
    """

    def __init__(self, lower=0.0):
        self.lower = float(lower)

    def forward(self, values):  # noqa: D102
        return self.lower + ops.softplus(values)

    def backward(self, values):  # noqa: D102
        shifted = values - self.lower
        return shifted + ops.log(-ops.expm1(-shifted))

    def forward_numpy(self, values):  # noqa: D102
        values = np.asarray(values, dtype=np.float64)
        return self.lower + np.logaddexp(0.0, values)

    def backward_numpy(self, values):  # noqa: D102
        shifted = np.asarray(values, dtype=np.float64) - self.lower
        with np.errstate(divide="ignore", invalid="ignore"):
            return shifted + np.log(-np.expm1(-shifted))

    def __repr__(self):
        """Return the transform with its bound."""
        return f"Softplus(lower={self.lower})"


class Bounded(Transform):
    """Parameter within ``(lower, upper)``: ``natural = lower + (upper − lower)·sigmoid(u)``.

    Parameters
    ----------
    lower, upper : float
        Bounds of the natural value.
    """

    def __init__(self, lower, upper):
        if not lower < upper:
            raise ValueError(f"Bounded transform needs lower < upper, got {lower}, {upper}")
        self.lower = float(lower)
        self.upper = float(upper)

    def forward(self, values):  # noqa: D102
        return self.lower + (self.upper - self.lower) * ops.sigmoid(values)

    def backward(self, values):  # noqa: D102
        fraction = (values - self.lower) / (self.upper - self.lower)
        return ops.log(fraction) - ops.log1p(-fraction)

    def forward_numpy(self, values):  # noqa: D102
        values = np.asarray(values, dtype=np.float64)
        sigmoid = 0.5 * (1.0 + np.tanh(0.5 * values))  # no overflow for large |values|
        return self.lower + (self.upper - self.lower) * sigmoid

    def backward_numpy(self, values):  # noqa: D102
        fraction = (np.asarray(values, dtype=np.float64) - self.lower) / (self.upper - self.lower)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(fraction) - np.log1p(-fraction)

    def __repr__(self):
        """Return the transform with its bounds."""
        return f"Bounded(lower={self.lower}, upper={self.upper})"


def softplus_inverse(values):
    """Inverse of softplus, ``log(exp(x) − 1)``, computed stably (numpy).

    Parameters
    ----------
    values : array-like
        Positive values.

    Returns
    -------
    ndarray
        Unbounded values ``u`` with ``softplus(u) = values``.
    """
    return Softplus().backward_numpy(values)
