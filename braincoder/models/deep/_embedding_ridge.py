"""Closed-form ridge decoder into an embedding space, and label/voxel helpers it shares.

:class:`RidgeEmbeddingDecoder` is the baseline of :class:`EmbeddingDecoder`; it is re-exported
by :mod:`braincoder.models.deep.embedding`.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from ...optimize.ridge import RidgeSolution, fit_ridge
from ...utils.formatting import format_data
from ...utils.labels import decode_index, encode_index, is_unlabelled
from ...utils.retrieval import align_embeddings, format_embeddings, stimulus_labels
from ...utils.validation import format_labels
from ..registry import register_model

__all__ = ["RidgeEmbeddingDecoder"]


def _labels_to_json(index):
    """Index → JSON-able dict (see :func:`~braincoder.utils.labels.encode_index`)."""
    return encode_index(index, "labels")


def _labels_from_json(spec):
    """JSON-able dict (or None) → Index (see :func:`~braincoder.utils.labels.decode_index`)."""
    return decode_index(spec, "labels")


def _check_voxels(frame, n_voxels, voxel_names, owner):
    """Raise unless the data columns are the voxels the decoder was fitted on."""
    if frame.shape[1] != n_voxels:
        raise ValueError(
            f"data has {frame.shape[1]} voxels but the {owner} expects {n_voxels}"
        )
    if voxel_names is None or frame.columns.equals(voxel_names):
        return frame
    if is_unlabelled(frame.columns):
        return frame  # unlabelled array input: positions stand for the fitted voxels
    missing = voxel_names[~voxel_names.isin(frame.columns)]
    extra = frame.columns[~frame.columns.isin(voxel_names)]
    if len(missing) or len(extra):
        raise ValueError(
            f"data voxels differ from the voxels the {owner} was fitted on: missing "
            f"{format_labels(missing) or 'none'}; unexpected {format_labels(extra) or 'none'}"
        )
    return frame[voxel_names]


def _stimulus_folds(stimuli, cv, seed):
    """(train, test) row positions of ``cv`` folds that keep each stimulus in one fold."""
    codes, unique = pd.factorize(stimuli)
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)):
        raise TypeError(f"cv must be an int or None, got {cv!r}")
    if not 2 <= cv <= len(unique):
        raise ValueError(
            f"cv must be between 2 and the number of training stimuli ({len(unique)}), got {cv}"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    folds = []
    for group in np.array_split(order, cv):
        test = np.isin(codes, group)
        folds.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return folds


@register_model("ridge_embedding_decoder")
class RidgeEmbeddingDecoder:
    """Closed-form ridge decoder from voxel patterns to unit-norm stimulus embeddings.

    Voxels are standardised, every embedding dimension is regressed on them with
    :func:`braincoder.optimize.fit_ridge`, each dimension choosing its own alpha by
    cross-validation over folds of whole stimuli (all repeats of a stimulus in the same
    fold), and predictions are L2-normalised.

    Parameters
    ----------
    alphas : sequence of float, default ``10 ** arange(-1, 6)``
        Candidate regularisation strengths.
    cv : int or None, default 5
        Number of stimulus folds; None fits the single alpha given without CV.
    seed : int, default 0
        Seed of the assignment of stimuli to folds.

    Attributes
    ----------
    weights : DataFrame, shape (n_voxels, embedding_dim)
        Weights on the standardised voxels.
    intercept : Series
        Intercept per embedding dimension.
    best_alphas : Series
        Alpha chosen for each embedding dimension.
    cv_r2 : Series
        Cross-validated R² of each embedding dimension (NaN without CV).

    Examples
    --------
    >>> from braincoder.datasets import simulate_embedding_fmri
    >>> from braincoder.models.deep import RidgeEmbeddingDecoder
    >>> sim = simulate_embedding_fmri(n_stimuli=40, embedding_dim=8, n_voxels=20)
    >>> decoder = RidgeEmbeddingDecoder(cv=3).fit(sim.train_data, sim.train_embeddings)
    >>> decoder.predict(sim.test_data).shape
    (16, 8)
    """

    def __init__(self, alphas=(0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5), cv=5, seed=0):
        alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(alphas >= 0):
            raise ValueError(f"alphas must be one or more values >= 0, got {alphas.tolist()}")
        if cv is None and alphas.size > 1:
            raise ValueError("cv=None needs a single alpha; give cv folds to choose among alphas")
        self.alphas = alphas
        self.cv = cv
        self.seed = seed
        self.weights = None
        self.intercept = None
        self.best_alphas = None
        self.cv_r2 = None
        self.input_mean = None
        self.input_scale = None

    def fit(self, data, embeddings):
        """Fit the ridge weights.

        Parameters
        ----------
        data : DataFrame, shape (n_rows, n_voxels)
            Voxel patterns; the index (or its ``stimulus`` level) holds stimulus ids.
        embeddings : DataFrame, shape (n_stimuli, embedding_dim)
            Stimulus embeddings indexed by stimulus id.

        Returns
        -------
        RidgeEmbeddingDecoder
            ``self``.

        Raises
        ------
        ValueError
            For NaN values, zero-norm embeddings, or stimulus ids of the data without an
            embedding.
        """
        frame = format_data(data, "data")
        table = format_embeddings(embeddings, "embeddings")
        positions = align_embeddings(frame.index, table)
        x = frame.to_numpy(dtype=np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        targets = table.to_numpy(dtype=np.float64)
        targets = targets / np.linalg.norm(targets, axis=1, keepdims=True)
        folds = (
            None
            if self.cv is None
            else _stimulus_folds(stimulus_labels(frame.index), self.cv, self.seed)
        )
        solution = fit_ridge((x - mean) / scale, targets[positions], alphas=self.alphas, cv=folds)
        self._set_solution(solution, mean, scale, frame.columns, table.columns)
        return self

    def _set_solution(self, solution, mean, scale, voxels, labels):
        self._solution = solution
        self.input_mean = np.asarray(mean, dtype=np.float64)
        self.input_scale = np.asarray(scale, dtype=np.float64)
        self.voxel_names = pd.Index(voxels)
        self.embedding_labels = pd.Index(labels)
        self.weights = pd.DataFrame(solution.weights, index=voxels, columns=labels)
        self.intercept = pd.Series(solution.intercept, index=labels, name="intercept")
        self.best_alphas = pd.Series(solution.alphas, index=labels, name="alpha")
        self.cv_r2 = pd.Series(solution.cv_r2, index=labels, name="cv_r2")

    def reconstruct(self, data):
        """Decode embeddings from voxel patterns (the decoder role's name for :meth:`predict`).

        Parameters
        ----------
        data : DataFrame or array-like, shape (n_rows, n_voxels)
            Voxel patterns (the fitted voxels; DataFrame columns matched by name).

        Returns
        -------
        DataFrame, shape (n_rows, embedding_dim)
            Unit-norm embeddings indexed like ``data``.
        """
        return self.predict(data)

    def predict(self, data):
        """Predict unit-norm embeddings, rows labelled as the data.

        Parameters
        ----------
        data : DataFrame or array-like, shape (n_rows, n_voxels)
            Voxel patterns (the fitted voxels; DataFrame columns matched by name).

        Returns
        -------
        DataFrame, shape (n_rows, embedding_dim)
            Predictions indexed like ``data``, columns the embedding labels.

        Raises
        ------
        RuntimeError
            If the decoder was never fitted.
        ValueError
            If the voxels differ from the fitted ones or values are NaN.
        """
        if self.weights is None:
            raise RuntimeError("RidgeEmbeddingDecoder is not fitted; call fit(data, embeddings)")
        frame = _check_voxels(
            format_data(data, "data"), len(self.voxel_names), self.voxel_names, "decoder"
        )
        x = (frame.to_numpy(dtype=np.float64) - self.input_mean) / self.input_scale
        pred = self._solution.predict(x)
        norms = np.linalg.norm(pred, axis=1, keepdims=True)
        pred = pred / np.where(norms > 0, norms, 1.0)
        return pd.DataFrame(pred, index=frame.index, columns=self.embedding_labels)

    def save(self, path):
        """Save as a JSON specification and an ``.npz`` file of arrays (no pickle).

        Parameters
        ----------
        path : str or path
            Destination ending in ``.json``; the arrays go next to it, with the suffix
            ``.npz``.

        Raises
        ------
        ValueError
            If ``path`` does not end in ``.json``.
        RuntimeError
            If the decoder was never fitted.
        """
        path = os.fspath(path)
        if not path.endswith(".json"):
            raise ValueError(f"path must end in '.json', got {path!r}")
        if self.weights is None:
            raise RuntimeError("RidgeEmbeddingDecoder is not fitted; nothing to save")
        arrays = path[: -len(".json")] + ".npz"
        spec = {
            "model": self.registry_name,
            "format_version": 1,
            "alphas": self.alphas.tolist(),
            "cv": None if self.cv is None else int(self.cv),
            "seed": self.seed,
            "voxel_names": _labels_to_json(self.voxel_names),
            "embedding_labels": _labels_to_json(self.embedding_labels),
            "arrays": os.path.basename(arrays),
        }
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(spec, handle, indent=2)
        solution = self._solution
        np.savez(
            arrays,
            weights=solution.weights,
            intercept=solution.intercept,
            alphas=solution.alphas,
            cv_r2=solution.cv_r2,
            input_mean=self.input_mean,
            input_scale=self.input_scale,
        )

    @classmethod
    def load(cls, path):
        """Load a decoder saved with :meth:`save`.

        Parameters
        ----------
        path : str or path
            The ``.json`` file (its ``.npz`` must sit next to it).

        Returns
        -------
        RidgeEmbeddingDecoder
            The fitted decoder.

        Raises
        ------
        ValueError
            If the file does not describe a ridge embedding decoder.
        """
        path = os.fspath(path)
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
        if spec.get("model") != cls.registry_name:
            raise ValueError(f"{path} does not describe a {cls.__name__}")
        decoder = cls(alphas=spec["alphas"], cv=spec["cv"], seed=spec["seed"])
        arrays_path = os.path.join(os.path.dirname(path), spec["arrays"])
        with np.load(arrays_path, allow_pickle=False) as arrays:
            solution = RidgeSolution(
                arrays["weights"], arrays["intercept"], arrays["alphas"], arrays["cv_r2"]
            )
            mean, scale = arrays["input_mean"], arrays["input_scale"]
        decoder._set_solution(
            solution,
            mean,
            scale,
            _labels_from_json(spec["voxel_names"]),
            _labels_from_json(spec["embedding_labels"]),
        )
        return decoder
