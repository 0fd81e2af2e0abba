"""Classifiers on synthesised fMRI and on the EEG view of an EEG-to-fMRI model.

Both return class logits from ``call`` and are trained with the standard Keras
``compile``/``fit`` (e.g. ``SparseCategoricalCrossentropy(from_logits=True)``);
``classify`` returns integer labels.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ...utils._input_checks import check_samples
from .base import CheckedInputMixin
from .fmri_ae import _offset, _positive_triple

__all__ = ["LinearClassifier", "view_EEG_classifier"]


def _check_classes(n_classes):
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def _classify(model, values, batch_size):
    logits = [
        ops.convert_to_numpy(model(values[start : start + batch_size], training=False))
        for start in range(0, len(values), batch_size)
    ]
    return np.argmax(np.concatenate(logits), axis=1)


@keras.saving.register_keras_serializable(package="braincoder")
class LinearClassifier(CheckedInputMixin, keras.Model):
    """Linear classifier of (synthesised) fMRI volumes.

    Parameters
    ----------
    volume_shape : tuple of 3 int
        Volume shape (x, y, z).
    n_classes : int, default 2
        Number of classes.
    weight_decay : float, default 0.0
        L2 penalty of the weights.
    seed : int, optional
        Seed of the initialiser.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep import LinearClassifier
    >>> clf = LinearClassifier((4, 4, 4), seed=0)
    >>> clf.classify(np.zeros((3, 4, 4, 4, 1))).shape
    (3,)
    """

    def __init__(
        self, volume_shape, n_classes=2, weight_decay=0.0, seed=None, name=None, trainable=True
    ):
        volume_shape = _positive_triple(volume_shape, "volume_shape")
        n_classes = _check_classes(n_classes)
        super().__init__(name=name or "linear_classifier", trainable=trainable)
        self.volume_shape, self.n_classes = volume_shape, n_classes
        self.weight_decay, self.seed = float(weight_decay), seed
        self.flatten = keras.layers.Flatten(name="flatten")
        self.head = keras.layers.Dense(
            n_classes,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
            name="head",
        )
        self(np.zeros((1, *volume_shape, 1), dtype="float32"))

    def _sample_spec(self):
        return (*self.volume_shape, 1), "volumes", ("x voxels", "y voxels", "z voxels",
                                                    "channels")

    def call(self, inputs, training=False):
        """Return class logits.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z[, 1])
            Volumes.
        training : bool, default False
            Unused.

        Returns
        -------
        tensor, shape (batch, n_classes)
            Logits.
        """
        return self.head(self.flatten(ops.cast(inputs, "float32")))

    def classify(self, volumes, batch_size=64):
        """Predict labels.

        Parameters
        ----------
        volumes : array-like, shape (n_samples, x, y, z[, 1])
            Volumes (or flattened n_samples × n_voxels).
        batch_size : int, default 64
            Samples per forward pass.

        Returns
        -------
        ndarray of int, shape (n_samples,)
            Labels.

        Raises
        ------
        ValueError
            If the volumes do not have the classifier's shape or hold NaN or inf.
        """
        values = check_samples(volumes, self._sample_spec()[0], "volumes",
                               self._sample_spec()[2])
        return _classify(self, values, batch_size)

    def get_config(self):
        """Return the constructor arguments.

        Returns
        -------
        dict
            Configuration.
        """
        return {
            "name": self.name, "trainable": self.trainable,
            "volume_shape": list(self.volume_shape), "n_classes": self.n_classes,
            "weight_decay": self.weight_decay, "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="braincoder")
class view_EEG_classifier(CheckedInputMixin, keras.Model):  # noqa: N801 - public name of the reference
    """Classifier of the EEG view: an EEG-to-fMRI model's EEG encoder and a linear head.

    Parameters
    ----------
    model : EEG_to_fMRI
        Model whose EEG encoder (up to the latent) is reused.
    n_classes : int, default 2
        Number of classes.
    freeze_encoder : bool, default True
        Keep the encoder weights fixed while training the head.
    seed : int, optional
        Seed of the head initialiser.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.

    Raises
    ------
    TypeError
        If ``model`` is not an EEG_to_fMRI.
    """

    def __init__(
        self, model, n_classes=2, freeze_encoder=True, seed=None, name=None, trainable=True
    ):
        from .eeg_to_fmri import EEG_to_fMRI

        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, EEG_to_fMRI):
            raise TypeError(f"model must be an EEG_to_fMRI, got {type(model).__name__}")
        n_classes = _check_classes(n_classes)
        super().__init__(name=name or "view_eeg_classifier", trainable=trainable)
        self.eeg_model, self.n_classes = model, n_classes
        self.freeze_encoder, self.seed = bool(freeze_encoder), seed
        self.eeg_model.trainable = not self.freeze_encoder
        self.flatten = keras.layers.Flatten(name="flatten")
        self.head = keras.layers.Dense(
            n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=_offset(seed, 0)),
            name="head",
        )
        self(np.zeros((1, *model.eeg_shape), dtype="float32"))

    def _sample_spec(self):
        return tuple(self.eeg_model.eeg_shape), "eeg", self.eeg_model.paradigm_axes

    def call(self, inputs, training=False):
        """Return class logits from EEG.

        Parameters
        ----------
        inputs : tensor, shape (batch, channels, frequencies, windows)
            EEG samples.
        training : bool, default False
            Training mode of the encoder (ignored when frozen).

        Returns
        -------
        tensor, shape (batch, n_classes)
            Logits.
        """
        latent, _ = self.eeg_model.encode(inputs, training=training and not self.freeze_encoder)
        return self.head(self.flatten(latent))

    def classify(self, eeg, batch_size=64):
        """Predict labels from EEG.

        Parameters
        ----------
        eeg : array-like, shape (n_samples, channels, frequencies, windows)
            EEG samples (or flattened).
        batch_size : int, default 64
            Samples per forward pass.

        Returns
        -------
        ndarray of int, shape (n_samples,)
            Labels.
        """
        values, _ = self.eeg_model.format_paradigm(eeg)
        return _classify(self, values, batch_size)

    def get_config(self):
        """Return the constructor arguments (the EEG model serialised).

        Returns
        -------
        dict
            Configuration.
        """
        return {
            "name": self.name, "trainable": self.trainable,
            "model": keras.saving.serialize_keras_object(self.eeg_model),
            "n_classes": self.n_classes, "freeze_encoder": self.freeze_encoder,
            "seed": self.seed,
        }
