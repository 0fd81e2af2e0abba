"""DeepFitter: train the deep EEG-to-fMRI models with Keras ``model.fit``.

Training is two-stage: an :class:`~braincoder.models.deep.fMRI_AE` is trained on volumes
(``DeepFitter(ae, volumes, volumes)``), then an
:class:`~braincoder.models.deep.EEG_to_fMRI` is trained on EEG with the autoencoder's latent
as an extra target (``latent_target=ae``). Keras callbacks give TensorBoard scalars, an image
of a predicted and a true volume slice per epoch, and early stopping.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pandas as pd

from .._layers_bayes import scale_kl_divergence
from ..utils.validation import check_kwargs
from ._monitor import Monitor, resolve_log_dir

__all__ = ["DeepFitter"]

logger = logging.getLogger(__name__)

IMAGE_TAG = "volume_slice"


class _VolumeImageCallback(keras.callbacks.Callback):
    """Writes a middle-z slice of a predicted and the true volume to TensorBoard."""

    def __init__(self, monitor, inputs, volume):
        super().__init__()
        self.monitor = monitor
        self.inputs = inputs
        self.volume = volume

    def on_epoch_end(self, epoch, logs=None):
        predicted = keras.ops.convert_to_numpy(
            self.model(self.inputs, training=False)["volume"]
        )[0, ..., 0]
        true = self.volume[0, ..., 0]
        z = true.shape[2] // 2
        pair = np.concatenate([true[:, :, z], predicted[:, :, z]], axis=1)
        low, high = float(pair.min()), float(pair.max())
        pair = (pair - low) / (high - low + 1e-12)
        self.monitor.images(epoch, IMAGE_TAG, pair[None, :, :, None], sub="images")


class DeepFitter:
    """Trains a deep encoding model (fMRI AE or EEG-to-fMRI).

    Parameters
    ----------
    model : fMRI_AE or EEG_to_fMRI
        The model (trained in place).
    paradigm : DataFrame or array-like
        Model inputs: EEG, shape (n_samples, channels, frequencies, windows) (or flattened),
        for :class:`~braincoder.models.deep.EEG_to_fMRI`; volumes for the autoencoder.
    data : DataFrame or array-like
        BOLD targets: (n_samples, x, y, z[, 1]) volumes or a sample × voxel frame (voxels
        in C order of the model's volume shape).

    Attributes
    ----------
    history : DataFrame or None
        Per-epoch losses of the last fit.
    run_dir : str or None
        TensorBoard run directory of the last fit.

    Raises
    ------
    TypeError
        If ``model`` is not a deep encoding model.
    ValueError
        For shapes that do not match the built model (EEG rank, channel count, volume
        shape), NaN values or different numbers of samples.

    Examples
    --------
    >>> from braincoder.datasets import simulate_eeg_fmri
    >>> from braincoder.models.deep import fMRI_AE
    >>> from braincoder.optimize import DeepFitter
    >>> sim = simulate_eeg_fmri(n_subjects=1, n_volumes=32, volume_shape=(8, 8, 8))
    >>> ae = fMRI_AE((2, 2, 2), (8, 8, 8), None, None, 4, seed=0)
    >>> history = DeepFitter(ae, sim.volumes, sim.volumes).fit(epochs=1, progressbar=False,
    ...                                                       log_dir=False)
    """

    def __init__(self, model, paradigm, data):
        from ..models.deep.base import DeepEncodingModel

        if not isinstance(model, DeepEncodingModel):
            raise TypeError(f"model must be a deep encoding model, got {type(model).__name__}")
        self.model = model
        self.inputs, self.index = model.format_paradigm(paradigm)
        self.targets = _format_volumes(data, model.volume_shape)
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"{model.paradigm_name} has {len(self.inputs)} samples but data has "
                f"{len(self.targets)}"
            )
        if isinstance(paradigm, pd.DataFrame) and isinstance(data, pd.DataFrame):
            if not paradigm.index.equals(data.index):
                raise ValueError(f"{model.paradigm_name} and data have different row labels")
        self.history = None
        self.run_dir = None

    def fit(
        self,
        epochs=10,
        batch_size=16,
        learning_rate=1e-3,
        validation_split=0.1,
        log_dir=None,
        early_stopping_patience=5,
        progressbar=True,
        seed=0,
        latent_target=None,
        **kwargs,
    ):
        """Train with Adam, validation on the last samples, TensorBoard and early stopping.

        Parameters
        ----------
        epochs : int, default 10
            Maximum number of epochs.
        batch_size : int, default 16
            Samples per step.
        learning_rate : float, default 1e-3
            Adam learning rate.
        validation_split : float, default 0.1
            Fraction of samples (the last ones, in order) held out for ``val_loss``; 0 for
            none (early stopping then watches ``loss``).
        log_dir : str, path, None or False
            TensorBoard directory (a timestamped run folder is made in it, with ``train``
            and ``validation`` scalars and volume-slice images); None or False (default) for
            no logging.
        early_stopping_patience : int or None, default 5
            Epochs without improvement before stopping (best weights restored); None off.
        progressbar : bool, default True
            Show a tqdm bar over epochs. Ctrl-C stops training and keeps the best epoch's
            weights (with early stopping) and the history so far.
        seed : int, default 0
            Seed given to ``keras.utils.set_random_seed`` (shuffling, dropout, sampling).
        latent_target : fMRI_AE, optional
            Trained autoencoder whose encoder latent of ``data`` is an extra target.
        **kwargs
            Not accepted; any keyword raises ``TypeError``.

        Returns
        -------
        DataFrame
            Per-epoch losses (``loss``, ``val_loss``), indexed by epoch.

        Raises
        ------
        TypeError
            For unknown keywords or a ``latent_target`` that is not an fMRI_AE.
        ValueError
            For bad option values or a latent shape that differs from the model's.
        """
        check_kwargs(kwargs, "DeepFitter.fit")
        if int(epochs) < 1 or int(batch_size) < 1 or learning_rate <= 0:
            raise ValueError(
                f"epochs and batch_size must be positive and learning_rate > 0, got "
                f"epochs={epochs!r}, batch_size={batch_size!r}, learning_rate={learning_rate!r}"
            )
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        keras.utils.set_random_seed(seed)
        targets = {"volume": self.targets}
        if latent_target is not None:
            from ..models.deep.fmri_ae import fMRI_AE

            if not isinstance(latent_target, fMRI_AE):
                raise TypeError(
                    f"latent_target must be a trained fMRI_AE, got {type(latent_target).__name__}"
                )
            if tuple(latent_target.latent_shape) != tuple(self.model.latent_shape):
                raise ValueError(
                    f"latent_target latent_shape {latent_target.latent_shape} differs from the "
                    f"model's {self.model.latent_shape}"
                )
            if tuple(latent_target.volume_shape) != tuple(self.model.volume_shape):
                raise ValueError(
                    f"latent_target volume shape {latent_target.volume_shape} differs from the "
                    f"model's {self.model.volume_shape}"
                )
            targets["latent"] = latent_target.predict_outputs(self.targets)["latent"]
        n_samples = len(self.inputs)
        n_val = int(round(validation_split * n_samples))
        if n_val >= n_samples:
            raise ValueError(f"validation_split leaves no training samples ({n_samples} samples)")
        n_train = n_samples - n_val
        x_train = self.inputs[:n_train]
        y_train = {key: value[:n_train] for key, value in targets.items()}
        validation = None
        if n_val:
            validation = (
                self.inputs[n_train:], {key: value[n_train:] for key, value in targets.items()}
            )
        # Bayesian layers: KL term scaled to the negative ELBO per element of the data term.
        scale_kl_divergence(self.model, n_train * int(np.prod(self.targets.shape[1:])))
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        callbacks = []
        watched = "val_loss" if n_val else "loss"
        if early_stopping_patience is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=watched, patience=int(early_stopping_patience),
                    restore_best_weights=True,
                )
            )
        name = type(self.model).__name__
        self.run_dir = resolve_log_dir(log_dir, run_name=name)
        monitor = Monitor(self.run_dir, int(epochs), progressbar, name,
                          restore_best=None if early_stopping_patience is None else watched,
                          what="DeepFitter.fit")
        callbacks.append(monitor)
        if self.run_dir is not None:
            image_source = validation or (x_train, y_train)
            callbacks.append(
                _VolumeImageCallback(
                    monitor, image_source[0][:1], image_source[1]["volume"][:1]
                )
            )
        logger.info(
            "training %s on %d samples (%d validation)", type(self.model).__name__, n_train, n_val
        )
        with monitor:
            self.model.fit(
                x_train,
                y_train,
                validation_data=validation,
                epochs=int(epochs),
                batch_size=int(batch_size),
                shuffle=True,
                callbacks=callbacks,
                verbose=0,
            )
        if monitor.interrupted:
            monitor.restore(self.model)
        self.history = pd.DataFrame(monitor.records).rename_axis("epoch")
        return self.history


def _format_volumes(data, volume_shape):
    volume_shape = tuple(volume_shape)
    if isinstance(data, pd.DataFrame):
        values = data.to_numpy(dtype="float32")
    else:
        values = np.asarray(data, dtype="float32")
    n_voxels = int(np.prod(volume_shape))
    if values.ndim == 2 and values.shape[1] == n_voxels:
        values = values.reshape(len(values), *volume_shape)
    if values.ndim == 4 and tuple(values.shape[1:]) == volume_shape:
        values = values[..., None]
    if values.ndim != 5 or tuple(values.shape[1:]) != (*volume_shape, 1):
        raise ValueError(
            f"data must be volumes of shape (n_samples, {', '.join(map(str, volume_shape))}[, 1]) "
            f"or n_samples × {n_voxels} voxels, got {values.shape}"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad.reshape(len(values), -1).any(1)))
        raise ValueError(f"data has {int(bad.sum())} non-finite values (first in sample {first})")
    return values
