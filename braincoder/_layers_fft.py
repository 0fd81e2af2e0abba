"""Orthonormal 3D DCT layers and a von Mises sampler (see :mod:`braincoder.layers`)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

__all__ = ["DCT3D", "iDCT3D", "variational_iDCT3D", "dct_matrix", "sample_von_mises"]


def dct_matrix(n):
    """Orthonormal DCT-II matrix.

    Parameters
    ----------
    n : int
        Signal length.

    Returns
    -------
    ndarray, shape (n, n)
        ``C`` with ``C @ x == scipy.fft.dct(x, type=2, norm="ortho")``; ``C.T`` inverts it.
    """
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return matrix


def _check_shape(shape, what):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(f"{what} must be three positive integers, got {shape}")
    return shape


def _apply3d(values, mx, my, mz):
    """Apply one matrix per spatial axis of a (batch, x, y, z[, channels]) tensor."""
    mx, my, mz = (ops.convert_to_tensor(m, dtype=values.dtype) for m in (mx, my, mz))
    if len(values.shape) == 5:
        return ops.einsum("bxyzc,ux,vy,wz->buvwc", values, mx, my, mz)
    if len(values.shape) == 4:
        return ops.einsum("bxyz,ux,vy,wz->buvw", values, mx, my, mz)
    raise ValueError(
        f"expected a (batch, x, y, z) or (batch, x, y, z, channels) tensor, got {values.shape}"
    )


def _resample_matrix(n_in, n_out, inverse):
    """DCT (or inverse DCT) matrix from ``n_in`` to ``n_out`` samples or coefficients.

    Forward (``inverse=False``): the first ``n_out`` rows of the ``n_in``-point DCT-II,
    zero rows beyond ``n_in`` (truncation or zero-padding of coefficients). Inverse: the
    ``n_out``-point inverse restricted to the first ``min(n_in, n_out)`` coefficients, zero
    columns for coefficients beyond ``n_out``.
    """
    matrix = np.zeros((n_out, n_in))
    keep = min(n_in, n_out)
    if inverse:
        matrix[:, :keep] = dct_matrix(n_out).T[:, :keep]
    else:
        matrix[:keep] = dct_matrix(n_in)[:keep]
    return matrix


@keras.saving.register_keras_serializable(package="braincoder")
class DCT3D(keras.layers.Layer):
    """Orthonormal DCT-II over the three spatial axes, optionally truncating coefficients.

    Matches ``scipy.fft.dctn(x, type=2, norm="ortho", axes=(1, 2, 3))`` on tensors of
    shape (batch, x, y, z) or (batch, x, y, z, channels). With ``out_shape`` only the
    low-frequency corner of that shape is kept (truncation; coefficients beyond the input
    size are zero), which together with :class:`iDCT3D` gives spectral downsampling.

    Parameters
    ----------
    out_shape : tuple of 3 int, optional
        Number of coefficients kept per axis; all of them when omitted.
    **kwargs
        Keras layer arguments (``name``, ``dtype``, ...).

    Raises
    ------
    ValueError
        If ``out_shape`` is not three positive integers.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.layers import DCT3D, iDCT3D
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 5, 6)).astype("float32")
    >>> np.allclose(iDCT3D()(DCT3D()(x)), x, atol=1e-5)
    True
    >>> tuple(DCT3D((2, 2, 3))(x).shape)
    (2, 2, 2, 3)
    """

    def __init__(self, out_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.out_shape = None if out_shape is None else _check_shape(out_shape, "out_shape")

    def build(self, input_shape):
        """Precompute the (truncated) DCT matrices of the input's spatial sizes.

        Parameters
        ----------
        input_shape : tuple
            (batch, x, y, z[, channels]).
        """
        in_shape = tuple(int(n) for n in input_shape[1:4])
        out_shape = self.out_shape or in_shape
        self._matrices = [
            _resample_matrix(i, o, inverse=False).astype("float32")
            for i, o in zip(in_shape, out_shape, strict=True)
        ]
        self.built = True

    def call(self, inputs):
        """Transform volumes into DCT coefficients.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z[, channels])
            Volumes.

        Returns
        -------
        tensor, shape ``(batch, *out_shape[, channels])``
            Coefficients (the input shape without ``out_shape``).
        """
        return _apply3d(inputs, *self._matrices)

    def compute_output_shape(self, input_shape):
        """Return ``(batch, *out_shape[, channels])``.

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        out = self.out_shape or tuple(input_shape[1:4])
        return (input_shape[0], *out, *input_shape[4:])

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            ``out_shape`` plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(out_shape=None if self.out_shape is None else list(self.out_shape))
        return config


@keras.saving.register_keras_serializable(package="braincoder")
class iDCT3D(keras.layers.Layer):  # noqa: N801 - public name of the reference model
    """Inverse orthonormal DCT-II over the three spatial axes, optionally resampling.

    With ``out_shape`` larger than the coefficient grid, the low-frequency coefficients are
    zero-padded to ``out_shape`` before inverting (spectral upsampling, as the decoder of
    the reference model does); with a smaller ``out_shape`` the coefficients are truncated
    to it (spectral downsampling). With ``preserve_amplitude`` the result is multiplied by
    ``sqrt(prod(out_shape) / prod(in_shape))`` so that a constant volume keeps its value.

    Parameters
    ----------
    out_shape : tuple of 3 int, optional
        Output spatial shape; the coefficient shape when omitted (exact inverse).
    preserve_amplitude : bool, default True
        Rescale when resampling (no effect when the shapes agree).
    **kwargs
        Keras layer arguments.

    Raises
    ------
    ValueError
        If ``out_shape`` is not three positive integers.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.layers import iDCT3D
    >>> coefs = np.zeros((1, 2, 2, 2), dtype="float32")
    >>> coefs[0, 0, 0, 0] = np.sqrt(8.0)  # a constant 1 on a 2 x 2 x 2 grid
    >>> np.allclose(iDCT3D((4, 4, 4))(coefs), 1.0)
    True
    """

    def __init__(self, out_shape=None, preserve_amplitude=True, **kwargs):
        super().__init__(**kwargs)
        self.out_shape = None if out_shape is None else _check_shape(out_shape, "out_shape")
        self.preserve_amplitude = bool(preserve_amplitude)

    def build(self, input_shape):
        """Precompute the (zero-padded or truncated) inverse DCT matrices.

        Parameters
        ----------
        input_shape : tuple
            (batch, x, y, z[, channels]) of the coefficients.
        """
        in_shape = tuple(int(n) for n in input_shape[1:4])
        out_shape = self.out_shape or in_shape
        scale = math.sqrt(np.prod(out_shape) / np.prod(in_shape)) if self.preserve_amplitude else 1
        self._matrices = [
            _resample_matrix(i, o, inverse=True).astype("float32")
            for i, o in zip(in_shape, out_shape, strict=True)
        ]
        self._scale = float(scale)
        self.built = True

    def call(self, inputs):
        """Invert (and resample) DCT coefficients.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z[, channels])
            Coefficients.

        Returns
        -------
        tensor, shape ``(batch, *out_shape[, channels])``
            Volumes.
        """
        values = _apply3d(inputs, *self._matrices)
        return values * self._scale if self._scale != 1.0 else values

    def compute_output_shape(self, input_shape):
        """Return ``(batch, *out_shape[, channels])``.

        Parameters
        ----------
        input_shape : tuple
            Coefficient shape.

        Returns
        -------
        tuple
            Output shape.
        """
        out = self.out_shape or tuple(input_shape[1:4])
        return (input_shape[0], *out, *input_shape[4:])

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            ``out_shape`` and ``preserve_amplitude`` plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            out_shape=None if self.out_shape is None else list(self.out_shape),
            preserve_amplitude=self.preserve_amplitude,
        )
        return config


def sample_von_mises(loc, concentration, seed, n_rounds=12):
    """Vectorised von Mises sampler (Best and Fisher rejection, fixed number of rounds).

    Every element draws ``n_rounds`` proposals at once; the first accepted proposal is
    kept. Elements without any accepted proposal (probability below ``0.35 ** n_rounds``
    since the acceptance rate is at least 0.66) fall back to the mean direction ``loc``.

    Parameters
    ----------
    loc : tensor
        Mean directions (radians).
    concentration : tensor
        Concentrations ``kappa``, broadcastable to ``loc``; clipped to [1e-4, 1e4].
    seed : int, SeedGenerator or None
        Keras random seed.
    n_rounds : int, default 12
        Number of proposals per element.

    Returns
    -------
    tensor
        Angles in [-pi, pi), same shape as ``loc``.

    References
    ----------
    Best, D. J. and Fisher, N. I. (1979). Efficient simulation of the von Mises
    distribution. Applied Statistics, 28(2), 152-157.
    """
    kappa = ops.clip(ops.broadcast_to(concentration, ops.shape(loc)), 1e-4, 1e4)
    root = ops.sqrt(1.0 + 4.0 * kappa**2)
    tau = 1.0 + root
    # rho = (tau - sqrt(2 tau)) / (2 kappa), written without cancellation for small kappa.
    rho = 2.0 * kappa * tau / ((root + 1.0) * (tau + ops.sqrt(2.0 * tau)))
    r = (1.0 + rho**2) / (2.0 * rho)
    shape = (n_rounds, *ops.shape(loc))
    u = keras.random.uniform((3, *shape), minval=1e-7, maxval=1.0, seed=seed)
    z = ops.cos(math.pi * u[0])
    f = (1.0 + r * z) / (r + z)
    c = kappa * (r - f)
    accept = ops.logical_or(c * (2.0 - c) - u[1] > 0.0, ops.log(c / u[1]) + 1.0 - c >= 0.0)
    theta = ops.sign(u[2] - 0.5) * ops.arccos(ops.clip(f, -1.0, 1.0))
    # First accepted round per element: cumulative acceptance equals one only there.
    accepted = ops.cast(accept, theta.dtype)
    first = accepted * ops.cast(ops.cumsum(accepted, axis=0) == 1.0, theta.dtype)
    any_accepted = ops.sum(first, axis=0)
    offset = ops.sum(first * theta, axis=0) * any_accepted
    angle = loc + offset
    return ops.mod(angle + math.pi, 2.0 * math.pi) - math.pi


@keras.saving.register_keras_serializable(package="braincoder")
class variational_iDCT3D(keras.layers.Layer):  # noqa: N801 - public name of the reference
    """Inverse DCT whose extra high-frequency coefficients are von Mises samples.

    The input coefficients fill the low-frequency corner of a grid of shape
    ``in_shape + variational_coefs``; the remaining coefficients of that grid are drawn from
    a von Mises distribution with learnable mean direction and concentration (one per
    coefficient) during training, and set to the mean direction at inference. The grid is
    then inverted with :class:`iDCT3D` to ``out_shape``.

    With ``dependent=True`` the mean directions depend on the input coefficients through a
    sum of ``dependent_dim`` sinusoids of learnt projections of them.

    Parameters
    ----------
    out_shape : tuple of 3 int
        Output spatial shape.
    variational_coefs : tuple of 3 int
        Number of extra coefficients per axis (``in + extra <= out``).
    dependent : bool, default False
        Make the mean directions depend on the input coefficients.
    dependent_dim : int, default 1
        Number of sinusoids in the dependency.
    seed : int, optional
        Seed of the sampler and initialisers.
    **kwargs
        Keras layer arguments.

    Raises
    ------
    ValueError
        For malformed shapes or too many extra coefficients.
    """

    def __init__(
        self, out_shape, variational_coefs, dependent=False, dependent_dim=1, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.out_shape = _check_shape(out_shape, "out_shape")
        self.variational_coefs = tuple(int(c) for c in variational_coefs)
        if len(self.variational_coefs) != 3 or any(c < 0 for c in self.variational_coefs):
            raise ValueError(
                f"variational_coefs must be three non-negative integers, got {variational_coefs}"
            )
        if int(dependent_dim) < 1:
            raise ValueError(f"dependent_dim must be a positive integer, got {dependent_dim}")
        self.dependent = bool(dependent)
        self.dependent_dim = int(dependent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.inverse = iDCT3D(self.out_shape, preserve_amplitude=True, name="inverse")

    def build(self, input_shape):
        """Create the von Mises parameters and the inverse transform.

        Parameters
        ----------
        input_shape : tuple
            (batch, x, y, z) coefficients.

        Raises
        ------
        ValueError
            If ``in_shape + variational_coefs`` exceeds ``out_shape`` or the input is not 4D.
        """
        if len(input_shape) != 4:
            raise ValueError(f"variational_iDCT3D expects (batch, x, y, z), got {input_shape}")
        in_shape = tuple(int(n) for n in input_shape[1:4])
        grid = tuple(i + c for i, c in zip(in_shape, self.variational_coefs, strict=True))
        if any(g > o for g, o in zip(grid, self.out_shape, strict=True)):
            raise ValueError(
                f"coefficients {in_shape} plus variational_coefs {self.variational_coefs} "
                f"exceed out_shape {self.out_shape}"
            )
        self.in_shape, self.grid = in_shape, grid
        init = keras.initializers.RandomNormal(stddev=0.1, seed=self.seed)
        self.loc = self.add_weight(shape=grid, initializer=init, name="loc")
        self.log_concentration = self.add_weight(
            shape=grid, initializer=keras.initializers.Constant(1.0), name="log_concentration"
        )
        if self.dependent:
            n_in, n_grid = int(np.prod(in_shape)), int(np.prod(grid))
            self.projection = self.add_weight(
                shape=(n_in, n_grid, self.dependent_dim),
                initializer=keras.initializers.RandomNormal(stddev=0.1, seed=self.seed),
                name="projection",
            )
            self.amplitude = self.add_weight(
                shape=(n_grid, self.dependent_dim), initializer="zeros", name="amplitude"
            )
        mask = np.zeros(grid, dtype="float32")
        mask[: in_shape[0], : in_shape[1], : in_shape[2]] = 1.0
        self._mask = mask
        self.inverse.build((None, *grid))
        self.built = True

    def call(self, inputs, training=None):
        """Fill the extra coefficients and invert.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z)
            Low-frequency coefficients.
        training : bool, optional
            Sample (True) or use the mean direction (False/None).

        Returns
        -------
        tensor, shape ``(batch, *out_shape)``
            Volumes.
        """
        pad = [[0, 0]] + [[0, g - i] for g, i in zip(self.grid, self.in_shape, strict=True)]
        low = ops.pad(inputs, pad)
        loc = ops.broadcast_to(self.loc, ops.shape(low))
        if self.dependent:
            flat = ops.reshape(inputs, (-1, int(np.prod(self.in_shape))))
            waves = ops.sin(ops.einsum("bi,igd->bgd", flat, self.projection))
            shift = ops.sum(waves * self.amplitude, axis=-1)
            loc = loc + ops.reshape(shift, ops.shape(low))
        if training:
            coefs = sample_von_mises(loc, ops.exp(self.log_concentration), self.seed_generator)
        else:
            coefs = loc
        mask = ops.convert_to_tensor(self._mask, dtype=low.dtype)
        return self.inverse(mask * low + (1.0 - mask) * coefs)

    def compute_output_shape(self, input_shape):
        """Return ``(batch, *out_shape)``.

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        return (input_shape[0], *self.out_shape)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            out_shape=list(self.out_shape),
            variational_coefs=list(self.variational_coefs),
            dependent=self.dependent,
            dependent_dim=self.dependent_dim,
            seed=self.seed,
        )
        return config
