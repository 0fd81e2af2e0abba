"""Fourier feature maps and EEG channel attention (see :mod:`braincoder.layers`)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

__all__ = [
    "FourierFeatures",
    "RandomFourierFeatures",
    "TopographicalAttention",
]


@keras.saving.register_keras_serializable(package="braincoder")
class FourierFeatures(keras.layers.Layer):
    """Learnable Fourier features ``[cos(2 pi x B), sin(2 pi x B)]`` of the last axis.

    Parameters
    ----------
    n_features : int
        Number of frequencies (the output has ``2 * n_features`` features).
    scale : float, default 1.0
        Standard deviation of the initial frequencies ``B``.
    trainable_frequencies : bool, default True
        Learn ``B``.
    seed : int, optional
        Seed of the initial frequencies.
    **kwargs
        Keras layer arguments.
    """

    def __init__(self, n_features, scale=1.0, trainable_frequencies=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(n_features) < 1:
            raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
        self.n_features = int(n_features)
        self.scale = float(scale)
        self.trainable_frequencies = bool(trainable_frequencies)
        self.seed = seed

    def build(self, input_shape):
        """Create the frequency matrix.

        Parameters
        ----------
        input_shape : tuple
            (..., n_inputs).
        """
        self.frequencies = self.add_weight(
            shape=(int(input_shape[-1]), self.n_features),
            initializer=keras.initializers.RandomNormal(stddev=self.scale, seed=self.seed),
            trainable=self.trainable_frequencies,
            name="frequencies",
        )
        self.built = True

    def call(self, inputs):
        """Map inputs to cos/sin features.

        Parameters
        ----------
        inputs : tensor, shape (..., n_inputs)
            Inputs.

        Returns
        -------
        tensor, shape (..., 2 * n_features)
            Features.
        """
        phase = 2.0 * math.pi * ops.matmul(inputs, self.frequencies)
        return ops.concatenate([ops.cos(phase), ops.sin(phase)], axis=-1)

    def compute_output_shape(self, input_shape):
        """Return (..., 2 * n_features).

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        return (*input_shape[:-1], 2 * self.n_features)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            n_features=self.n_features,
            scale=self.scale,
            trainable_frequencies=self.trainable_frequencies,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="braincoder")
class RandomFourierFeatures(FourierFeatures):
    """Random Fourier features: a fixed, seeded Gaussian projection followed by cos/sin.

    The projection is drawn with ``numpy.random.default_rng(seed)`` (so it is reproducible
    without Keras' global seed) and is not trained; it is saved with the model.

    Parameters
    ----------
    n_features : int
        Number of random frequencies (output width ``2 * n_features``).
    scale : float, default 1.0
        Standard deviation of the frequencies.
    seed : int, default 0
        Seed of the projection.
    **kwargs
        Keras layer arguments.
    """

    def __init__(self, n_features, scale=1.0, seed=0, **kwargs):
        kwargs.pop("trainable_frequencies", None)
        super().__init__(n_features, scale, trainable_frequencies=False, seed=seed, **kwargs)

    def build(self, input_shape):
        """Draw the fixed projection.

        Parameters
        ----------
        input_shape : tuple
            (..., n_inputs).
        """
        values = np.random.default_rng(self.seed).normal(
            scale=self.scale, size=(int(input_shape[-1]), self.n_features)
        )
        self.frequencies = self.add_weight(
            shape=values.shape,
            initializer=keras.initializers.Constant(values.astype("float32")),
            trainable=False,
            name="frequencies",
        )
        self.built = True


@keras.saving.register_keras_serializable(package="braincoder")
class TopographicalAttention(keras.layers.Layer):
    """Channel × channel attention over EEG channels.

    Scores are ``softmax(P + Q K^T / sqrt(d))`` over channels, with ``P`` a learnable
    channel × channel prior and ``Q, K`` learnt projections of each channel's features; the
    output re-weights channels as ``scores @ x``.

    Parameters
    ----------
    n_channels : int
        Number of EEG channels.
    key_dim : int, default 8
        Width ``d`` of the query/key projections.
    seed : int, optional
        Seed of the initialisers.
    **kwargs
        Keras layer arguments.

    Returns
    -------
    tuple of tensor
        On call: re-weighted channels (batch, n_channels, n_features) and attention scores
        (batch, n_channels, n_channels).
    """

    def __init__(self, n_channels, key_dim=8, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.n_channels = int(n_channels)
        self.key_dim = int(key_dim)
        self.seed = seed

    def build(self, input_shape):
        """Create the prior and the projections.

        Parameters
        ----------
        input_shape : tuple
            (batch, n_channels, n_features).

        Raises
        ------
        ValueError
            If the channel axis does not have ``n_channels`` entries.
        """
        if len(input_shape) != 3 or int(input_shape[1]) != self.n_channels:
            raise ValueError(
                f"TopographicalAttention expects (batch, {self.n_channels}, features), "
                f"got {input_shape}"
            )
        n_features = int(input_shape[2])
        self.prior = self.add_weight(
            shape=(self.n_channels, self.n_channels), initializer="zeros", name="prior"
        )
        glorot = keras.initializers.GlorotUniform
        self.query = self.add_weight(
            shape=(n_features, self.key_dim), initializer=glorot(seed=self.seed), name="query"
        )
        seed = None if self.seed is None else self.seed + 1
        self.key = self.add_weight(
            shape=(n_features, self.key_dim), initializer=glorot(seed=seed), name="key"
        )
        self.built = True

    def call(self, inputs):
        """Re-weight channels by attention.

        Parameters
        ----------
        inputs : tensor, shape (batch, n_channels, n_features)
            Channel features.

        Returns
        -------
        tuple of tensor
            Outputs (batch, n_channels, n_features) and scores (batch, n_channels, n_channels).
        """
        q = ops.matmul(inputs, self.query)
        k = ops.matmul(inputs, self.key)
        logits = self.prior + ops.matmul(q, ops.transpose(k, (0, 2, 1))) / math.sqrt(self.key_dim)
        scores = ops.softmax(logits, axis=-1)
        return ops.matmul(scores, inputs), scores

    def compute_output_shape(self, input_shape):
        """Return the output and score shapes.

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple of tuple
            Output and score shapes.
        """
        return tuple(input_shape), (input_shape[0], self.n_channels, self.n_channels)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(n_channels=self.n_channels, key_dim=self.key_dim, seed=self.seed)
        return config
