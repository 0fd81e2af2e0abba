"""EmbeddingFitter: train an :class:`~braincoder.models.deep.EmbeddingDecoder` with Keras.

Training runs through Keras 3 ``model.fit`` (the decoder's ``compute_loss`` gives the
contrastive, MSE or summed loss), with a validation split by stimulus, retrieval accuracy
on the validation stimuli at the end of every epoch, TensorBoard scalars, early stopping
with the best weights restored and a tqdm progress bar.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..utils.formatting import format_data
from ..utils.retrieval import (
    align_embeddings,
    check_disjoint_stimuli,
    format_embeddings,
    retrieval_accuracy,
    stimulus_labels,
)
from ..utils.validation import check_choice
from ._monitor import Monitor, resolve_log_dir

__all__ = ["EmbeddingFitter"]

logger = logging.getLogger(__name__)

LOSSES = ("contrastive", "mse", "both")
RETRIEVAL_DEPTHS = (1, 5)


def _check_voxels(frame, n_voxels, voxel_names, owner):
    from ..models.deep._embedding_ridge import _check_voxels as check

    return check(frame, n_voxels, voxel_names, owner)


class _RetrievalCallback(keras.callbacks.Callback):
    """Adds top-k retrieval on the validation stimuli and the temperature to the epoch logs."""

    def __init__(self, inputs, candidates, positions):
        super().__init__()
        self.inputs = inputs
        self.candidates = candidates
        self.positions = positions
        n_candidates = 0 if candidates is None else len(candidates)
        self.depths = [k for k in RETRIEVAL_DEPTHS if k <= n_candidates]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["temperature"] = self.model.temperature
        if self.inputs is None:
            return
        pred = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        scores = retrieval_accuracy(pred, self.candidates, self.depths, true_index=self.positions)
        for depth, value in scores.items():
            logs[f"val_top{depth}"] = value


class EmbeddingFitter:
    """Trains an embedding decoder on voxel patterns and stimulus embeddings.

    Parameters
    ----------
    model : EmbeddingDecoder
        The decoder to train (its weights are updated in place).
    data : DataFrame, shape (n_rows, n_voxels)
        Voxel patterns. The row index, or its level ``stimulus``, holds the id of the
        stimulus shown on each row; repeats of a stimulus share its embedding.
    embeddings : DataFrame, shape (n_stimuli, embedding_dim)
        One embedding per stimulus, indexed by stimulus id (extra stimuli are ignored).

    Attributes
    ----------
    history : DataFrame or None
        Per-epoch losses and validation retrieval (after :meth:`fit`).
    train_stimuli, validation_stimuli : Index or None
        Stimulus ids on each side of the split used by the last fit.
    run_dir : str or None
        TensorBoard run directory of the last fit.
    samples_per_second : float or None
        Training throughput of the last fit.

    Raises
    ------
    TypeError
        If ``model`` is not an :class:`~braincoder.models.deep.EmbeddingDecoder`.
    ValueError
        For NaN values, zero-norm embeddings, stimulus ids without an embedding (named),
        or voxel/dimension counts that differ from the model's.

    Examples
    --------
    >>> from braincoder.datasets import simulate_embedding_fmri
    >>> from braincoder.models.deep import EmbeddingDecoder
    >>> from braincoder.optimize import EmbeddingFitter
    >>> sim = simulate_embedding_fmri(n_stimuli=40, embedding_dim=8, n_voxels=20)
    >>> fitter = EmbeddingFitter(EmbeddingDecoder(20, 8, seed=0), sim.train_data,
    ...                          sim.train_embeddings)
    >>> history = fitter.fit(epochs=3, progressbar=False)
    >>> list(history.columns[:2])
    ['contrastive_loss', 'loss']
    """

    def __init__(self, model, data, embeddings):
        from ..models.deep.embedding import EmbeddingDecoder

        if not isinstance(model, EmbeddingDecoder):
            raise TypeError(f"model must be an EmbeddingDecoder, got {type(model).__name__}")
        self.model = model
        data = format_data(data, "data")
        self.data = _check_voxels(data, model.n_voxels, model.voxel_names, "decoder")
        self.embeddings = format_embeddings(embeddings, "embeddings")
        if self.embeddings.shape[1] != model.embedding_dim:
            raise ValueError(
                f"embeddings have {self.embeddings.shape[1]} dimensions but the decoder "
                f"outputs {model.embedding_dim}"
            )
        if model.embedding_labels is not None and not self.embeddings.columns.equals(
            model.embedding_labels
        ):
            raise ValueError("embeddings columns differ from the labels the decoder was fitted on")
        self.positions = align_embeddings(self.data.index, self.embeddings)
        self.stimuli = pd.Index(stimulus_labels(self.data.index))
        targets = self.embeddings.to_numpy(dtype=np.float64)
        self.targets = (targets / np.linalg.norm(targets, axis=1, keepdims=True)).astype(
            np.float32
        )
        self.history = None
        self.train_stimuli = None
        self.validation_stimuli = None
        self.run_dir = None
        self.samples_per_second = None

    def _split(self, validation_split, validation_data, seed):
        """Row masks (train, validation) and the validation arrays."""
        unique = self.stimuli.unique()
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a (data, embeddings) pair")
            val_data = _check_voxels(
                format_data(validation_data[0], "validation data"),
                self.data.shape[1],
                self.data.columns,
                "training data",
            )
            val_embeddings = format_embeddings(validation_data[1], "validation embeddings")
            check_disjoint_stimuli(self.data.index, val_data.index, "data", "validation data")
            val_positions = align_embeddings(
                val_data.index, val_embeddings, "validation data", "validation embeddings"
            )
            val_targets = val_embeddings.to_numpy(dtype=np.float64)
            val_targets /= np.linalg.norm(val_targets, axis=1, keepdims=True)
            train = np.ones(len(self.data), dtype=bool)
            val_x = val_data.to_numpy(dtype=np.float32)
            self.validation_stimuli = pd.Index(stimulus_labels(val_data.index)).unique()
            return train, val_x, val_targets.astype(np.float32), val_positions
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        n_val = int(round(validation_split * len(unique)))
        if validation_split > 0:
            n_val = max(n_val, 1)
        if len(unique) - n_val < 2:
            raise ValueError(
                f"validation_split={validation_split} leaves {len(unique) - n_val} training "
                f"stimuli (of {len(unique)}); at least 2 are needed"
            )
        held_out = unique[np.random.default_rng(seed).permutation(len(unique))[:n_val]]
        self.validation_stimuli = pd.Index(held_out)
        train = ~self.stimuli.isin(held_out)
        if n_val == 0:
            return train, None, None, None
        # Candidates: one embedding per validation stimulus; rows point at their stimulus.
        codes, _ = pd.factorize(self.stimuli[~train])
        first = np.unique(codes, return_index=True)[1]
        val_rows = np.flatnonzero(~train)
        candidates = self.targets[self.positions[val_rows[first]]]
        val_x = self.data.to_numpy(dtype=np.float32)[val_rows]
        return train, val_x, candidates, codes

    def fit(
        self,
        loss="contrastive",
        epochs=100,
        batch_size=64,
        learning_rate=1e-3,
        validation_split=0.1,
        log_dir=None,
        early_stopping_patience=10,
        progressbar=True,
        seed=0,
        validation_data=None,
        weight_decay=0.0,
    ):
        """Train the decoder with Keras ``model.fit``.

        Parameters
        ----------
        loss : {"contrastive", "mse", "both"}, default "contrastive"
            ``"contrastive"``: symmetric InfoNCE over the batch's cosine similarities divided
            by the learnable temperature; ``"mse"``: mean squared distance between the
            (unit-norm) prediction and the unit-normalised target; ``"both"``: their sum.
        epochs : int, default 100
            Maximum number of epochs.
        batch_size : int, default 64
            Rows per batch (also the number of contrastive candidates).
        learning_rate : float, default 1e-3
            Adam (AdamW with ``weight_decay``) learning rate.
        validation_split : float, default 0.1
            Fraction of the stimuli (with all their repeats) held out for validation;
            0 disables validation. Ignored when ``validation_data`` is given.
        log_dir : str, path, None or False, optional
            Write TensorBoard scalars to a timestamped run folder in this directory; None or
            False (default) for no logging.
        early_stopping_patience : int or None, default 10
            Epochs without improvement of the validation loss (training loss without
            validation) before stopping; the best weights are restored. None disables.
        progressbar : bool, default True
            Show a tqdm progress bar over epochs. Ctrl-C stops training and keeps the best
            epoch's weights (with early stopping) and the history so far.
        seed : int, default 0
            Seed of the split, the shuffling and Keras (``keras.utils.set_random_seed``).
        validation_data : (DataFrame, DataFrame), optional
            Held-out ``(data, embeddings)`` whose stimuli must not occur in the training
            data.
        weight_decay : float, default 0.0
            Decoupled weight decay (AdamW) of the kernels when > 0 (not of the biases or
            the temperature).

        Returns
        -------
        DataFrame
            History: one row per epoch, columns ``loss``, ``contrastive_loss``,
            ``mse_loss``, ``temperature`` and, with validation, ``val_…`` losses and
            ``val_top1`` / ``val_top5`` retrieval accuracy.

        Raises
        ------
        ValueError
            For an unknown loss, out-of-range settings, or validation stimuli that also
            occur in the training data.
        TypeError
            For unknown keywords (Python's own error names them).
        """
        check_choice(loss, LOSSES, "loss")
        for what, value in [("epochs", epochs), ("batch_size", batch_size)]:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if early_stopping_patience is not None and early_stopping_patience < 0:
            raise ValueError(
                f"early_stopping_patience must be >= 0 or None, got {early_stopping_patience!r}"
            )
        train, val_x, val_targets, val_positions = self._split(
            validation_split, validation_data, seed
        )
        self.train_stimuli = self.stimuli[train].unique()

        keras.utils.set_random_seed(seed)
        model = self.model
        x = self.data.to_numpy(dtype=np.float32)[train]
        y = self.targets[self.positions[train]]
        scale = x.std(axis=0)
        model.input_mean.assign(x.mean(axis=0))
        model.input_scale.assign(np.where(scale > 0, scale, 1.0).astype(np.float32))
        model.set_labels(self.data.columns, self.embeddings.columns)
        model.loss_mode = loss

        dataset = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
        validation = None
        if val_x is not None:
            validation = tf.data.Dataset.from_tensor_slices(
                (val_x, val_targets[val_positions])
            ).batch(batch_size)

        if weight_decay > 0:
            optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
            # Decay shrinks weights towards zero; the temperature and biases are left alone.
            optimizer.exclude_from_weight_decay(
                var_list=[model.log_temperature], var_names=["bias"]
            )
        else:
            optimizer = keras.optimizers.Adam(learning_rate)
        model.compile(optimizer=optimizer, jit_compile=False)

        callbacks = [
            _RetrievalCallback(
                val_x,
                None if val_x is None else val_targets,
                val_positions,
            )
        ]
        watched = "val_loss" if validation is not None else "loss"
        self.run_dir = resolve_log_dir(log_dir, "embedding")
        monitor = Monitor(self.run_dir, epochs, progressbar, "EmbeddingFitter",
                          restore_best=None if early_stopping_patience is None else watched,
                          what="EmbeddingFitter.fit")
        callbacks.append(monitor)
        if early_stopping_patience is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=watched,
                    patience=early_stopping_patience,
                    restore_best_weights=True,
                )
            )

        start = time.perf_counter()
        with monitor:
            keras.Model.fit(
                model,
                dataset,
                epochs=epochs,
                validation_data=validation,
                callbacks=callbacks,
                shuffle=False,
                verbose=0,
            )
        if monitor.interrupted:
            monitor.restore(model)
        elapsed = time.perf_counter() - start
        n_epochs = len(monitor.records)
        self.samples_per_second = len(x) * n_epochs / elapsed if elapsed > 0 else float("nan")
        self.history = pd.DataFrame(
            monitor.records, index=pd.RangeIndex(n_epochs, name="epoch")
        )
        self.history = self.history[sorted(self.history.columns)]
        logger.info(
            "EmbeddingFitter: %d epochs, %.0f samples/s, final loss %.4f",
            n_epochs,
            self.samples_per_second,
            self.history["loss"].iloc[-1],
        )
        return self.history
