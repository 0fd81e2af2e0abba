"""3D residual and locally connected blocks (see :mod:`braincoder.layers`)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["ResBlock3D", "LocallyConnected3D"]


def _triple(value, what):
    values = (value,) * 3 if isinstance(value, (int, np.integer)) else tuple(value)
    values = tuple(int(v) for v in values)
    if len(values) != 3 or any(v < 1 for v in values):
        raise ValueError(f"{what} must be a positive int or three positive ints, got {value!r}")
    return values


def _regularizer(weight_decay):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


@keras.saving.register_keras_serializable(package="braincoder")
class ResBlock3D(keras.layers.Layer):
    """Residual 3D block: conv-BN-relu-conv-BN, plus an optional (projected) skip, relu.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or tuple of 3 int, default 3
        Convolution kernel.
    strides : int or tuple of 3 int, default 1
        Stride of the first convolution (and of the skip projection).
    batch_norm : bool, default True
        Use batch normalisation after each convolution.
    skip_connections : bool, default True
        Add the (1×1×1-projected when shapes differ) input to the block output.
    weight_decay : float, default 0.0
        L2 penalty of the kernels.
    seed : int, optional
        Seed of the initialisers.
    **kwargs
        Keras layer arguments.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        batch_norm=True,
        skip_connections=True,
        weight_decay=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides = _triple(strides, "strides")
        self.batch_norm = bool(batch_norm)
        self.skip_connections = bool(skip_connections)
        self.weight_decay = float(weight_decay)
        self.seed = seed

        def conv(kernel, strides, offset, name):
            return keras.layers.Conv3D(
                self.filters,
                kernel,
                strides=strides,
                padding="same",
                kernel_initializer=keras.initializers.HeNormal(
                    seed=None if seed is None else seed + offset
                ),
                kernel_regularizer=_regularizer(self.weight_decay),
                name=name,
            )

        self.conv1 = conv(self.kernel_size, self.strides, 0, "conv1")
        self.conv2 = conv(self.kernel_size, 1, 1, "conv2")
        self.bn1 = keras.layers.BatchNormalization(name="bn1") if self.batch_norm else None
        self.bn2 = keras.layers.BatchNormalization(name="bn2") if self.batch_norm else None
        self.projection = None

    def build(self, input_shape):
        """Build the convolutions (and the skip projection when needed).

        Parameters
        ----------
        input_shape : tuple
            (batch, x, y, z, channels).
        """
        self.conv1.build(input_shape)
        mid = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(mid)
        if self.bn1 is not None:
            self.bn1.build(mid)
            self.bn2.build(mid)
        needs_projection = int(input_shape[-1]) != self.filters or self.strides != (1, 1, 1)
        if self.skip_connections and needs_projection:
            self.projection = keras.layers.Conv3D(
                self.filters, 1, strides=self.strides, padding="same", name="projection"
            )
            self.projection.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        """Apply the block.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z, channels)
            Input volumes.
        training : bool, optional
            Batch-normalisation mode.

        Returns
        -------
        tensor, shape (batch, x', y', z', filters)
            Block output.
        """
        values = self.conv1(inputs)
        if self.bn1 is not None:
            values = self.bn1(values, training=training)
        values = self.conv2(ops.relu(values))
        if self.bn2 is not None:
            values = self.bn2(values, training=training)
        if self.skip_connections:
            values = values + (inputs if self.projection is None else self.projection(inputs))
        return ops.relu(values)

    def compute_output_shape(self, input_shape):
        """Return the output shape.

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            batch_norm=self.batch_norm,
            skip_connections=self.skip_connections,
            weight_decay=self.weight_decay,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="braincoder")
class LocallyConnected3D(keras.layers.Layer):
    """3D locally connected layer: a convolution whose weights differ at every location.

    Patches are gathered with precomputed indices and each output location applies its own
    kernel with one einsum (valid padding).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or tuple of 3 int
        Patch size.
    strides : int or tuple of 3 int, default 1
        Patch stride.
    use_bias : bool, default True
        Add a bias per location and filter.
    weight_decay : float, default 0.0
        L2 penalty of the kernel.
    seed : int, optional
        Seed of the kernel initialiser.
    **kwargs
        Keras layer arguments.

    Raises
    ------
    ValueError
        If the kernel is larger than the input.
    """

    def __init__(
        self, filters, kernel_size, strides=1, use_bias=True, weight_decay=0.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides = _triple(strides, "strides")
        self.use_bias = bool(use_bias)
        self.weight_decay = float(weight_decay)
        self.seed = seed

    def _out_spatial(self, spatial):
        sizes = zip(spatial, self.kernel_size, self.strides, strict=True)
        out = tuple((n - k) // s + 1 for n, k, s in sizes)
        if any(n < k for n, k in zip(spatial, self.kernel_size, strict=True)):
            raise ValueError(
                f"LocallyConnected3D kernel {self.kernel_size} is larger than the input {spatial}"
            )
        return out

    def build(self, input_shape):
        """Create the per-location kernels and the patch indices.

        Parameters
        ----------
        input_shape : tuple
            (batch, x, y, z, channels).
        """
        spatial = tuple(int(n) for n in input_shape[1:4])
        channels = int(input_shape[4])
        out = self._out_spatial(spatial)
        grids = [np.arange(o) * s for o, s in zip(out, self.strides, strict=True)]
        offsets = [np.arange(k) for k in self.kernel_size]
        starts = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 1, 3)
        deltas = np.stack(np.meshgrid(*offsets, indexing="ij"), -1).reshape(1, -1, 3)
        coords = starts + deltas
        flat = np.ravel_multi_index((coords[..., 0], coords[..., 1], coords[..., 2]), spatial)
        self._indices = flat.astype("int32")
        self._spatial, self._out, self._channels = spatial, out, channels
        n_locations, patch = flat.shape
        self.kernel = self.add_weight(
            shape=(n_locations, patch * channels, self.filters),
            initializer=keras.initializers.GlorotUniform(seed=self.seed),
            regularizer=_regularizer(self.weight_decay),
            name="kernel",
        )
        self.bias = (
            self.add_weight(shape=(n_locations, self.filters), initializer="zeros", name="bias")
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs):
        """Apply the unshared kernels.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z, channels)
            Input volumes.

        Returns
        -------
        tensor, shape (batch, x', y', z', filters)
            Output volumes.
        """
        flat = ops.reshape(inputs, (-1, int(np.prod(self._spatial)), self._channels))
        patches = ops.take(flat, ops.convert_to_tensor(self._indices), axis=1)
        n_locations, patch = self._indices.shape
        patches = ops.reshape(patches, (-1, n_locations, patch * self._channels))
        values = ops.einsum("bpk,pkf->bpf", patches, self.kernel)
        if self.bias is not None:
            values = values + self.bias
        return ops.reshape(values, (-1, *self._out, self.filters))

    def compute_output_shape(self, input_shape):
        """Return the output shape.

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        out = self._out_spatial(tuple(int(n) for n in input_shape[1:4]))
        return (input_shape[0], *out, self.filters)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            use_bias=self.use_bias,
            weight_decay=self.weight_decay,
            seed=self.seed,
        )
        return config
