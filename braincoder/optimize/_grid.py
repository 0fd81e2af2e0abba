"""Chunked grid search with baseline and amplitude solved in closed form.

For every grid point g the model's unit-amplitude, zero-baseline prediction ``p_g`` is
computed once; for every voxel the best baseline and amplitude of ``y ≈ b + a p_g`` follow
from dot products, so the whole search is one matrix product ``Yᵀ P`` per chunk and no
time × voxel × grid tensor is ever built.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..hrf import causal_convolution_matrix

#: Largest number of voxels per grid-search chunk by default.
DEFAULT_GRID_CHUNK_VOXELS = 5000


def baseline_label(labels):
    """Label of the additive baseline: ``baseline``, else ``bold_baseline`` (or None)."""
    for label in ("baseline", "bold_baseline"):
        if label in labels:
            return label
    return None


@dataclass
class GridSpec:
    """What the grid search varies, solves and holds fixed.

    Attributes
    ----------
    labels : list of str
        All parameter labels of the model.
    grid_labels : list of str
        Labels whose values form the Cartesian grid.
    grid_values : list of ndarray
        Values of each grid label.
    free_baseline, free_amplitude : bool
        Whether baseline / amplitude are solved in closed form.
    fixed : dict
        Label → per-voxel fixed values (ndarray).
    amplitude_in_scorer : bool
        The model is ``baseline + amplitude · f``: the scorer applies the amplitude (free
        or fixed) and grid predictions use amplitude 1.
    """

    labels: list
    grid_labels: list
    grid_values: list
    free_baseline: bool
    free_amplitude: bool
    fixed: dict
    amplitude_in_scorer: bool = True

    @property
    def n_grid(self):
        """Number of grid points."""
        return int(np.prod([len(values) for values in self.grid_values])) if self.grid_values else 1

    def grid_points(self):
        """All grid points, shape (n_grid, n_grid_labels)."""
        if not self.grid_labels:
            return np.zeros((1, 0))
        return np.array(list(itertools.product(*self.grid_values)), dtype=np.float64)


class GridPredictions:
    """Unit-amplitude predictions of the grid points, computed chunk by chunk and cached.

    With per-voxel HRF parameters in the grid, the neural (pre-HRF) responses of the
    spatial grid points are computed once and convolved with every HRF candidate.
    """

    def __init__(self, model, paradigm, spec, fixed_row, chunk_size, cache_bytes):
        self.model = model
        self.paradigm = tf.constant(paradigm, tf.float32)
        self.spec = spec
        self.fixed_row = fixed_row
        self.chunk_size = max(1, int(chunk_size))
        self.cache_bytes = cache_bytes
        self._cache = {}
        hrf_model = model.hrf_model
        hrf_labels = list(hrf_model.parameter_labels) if hrf_model is not None else []
        self.hrf_labels = [label for label in hrf_labels if label in spec.grid_labels]
        self.points = spec.grid_points()

    @property
    def n_points(self):
        """Number of grid points."""
        return len(self.points)

    def chunks(self):
        """Yield (start, stop) of the grid chunks."""
        for start in range(0, self.n_points, self.chunk_size):
            yield start, min(start + self.chunk_size, self.n_points)

    def _natural(self, points):
        """Full parameter rows for grid points: amplitude 1, baseline 0, fixed values."""
        labels = self.spec.labels
        rows = np.zeros((len(points), len(labels)))
        for label, value in self.fixed_row.items():
            rows[:, labels.index(label)] = value
        for i, label in enumerate(self.spec.grid_labels):
            rows[:, labels.index(label)] = points[:, i]
        # Baseline (and, for models linear in it, amplitude) are applied by the scorer.
        if baseline_label(labels) is not None:
            rows[:, labels.index(baseline_label(labels))] = 0.0
        if self.spec.amplitude_in_scorer:
            rows[:, labels.index("amplitude")] = 1.0
        return rows

    def get(self, start, stop):
        """Predictions of grid points ``start:stop``, float32 tensor (n_timepoints, n)."""
        if (start, stop) in self._cache:
            return self._cache[(start, stop)]
        rows = self._natural(self.points[start:stop])
        if self.hrf_labels and len(self.spec.labels) > 0:
            predictions = self._predict_hrf_grid(rows)
        else:
            predictions = self.model.predict_tensor(self.paradigm, tf.constant(rows, tf.float32))
        size = int(np.prod(predictions.shape)) * 4
        if size * (len(self._cache) + 1) <= self.cache_bytes:
            self._cache[(start, stop)] = predictions
        return predictions

    def _predict_hrf_grid(self, rows):
        """Neural responses once per distinct spatial row, convolved per HRF candidate."""
        labels = self.spec.labels
        hrf_columns = [labels.index(label) for label in self.model.hrf_model.parameter_labels]
        spatial_columns = [i for i in range(len(labels)) if i not in hrf_columns]
        spatial, spatial_index = np.unique(rows[:, spatial_columns], axis=0, return_inverse=True)
        hrf_rows, hrf_index = np.unique(rows[:, hrf_columns], axis=0, return_inverse=True)
        full = np.zeros((len(spatial), len(labels)))
        full[:, spatial_columns] = spatial
        neural = self.model.neural_tensor(self.paradigm, tf.constant(full, tf.float32)).numpy()
        n_timepoints = neural.shape[0]
        out = np.empty((n_timepoints, len(rows)), np.float32)
        for h, hrf_row in enumerate(hrf_rows):
            kernel = np.asarray(
                self.model.hrf_model.get_hrf(tf.constant(hrf_row[None, :], tf.float32))
            )[:, 0]
            matrix = causal_convolution_matrix(kernel, n_timepoints).astype(np.float32)
            members = np.flatnonzero(hrf_index.ravel() == h)
            out[:, members] = matrix @ neural[:, spatial_index.ravel()[members]]
        return tf.constant(out)


@tf.function(reduce_retracing=True)
def _score_chunk(y, y_mean, y_norm2, p, amplitude_fixed, free_baseline, free_amplitude,
                 positive_amplitude, use_correlation):
    """Best grid point of a chunk for every voxel.

    Parameters are tensors: ``y`` (T, V) data (minus fixed baselines), ``p`` (T, G)
    unit-amplitude predictions, ``amplitude_fixed`` (V,) (used when amplitude is fixed).

    Returns the best score, index, amplitude and baseline per voxel (V,).
    """
    n = tf.cast(tf.shape(y)[0], tf.float32)
    if free_baseline:
        p_mean = tf.reduce_mean(p, axis=0)
        p_centred = p - p_mean
    else:
        p_mean = tf.zeros(tf.shape(p)[1])
        p_centred = p
    cross = tf.matmul(y, p_centred, transpose_a=True)  # (V, G): yᵀ p_c (y need not be centred)
    p_norm2 = tf.reduce_sum(tf.square(p_centred), axis=0)  # (G,)
    safe_norm2 = tf.maximum(p_norm2, 1e-12)
    if free_amplitude:
        amplitude = cross / safe_norm2
        if positive_amplitude:
            amplitude = tf.maximum(amplitude, 0.0)
        # SSE reduction: 2 a c − a² ‖p‖² (equals c²/‖p‖² at the unconstrained optimum).
        gain = 2.0 * amplitude * cross - tf.square(amplitude) * safe_norm2
        if use_correlation:
            centred_norm = tf.sqrt(tf.maximum(y_norm2, 1e-12))[:, None]
            score = cross / (tf.sqrt(safe_norm2) * centred_norm)
            if not positive_amplitude:
                score = tf.abs(score)
        else:
            score = gain
    else:
        amplitude = tf.broadcast_to(amplitude_fixed[:, None], tf.shape(cross))
        score = 2.0 * amplitude * cross - tf.square(amplitude) * p_norm2
    score = tf.where(p_norm2[None, :] > 1e-12, score, tf.fill(tf.shape(score), -np.inf))
    best = tf.argmax(score, axis=1, output_type=tf.int32)
    best_score = tf.gather(score, best, axis=1, batch_dims=1)
    best_amplitude = tf.gather(amplitude, best, axis=1, batch_dims=1)
    if free_baseline:
        baseline = y_mean - best_amplitude * tf.gather(p_mean, best)
    else:
        baseline = tf.zeros_like(best_amplitude)
    del n
    return best_score, best, best_amplitude, baseline


def search_chunk(data, fixed_chunk, predictions, spec, positive_amplitude, use_correlation):
    """Grid search for one chunk of voxels (an independent unit of work).

    Parameters
    ----------
    data : ndarray, shape (n_timepoints, n_voxels)
        Data of the chunk.
    fixed_chunk : dict
        Label → fixed values of these voxels.
    predictions : GridPredictions
        Grid predictions (shared, cached).
    spec : GridSpec
        The search specification.
    positive_amplitude, use_correlation : bool
        Options of :meth:`ParameterFitter.fit_grid`.

    Returns
    -------
    ndarray, shape (n_voxels, n_parameters)
        Best parameters of each voxel (natural space, columns ``spec.labels``).
    """
    labels = spec.labels
    y = np.asarray(data, np.float32)
    base = baseline_label(labels)
    if base in spec.fixed:
        y = y - np.asarray(fixed_chunk[base], np.float32)[None, :]
    if spec.free_baseline:
        y_mean = y.mean(axis=0)
        y = y - y_mean
    else:
        y_mean = np.zeros(y.shape[1], np.float32)
    y_norm2 = tf.constant((y**2).sum(axis=0))
    y_tensor = tf.constant(y)
    amplitude_values = np.ones(y.shape[1])
    if spec.amplitude_in_scorer and "amplitude" in fixed_chunk:
        amplitude_values = fixed_chunk["amplitude"]
    amplitude_fixed = tf.constant(np.asarray(amplitude_values, np.float32))
    n_voxels = y.shape[1]
    best_score = np.full(n_voxels, -np.inf, np.float32)
    best_index = np.zeros(n_voxels, np.int64)
    best_amplitude = np.zeros(n_voxels, np.float32)
    best_baseline = np.zeros(n_voxels, np.float32)
    for start, stop in predictions.chunks():
        score, index, amplitude, baseline = _score_chunk(
            y_tensor, tf.constant(y_mean), y_norm2, predictions.get(start, stop),
            amplitude_fixed, spec.free_baseline, spec.free_amplitude, positive_amplitude,
            use_correlation,
        )
        score = score.numpy()
        better = score > best_score
        best_score[better] = score[better]
        best_index[better] = index.numpy()[better] + start
        best_amplitude[better] = amplitude.numpy()[better]
        best_baseline[better] = baseline.numpy()[better]
    result = np.zeros((n_voxels, len(labels)))
    points = predictions.points[best_index]
    for i, label in enumerate(spec.grid_labels):
        result[:, labels.index(label)] = points[:, i]
    for label, values in fixed_chunk.items():
        result[:, labels.index(label)] = values
    if spec.free_amplitude:
        result[:, labels.index("amplitude")] = best_amplitude
    if spec.free_baseline:
        result[:, labels.index(base)] = best_baseline
    return result


def search_voxels(model, paradigm, y, spec, groups, group_keys, grid_chunk, cache_bytes,
                  voxel_chunk, positive_amplitude, use_correlation, result, progress,
                  client=None):
    """Grid search of all voxels, chunk by chunk, in this process or as Dask tasks.

    The chunks are the same either way (so are the results): voxels sharing their fixed
    values form a group, and each group is cut into chunks of ``voxel_chunk(bytes)``
    voxels.

    Parameters
    ----------
    model : EncodingModel
        The model.
    paradigm : ndarray
        Paradigm (float32).
    y : ndarray, shape (n_timepoints, n_voxels)
        Data of all voxels (float32).
    spec : GridSpec
        The search specification.
    groups : list of (tuple, ndarray)
        Fixed values of each group and its voxel columns.
    group_keys : list of str
        Labels of the group values.
    grid_chunk, cache_bytes : int
        Grid points per prediction block and the prediction cache budget.
    voxel_chunk : callable
        ``bytes per voxel -> voxels per chunk``.
    positive_amplitude, use_correlation : bool
        Search options.
    result : ndarray, shape (n_voxels, n_parameters)
        Filled in place, chunk by chunk.
    progress : callable
        Called with the number of voxels of each finished chunk.
    client : distributed.Client, optional
        Run the chunks as tasks on this client.
    """
    per_voxel = 4 * (6 * min(spec.n_grid, grid_chunk) + 2 * y.shape[0])
    size = voxel_chunk(per_voxel)
    chunks = [(number, dict(zip(group_keys, (float(v) for v in key), strict=True)),
               members[start : start + size])
              for number, (key, members) in enumerate(groups)
              for start in range(0, len(members), size)]

    def fixed_of(index):
        return {label: np.ascontiguousarray(values[index]) for label, values in spec.fixed.items()}

    def data_of(index):  # C order in both paths: numpy reductions follow the memory layout
        return np.ascontiguousarray(y[:, index])

    if client is None:
        predictions = {}
        for group, row, index in chunks:
            if group not in predictions:
                predictions.clear()
                predictions[group] = GridPredictions(model, paradigm, spec, row, grid_chunk,
                                                     cache_bytes)
            result[index] = search_chunk(data_of(index), fixed_of(index), predictions[group], spec,
                                         positive_amplitude, use_correlation)
            progress(len(index))
        return
    import json

    from ._distributed import grid_task, model_spec, run_tasks, scatter
    from ._plan import text_hash

    text = model_spec(model, paradigm, None)
    grid = {"labels": list(spec.labels), "grid_labels": list(spec.grid_labels),
            "grid_values": [np.asarray(values, np.float64) for values in spec.grid_values],
            "free_baseline": spec.free_baseline, "free_amplitude": spec.free_amplitude,
            "amplitude_in_scorer": spec.amplitude_in_scorer}
    base = text_hash(text, paradigm, *grid["grid_values"],
                     json.dumps({k: v for k, v in grid.items() if k != "grid_values"}),
                     str(grid_chunk), str(cache_bytes))

    def arguments(number):
        group, row, index = chunks[number]
        key = text_hash(base, json.dumps(row, sort_keys=True))
        return (key, grid, row, grid_chunk, cache_bytes, data_of(index), fixed_of(index),
                positive_amplitude, use_correlation)

    def on_result(number, value):
        index = chunks[number][2]
        result[index] = value["result"]
        progress(len(index))

    shared = scatter(client, [text, paradigm])
    run_tasks(client, grid_task, shared, arguments, range(len(chunks)), on_result, "grid")
