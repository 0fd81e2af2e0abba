"""Voxel chunks as Dask tasks: the driver's runner and the functions the workers run.

The driver scatters what every task shares once (the model's JSON specification, the
paradigm, the confound projector or the ridge design) and submits one task per voxel
chunk with that chunk's data and starting values; at most about two tasks per worker
thread are in flight, so the scheduler never holds the whole data set. Results (plain
numpy arrays and dicts) are handled in the driver as they complete
(:func:`distributed.as_completed`), so finished chunks are checkpointed at once. A task
whose worker dies is run again elsewhere by the scheduler.

On a worker, TensorFlow's thread pools are sized to the worker's threads before its first
use, and each model is rebuilt once from its specification and cached by the hash of the
specification and paradigm; compiled solvers and grid predictions are kept per worker
thread. No live TensorFlow object ever leaves a process.

dask and distributed are optional (``pip install "braincoder[dask]"``) and imported only
when a client is used.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from ._plan import FitOptions, build_predict, fit_chunk, result_to_record, text_hash

__all__ = ["check_client", "fit_task", "grid_task", "model_spec", "run_tasks", "scatter",
           "weights_task"]

logger = logging.getLogger(__name__)

_INSTALL = 'pip install "braincoder[dask]"'
_LOCK = threading.Lock()
_MODELS = OrderedDict()  # spec hash → model (one per worker process)
_POOLS = OrderedDict()  # key → free entries (one entry per thread using it at a time)
_CACHE_SIZE = 8
_THREADS_SET = False


# ---------------------------------------------------------------------- driver side
def _distributed():
    try:
        import distributed
    except ImportError as error:
        raise ImportError(f"client= needs dask.distributed; install it with {_INSTALL}") from error
    return distributed


def check_client(client):
    """Return ``client`` after checking it is a Dask client (None stays None).

    Parameters
    ----------
    client : distributed.Client or None
        The client.

    Returns
    -------
    distributed.Client or None
        The client.

    Raises
    ------
    TypeError
        If ``client`` is not a :class:`distributed.Client`.
    ImportError
        If distributed is not installed.
    """
    if client is None:
        return None
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client or None, got "
                        f"{type(client).__name__}")
    return client


def model_spec(model, paradigm=None, theta=None):
    """Return the model's JSON specification, checked to rebuild an equal model.

    Parameters
    ----------
    model : EncodingModel
        The model.
    paradigm : ndarray, optional
        Paradigm (float32) used to compare predictions of the model and its rebuilt copy.
    theta : ndarray, shape (n_voxels, n_parameters), optional
        A few parameter rows for that comparison.

    Returns
    -------
    str
        ``model.to_json(include_values=False)``.

    Raises
    ------
    TypeError
        If the model cannot be written as JSON (e.g. an unregistered class).
    ValueError
        If the rebuilt model predicts differently (state the specification does not hold).
    """
    from ..models import EncodingModel

    name = type(model).__name__
    try:
        spec = model.to_json(include_values=False)
        rebuilt = EncodingModel.from_json(spec)
    except (AttributeError, TypeError, ValueError) as error:
        raise TypeError(f"client= needs a model that can be rebuilt from its JSON "
                        f"specification (model.to_json); {name}: {error}") from None
    if paradigm is not None and theta is not None and len(theta):
        import tensorflow as tf

        rows = tf.constant(np.asarray(theta[:2], np.float32))
        stimulus = tf.constant(np.asarray(paradigm, np.float32))
        mine = model.predict_tensor(stimulus, rows).numpy()
        theirs = rebuilt.predict_tensor(stimulus, rows).numpy()
        if not np.allclose(mine, theirs, rtol=1e-5, atol=1e-6, equal_nan=True):
            raise ValueError(f"{name} rebuilt from its JSON specification predicts differently "
                             "from the given model (its state is not all in model.to_json()); "
                             "fit it without client=")
    return spec


def scatter(client, values):
    """Send values every task shares to all workers once; returns their futures.

    Parameters
    ----------
    client : distributed.Client
        The client.
    values : list
        The values (None stays None).

    Returns
    -------
    list
        A future per value (None for None).
    """
    # Keys unique to this call: with content-hashed keys, a later call scattering the same
    # value could race with the release of this call's futures and lose the data.
    return [None if value is None else client.scatter(value, broadcast=True, hash=False)
            for value in values]


def _window(client):
    try:
        threads = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001 - a scheduler that does not answer: keep a small window
        threads = 1
    return max(2 * threads, 2)


def run_tasks(client, function, shared, chunk_arguments, numbers, on_result, name="chunk"):
    """Run one task per chunk and hand each result to ``on_result`` as soon as it arrives.

    Parameters
    ----------
    client : distributed.Client
        The client.
    function : callable
        Task function, called as ``function(*shared, *chunk_arguments(number))``.
    shared : list
        Arguments common to all tasks (futures from :func:`scatter` and small values).
    chunk_arguments : callable
        ``number -> tuple`` of the chunk's own arguments (its data, start values…).
    numbers : sequence of int
        The chunks to run.
    on_result : callable
        ``on_result(number, value)``, called in the driver in completion order.
    name : str, default "chunk"
        Prefix of the task keys.

    Raises
    ------
    Exception
        The first exception raised by a task (after cancelling the others).
    """
    distributed = _distributed()
    token = uuid.uuid4().hex[:8]
    todo = list(numbers)
    live = {}
    queue = distributed.as_completed()
    position = 0

    def top_up():
        nonlocal position
        limit = _window(client)
        while position < len(todo) and queue.count() < limit:
            number = todo[position]
            position += 1
            future = client.submit(function, *shared, *chunk_arguments(number),
                                   key=f"braincoder-{name}-{number}-{token}", pure=False)
            live[future.key] = (number, future)
            queue.add(future)

    top_up()
    try:
        for future in queue:
            number, _ = live.pop(future.key)
            value = future.result()
            future.release()
            on_result(number, value)
            top_up()
    finally:
        if live:
            client.cancel([future for _, future in live.values()])


# ---------------------------------------------------------------------- worker side
def _set_threads():
    """Size TensorFlow's thread pools to this worker's threads (once, before TF runs)."""
    global _THREADS_SET
    with _LOCK:
        if _THREADS_SET:
            return
        _THREADS_SET = True
    try:
        from distributed import get_worker

        worker = get_worker()
        state = getattr(worker, "state", None)
        n_threads = int(getattr(state, "nthreads", None) or worker.nthreads)
    except (ImportError, ValueError, AttributeError, TypeError):
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(n_threads)
    except RuntimeError:  # TensorFlow already runs in this process (a thread-based cluster)
        logger.debug("TensorFlow already initialised; thread pools left as they are")


def _own(array):
    """Return a fresh C-ordered copy of an array received from another process.

    Received arrays can be views at any offset of a network buffer; numpy's and
    TensorFlow's reductions follow the memory layout, so the same layout as in the driver
    (C order, a fresh allocation) keeps the float32 results bit-identical.
    """
    return np.array(array, order="C", copy=True)


def _remember(cache, key, value):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def _model(spec, spec_hash):
    """Return the model of a specification, built once per process."""
    from ..models import EncodingModel

    with _LOCK:
        model = _MODELS.get(spec_hash)
    if model is None:
        model = EncodingModel.from_json(spec)
        with _LOCK:
            _remember(_MODELS, spec_hash, model)
    return model


@contextmanager
def _borrow(key, build):
    """Use a cached entry that no other thread is using (built when none is free)."""
    with _LOCK:
        free = _POOLS.get(key)
        entry = free.pop() if free else None
    if entry is None:
        entry = build()
    try:
        yield entry
    finally:
        with _LOCK:
            _remember(_POOLS, key, _POOLS.get(key, []) + [entry])


def fit_task(spec, paradigm, projector, key, options, y, theta0, sst):
    """Fit one chunk of voxels on a worker (task of :meth:`ParameterFitter.fit`).

    Parameters
    ----------
    spec : str
        The model's JSON specification.
    paradigm : ndarray
        Paradigm (float32).
    projector : ndarray or None
        Confound residual-forming matrix.
    key : str
        Hash of specification and paradigm (cache key).
    options : dict
        :meth:`FitOptions.to_record` output.
    y, theta0, sst : ndarray
        The chunk's data, starting values and total sums of squares.

    Returns
    -------
    dict
        ``{"result": ChunkResult fields, "seconds": fitting time}``.
    """
    _set_threads()
    y, theta0, sst = _own(y), _own(theta0), _own(sst)
    options = FitOptions.from_record(options)
    model = _model(spec, key)

    def build():
        import tensorflow as tf

        predict, linear = build_predict(model, paradigm)
        return {"predict": predict, "linear": linear, "solver_cache": {},
                "paradigm": tf.constant(np.asarray(paradigm, np.float32))}

    with _borrow(("fit", key), build) as entry:
        settings = options.settings(model, entry["predict"], entry["linear"], projector,
                                    entry["solver_cache"], paradigm=entry["paradigm"])
        start = time.perf_counter()
        result = fit_chunk(options.method, y, theta0, sst, settings)
        seconds = time.perf_counter() - start
    return {"result": result_to_record(result), "seconds": seconds}


def grid_task(spec, paradigm, key, grid, fixed_row, grid_chunk, cache_bytes, y, fixed_chunk,
              positive_amplitude, use_correlation):
    """Grid search of one chunk of voxels on a worker (task of ``fit_grid``).

    Parameters
    ----------
    spec : str
        The model's JSON specification.
    paradigm : ndarray
        Paradigm (float32).
    key : str
        Hash of specification, paradigm, grid and fixed row (cache key).
    grid : dict
        :class:`~braincoder.optimize._grid.GridSpec` fields except ``fixed``.
    fixed_row : dict
        Fixed values of this chunk's group (label → value).
    grid_chunk, cache_bytes : int
        Grid points per prediction block and the prediction cache budget.
    y : ndarray
        The chunk's data.
    fixed_chunk : dict
        Label → per-voxel fixed values of the chunk.
    positive_amplitude, use_correlation : bool
        Search options.

    Returns
    -------
    dict
        ``{"result": parameters (n_voxels, n_parameters), "seconds": search time}``.
    """
    from ._grid import GridPredictions, GridSpec, search_chunk

    _set_threads()
    y = _own(y)
    fixed_chunk = {label: _own(values) for label, values in fixed_chunk.items()}
    spec_grid = GridSpec(**grid, fixed=fixed_chunk)
    model = _model(spec, text_hash(spec))

    def build():
        return GridPredictions(model, paradigm, spec_grid, fixed_row, grid_chunk, cache_bytes)

    with _borrow(("grid", key), build) as predictions:
        start = time.perf_counter()
        result = search_chunk(y, fixed_chunk, predictions, spec_grid, positive_amplitude,
                              use_correlation)
        seconds = time.perf_counter() - start
    return {"result": result, "seconds": seconds}


def weights_task(design, target, alphas, cv):
    """Ridge weights of one chunk of voxels on a worker (task of :class:`WeightFitter`).

    Parameters
    ----------
    design : ndarray, shape (n_timepoints, n_basis)
        Shared design.
    target : ndarray, shape (n_timepoints, n_voxels)
        The chunk's data.
    alphas : list of float
        Candidate ridge penalties.
    cv : int, list of (train, test) or None
        Folds.

    Returns
    -------
    dict
        Weights, chosen alphas and cross-validated R² of the chunk.
    """
    from .ridge import fit_ridge

    solution = fit_ridge(design, _own(target), alphas=alphas, cv=cv, fit_intercept=False)
    return {"weights": solution.weights, "alphas": solution.alphas, "cv_r2": solution.cv_r2}
