"""Decoders from voxel patterns into a pretrained embedding space (CLIP-style).

:class:`EmbeddingDecoder` is a Keras model (linear head or MLP, L2-normalised output, a
learnable temperature for the contrastive loss) trained by
:class:`braincoder.optimize.EmbeddingFitter`; :class:`RidgeEmbeddingDecoder` is its
closed-form ridge baseline. Both take voxel data whose rows carry stimulus ids and a table of
stimulus embeddings, and return predicted embeddings as DataFrames.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import pandas as pd
from keras import ops

from ...utils.formatting import format_data
from ...utils.retrieval import SAME_TARGET_COSINE
from ..registry import register_model
from ._embedding_ridge import (
    RidgeEmbeddingDecoder,
    _check_voxels,
    _labels_from_json,
    _labels_to_json,
)
from .base import CheckedInputMixin

__all__ = ["EmbeddingDecoder", "RidgeEmbeddingDecoder", "contrastive_loss"]

_MIN_LOG_TEMPERATURE = math.log(1e-2)
_MAX_LOG_TEMPERATURE = math.log(1e2)


def _l2_normalize(values):
    return values / ops.maximum(ops.norm(values, axis=-1, keepdims=True), 1e-12)


def contrastive_loss(pred, target, temperature):
    """Symmetric InfoNCE (CLIP) loss over a batch, as a Keras tensor.

    Same definition as :func:`braincoder.utils.retrieval.contrastive_loss_numpy`: cosine
    similarities of predictions and targets divided by ``temperature``, cross-entropy over
    targets and over predictions, averaged; rows with identical targets (repeats of a
    stimulus) are positives of one another.

    Parameters
    ----------
    pred, target : tensor, shape (batch, embedding_dim)
        Predicted and target embeddings (normalised here).
    temperature : float or scalar tensor
        Softmax temperature.

    Returns
    -------
    tensor
        Scalar loss.
    """
    pred = _l2_normalize(pred)
    target = _l2_normalize(target)
    logits = ops.matmul(pred, ops.transpose(target)) / temperature
    positives = ops.cast(
        ops.matmul(target, ops.transpose(target)) > SAME_TARGET_COSINE, logits.dtype
    )
    weights = positives / ops.sum(positives, axis=1, keepdims=True)
    rows = -ops.sum(weights * ops.log_softmax(logits, axis=1), axis=1)
    columns = -ops.sum(weights * ops.log_softmax(ops.transpose(logits), axis=1), axis=1)
    return 0.5 * (ops.mean(rows) + ops.mean(columns))


@register_model("embedding_decoder")
@keras.saving.register_keras_serializable(package="braincoder")
class EmbeddingDecoder(CheckedInputMixin, keras.Model):
    """Neural decoder from voxel patterns to unit-norm stimulus embeddings.

    Voxels are standardised (means and scales learnt at fit time and saved with the model),
    passed through ``hidden`` dense layers (GELU) or straight to a linear head, and the
    output is L2-normalised. A learnable log-temperature scales the contrastive loss.

    Parameters
    ----------
    n_voxels : int
        Number of input voxels.
    embedding_dim : int
        Dimension of the embedding space.
    hidden : sequence of int, default ()
        Widths of hidden layers; empty for a linear head.
    dropout : float, default 0.0
        Dropout rate applied to the input of every dense layer during training.
    temperature : float, default 0.07
        Initial temperature of the contrastive loss (kept within [0.01, 100]).
    learn_temperature : bool, default True
        Train the temperature with the rest of the model.
    seed : int, optional
        Seed of the weight initialisers and dropout.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.
    voxel_names, embedding_labels : dict, optional
        Labels learnt at fit time, as stored in a saved model's configuration.

    Attributes
    ----------
    voxel_names : Index or None
        Voxel labels of the training data (None before fitting).
    embedding_labels : Index or None
        Embedding dimension labels of the training embeddings (None before fitting).
    temperature : float
        Current temperature.

    Examples
    --------
    >>> from braincoder.datasets import simulate_embedding_fmri
    >>> from braincoder.models.deep import EmbeddingDecoder
    >>> sim = simulate_embedding_fmri(n_stimuli=40, embedding_dim=8, n_voxels=20)
    >>> decoder = EmbeddingDecoder(20, 8, seed=0)
    >>> _ = decoder.fit(sim.train_data, sim.train_embeddings, epochs=2, progressbar=False)
    >>> decoder.predict(sim.test_data).shape
    (16, 8)
    """

    def __init__(
        self,
        n_voxels,
        embedding_dim,
        hidden=(),
        dropout=0.0,
        temperature=0.07,
        learn_temperature=True,
        seed=None,
        name=None,
        trainable=True,
        voxel_names=None,
        embedding_labels=None,
    ):
        for what, value in [("n_voxels", n_voxels), ("embedding_dim", embedding_dim)]:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        hidden = tuple(int(width) for width in hidden)
        if any(width < 1 for width in hidden):
            raise ValueError(f"hidden widths must be positive integers, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not math.exp(_MIN_LOG_TEMPERATURE) <= temperature <= math.exp(_MAX_LOG_TEMPERATURE):
            raise ValueError(f"temperature must be in [0.01, 100], got {temperature!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        super().__init__(name=name, trainable=trainable)
        self.n_voxels = int(n_voxels)
        self.embedding_dim = int(embedding_dim)
        self.hidden = hidden
        self.dropout = float(dropout)
        self.initial_temperature = float(temperature)
        self.learn_temperature = bool(learn_temperature)
        self.seed = seed
        self.voxel_names = _labels_from_json(voxel_names)
        self.embedding_labels = _labels_from_json(embedding_labels)
        self.loss_mode = "contrastive"

        def layer_seed(i):
            return None if seed is None else seed + i

        self.dense_layers = [
            keras.layers.Dense(
                width,
                activation="gelu",
                kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed(i)),
                name=f"hidden_{i}",
            )
            for i, width in enumerate(hidden)
        ]
        self.head = keras.layers.Dense(
            self.embedding_dim,
            kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed(len(hidden))),
            name="head",
        )
        self.dropout_layers = [
            keras.layers.Dropout(self.dropout, seed=layer_seed(100 + i), name=f"dropout_{i}")
            for i in range(len(hidden) + 1)
        ]
        self.contrastive_tracker = keras.metrics.Mean(name="contrastive_loss")
        self.mse_tracker = keras.metrics.Mean(name="mse_loss")
        self.build((None, self.n_voxels))

    def _sample_spec(self):
        return (self.n_voxels,), "data", ("voxels",)

    def build(self, input_shape):
        """Create the weights (standardisation, layers, temperature).

        Parameters
        ----------
        input_shape : tuple
            ``(batch, n_voxels)``.
        """
        if self.built:
            return
        self.input_mean = self.add_weight(
            shape=(self.n_voxels,), initializer="zeros", trainable=False, name="input_mean"
        )
        self.input_scale = self.add_weight(
            shape=(self.n_voxels,), initializer="ones", trainable=False, name="input_scale"
        )
        self.log_temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_temperature)),
            trainable=self.learn_temperature,
            name="log_temperature",
        )
        width = self.n_voxels
        for layer in self.dense_layers:
            layer.build((None, width))
            width = layer.units
        self.head.build((None, width))
        self.built = True

    def call(self, inputs, training=False):
        """Predict unit-norm embeddings from voxel patterns.

        Parameters
        ----------
        inputs : tensor, shape (batch, n_voxels)
            Voxel patterns (raw; standardised inside).
        training : bool, default False
            Apply dropout.

        Returns
        -------
        tensor, shape (batch, embedding_dim)
            L2-normalised embeddings.
        """
        values = (ops.cast(inputs, "float32") - self.input_mean) / self.input_scale
        for layer, drop in zip(self.dense_layers, self.dropout_layers, strict=False):
            values = layer(drop(values, training=training))
        values = self.head(self.dropout_layers[-1](values, training=training))
        return _l2_normalize(values)

    def current_temperature(self):
        """Return the temperature tensor (clipped to [0.01, 100]).

        Returns
        -------
        tensor
            Scalar temperature.
        """
        return ops.exp(
            ops.clip(self.log_temperature, _MIN_LOG_TEMPERATURE, _MAX_LOG_TEMPERATURE)
        )

    @property
    def temperature(self):
        """float: The current temperature of the contrastive loss."""
        return float(ops.convert_to_numpy(self.current_temperature()))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Contrastive, MSE or summed loss of a batch (see ``loss_mode``).

        Parameters
        ----------
        x : tensor
            Voxel patterns (unused).
        y : tensor, shape (batch, embedding_dim)
            Unit-norm target embeddings.
        y_pred : tensor, shape (batch, embedding_dim)
            Predictions.
        sample_weight : None
            Not supported (ignored).
        training : bool, default True
            Whether the loss is computed during training.

        Returns
        -------
        tensor
            Scalar loss.
        """
        del x, sample_weight, training
        contrastive = contrastive_loss(y_pred, y, self.current_temperature())
        mse = ops.mean(ops.sum(ops.square(y_pred - _l2_normalize(y)), axis=1))
        self.contrastive_tracker.update_state(contrastive)
        self.mse_tracker.update_state(mse)
        if self.loss_mode == "contrastive":
            return contrastive
        if self.loss_mode == "mse":
            # The zero term gives the temperature a (zero) gradient, so no variable is left
            # without one.
            return mse + 0.0 * self.log_temperature
        return contrastive + mse

    def fit(self, data, embeddings, **fit_kwargs):
        """Train the decoder (see :meth:`braincoder.optimize.EmbeddingFitter.fit`).

        Parameters
        ----------
        data : DataFrame, shape (n_rows, n_voxels)
            Voxel patterns; the index (or its ``stimulus`` level) holds stimulus ids.
        embeddings : DataFrame, shape (n_stimuli, embedding_dim)
            Stimulus embeddings indexed by stimulus id.
        **fit_kwargs
            Keywords of :meth:`braincoder.optimize.EmbeddingFitter.fit` (``loss``,
            ``epochs``, ...); others raise ``TypeError``.

        Returns
        -------
        EmbeddingDecoder
            ``self``; the training history is in ``self.fit_history``.
        """
        from ...optimize.embedding import EmbeddingFitter

        fitter = EmbeddingFitter(self, data, embeddings)
        self.fit_history = fitter.fit(**fit_kwargs)
        return self

    def reconstruct(self, data, batch_size=256):
        """Decode embeddings from voxel patterns (the decoder role's name for :meth:`predict`).

        Parameters
        ----------
        data : DataFrame or array-like, shape (n_rows, n_voxels)
            Voxel patterns (same voxels as at fit time).
        batch_size : int, default 256
            Rows per forward pass.

        Returns
        -------
        DataFrame, shape (n_rows, embedding_dim)
            Unit-norm embeddings indexed like ``data``.
        """
        return self.predict(data, batch_size=batch_size)

    def predict(self, data, batch_size=256):
        """Predict unit-norm embeddings, rows labelled as the data.

        Parameters
        ----------
        data : DataFrame or array-like, shape (n_rows, n_voxels)
            Voxel patterns (same voxels as at fit time; a DataFrame's columns are matched
            by name).
        batch_size : int, default 256
            Rows per forward pass.

        Returns
        -------
        DataFrame, shape (n_rows, embedding_dim)
            Predictions indexed like ``data``, columns the embedding labels learnt at fit
            time.

        Raises
        ------
        RuntimeError
            If the decoder was never fitted.
        ValueError
            If the voxels differ from the fitted ones (count or names) or values are NaN.
        """
        if self.embedding_labels is None:
            raise RuntimeError("EmbeddingDecoder is not fitted; call fit(data, embeddings)")
        frame = _check_voxels(
            format_data(data, "data"), self.n_voxels, self.voxel_names, "decoder"
        )
        values = np.asarray(frame.to_numpy(), dtype=np.float32)
        outputs = [
            ops.convert_to_numpy(self(values[start : start + batch_size], training=False))
            for start in range(0, len(values), batch_size)
        ]
        return pd.DataFrame(
            np.concatenate(outputs), index=frame.index, columns=self.embedding_labels
        )

    def set_labels(self, voxel_names, embedding_labels):
        """Store the voxel and embedding labels of the training data.

        Parameters
        ----------
        voxel_names : Index
            Data columns.
        embedding_labels : Index
            Embedding columns.
        """
        self.voxel_names = pd.Index(voxel_names) if voxel_names is not None else None
        self.embedding_labels = pd.Index(embedding_labels)

    def get_config(self):
        """Return the constructor arguments and fitted labels (JSON-able).

        Returns
        -------
        dict
            Configuration for :meth:`from_config`.
        """
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_voxels": self.n_voxels,
            "embedding_dim": self.embedding_dim,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "temperature": self.initial_temperature,
            "learn_temperature": self.learn_temperature,
            "seed": self.seed,
            "voxel_names": None if self.voxel_names is None else _labels_to_json(self.voxel_names),
            "embedding_labels": None
            if self.embedding_labels is None
            else _labels_to_json(self.embedding_labels),
        }

    @classmethod
    def from_config(cls, config):
        """Build a decoder from :meth:`get_config` output.

        Parameters
        ----------
        config : dict
            Configuration.

        Returns
        -------
        EmbeddingDecoder
            A new (unfitted-weights) decoder.
        """
        return cls(**config)

    def save(self, filepath, overwrite=True):
        """Save architecture, weights and labels to a ``.keras`` file.

        Parameters
        ----------
        filepath : str or path
            Destination ending in ``.keras``.
        overwrite : bool, default True
            Overwrite an existing file.

        Raises
        ------
        ValueError
            If the file name does not end in ``.keras``.
        """
        if not os.fspath(filepath).endswith(".keras"):
            raise ValueError(f"filepath must end in '.keras', got {os.fspath(filepath)!r}")
        super().save(filepath, overwrite=overwrite)

    @classmethod
    def load(cls, filepath):
        """Load a decoder saved with :meth:`save` (``safe_mode=True``, no compile).

        Parameters
        ----------
        filepath : str or path
            A ``.keras`` file.

        Returns
        -------
        EmbeddingDecoder
            The decoder, labels and weights restored.

        Raises
        ------
        TypeError
            If the file holds another kind of model.
        """
        model = keras.saving.load_model(filepath, compile=False, safe_mode=True)
        if not isinstance(model, cls):
            raise TypeError(f"{filepath} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

