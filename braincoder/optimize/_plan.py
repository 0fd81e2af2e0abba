"""Plan of an iterative fit: options as a plain record, voxel chunks and the chunk function.

:meth:`ParameterFitter.fit` is *plan → run chunks → store*. The plan (:class:`FitPlan`)
holds the fit options as plain, JSON-able values (:class:`FitOptions`) and the voxel
columns of every chunk; :func:`fit_chunk` is the one chunk function (data and starting
values in, :class:`~braincoder.optimize._chunks.ChunkResult` out) run by the in-process loop
and by the Dask workers alike. Live objects (model, prediction function, compiled solvers,
monitor) are never part of the plan: each process builds them from the model's JSON
specification and the paradigm (:func:`build_predict`, :meth:`FitOptions.settings`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from ._chunks import ChunkResult, FitSettings, fit_chunk_adam, fit_chunk_lm

__all__ = ["DEFAULT_CHUNK_VOXELS", "FitOptions", "FitPlan", "build_predict", "fit_chunk",
           "result_from_record", "result_to_record", "text_hash", "voxel_chunks"]

#: Largest number of voxels per chunk by default: enough chunks for many workers, and large
#: enough that per-chunk costs (scheduling, transfers) stay small against the fit itself.
DEFAULT_CHUNK_VOXELS = 2000


def text_hash(*parts):
    """SHA-256 of strings and arrays (shape, dtype and bytes), as a hex digest.

    Parameters
    ----------
    *parts : str, bytes, ndarray or None
        The values hashed, in order.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for part in parts:
        if part is None:
            digest.update(b"<none>")
        elif isinstance(part, str):
            digest.update(part.encode())
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            array = np.ascontiguousarray(part)
            digest.update(f"{array.shape}{array.dtype.str}".encode())
            digest.update(array.tobytes())
        digest.update(b"\x00")
    return digest.hexdigest()


def build_predict(model, paradigm):
    """Tensor prediction function of a model for one paradigm.

    When the model is linear in the paradigm and its HRF is shared by all voxels, the
    stimulus is convolved once and the prediction is ``stimulus @ rf(theta) + baseline``.

    Parameters
    ----------
    model : EncodingModel
        The model.
    paradigm : ndarray, shape (n_timepoints, n_dimensions)
        Stimulus per time point (float32).

    Returns
    -------
    predict : callable
        ``theta (n_voxels, n_parameters) -> predictions (n_timepoints, n_voxels)``.
    linear : tuple or None
        ``(stimulus, rf, baseline)`` of linear models (used by the LM Jacobian).
    """
    import tensorflow as tf

    paradigm = tf.constant(np.asarray(paradigm, np.float32))
    capabilities = model.capabilities
    if not capabilities.linear_in_paradigm or capabilities.per_voxel_hrf:
        return (lambda theta: model.predict_tensor(paradigm, theta)), None
    stimulus = paradigm
    if capabilities.has_hrf:
        stimulus = model.hrf_model.convolve(stimulus)  # convolution and RF are both linear

    def baseline_of(theta):
        baseline = model.baseline_tensor(theta)
        return tf.zeros(tf.shape(theta)[:1]) if baseline is None else baseline

    def predict(theta):
        response = tf.matmul(stimulus, model.receptive_field_tensor(theta))
        baseline = model.baseline_tensor(theta)
        return response if baseline is None else response + baseline[None, :]

    return predict, (stimulus, model.receptive_field_tensor, baseline_of)


def _to_unbounded(model, theta):
    """Natural → unbounded parameters (numpy), column by column."""
    transforms = list(model.get_parameter_transforms().values())
    out = np.empty_like(theta, dtype=np.float64)
    for column, transform in enumerate(transforms):
        out[:, column] = transform.backward_numpy(theta[:, column])
    return out.astype(np.float32)


def fit_chunk(method, y, theta0, sst, settings):
    """Fit one chunk of voxels: the unit of work of the in-process loop and of Dask tasks.

    Parameters
    ----------
    method : {"lm", "adam"}
        Levenberg–Marquardt or a first-order Keras optimizer.
    y : ndarray, shape (n_timepoints, n_voxels)
        Data of the chunk (confound-projected).
    theta0 : ndarray, shape (n_voxels, n_parameters)
        Starting natural parameters.
    sst : ndarray, shape (n_voxels,)
        Total sum of squares of each voxel.
    settings : FitSettings
        Options and the live objects of this process.

    Returns
    -------
    ChunkResult
        The chunk's best parameters.
    """
    if method == "lm":
        return fit_chunk_lm(y, theta0, sst, settings)
    return fit_chunk_adam(y, _to_unbounded(settings.model, theta0), sst, settings)


def result_to_record(result):
    """Plain dict of a :class:`ChunkResult` (every field, numpy arrays and Python values)."""
    return dataclasses.asdict(result)


def result_from_record(record):
    """Rebuild a :class:`ChunkResult` from :func:`result_to_record` output.

    Keys that are not fields of this version's ``ChunkResult`` are ignored.
    """
    names = {item.name for item in dataclasses.fields(ChunkResult)}
    return ChunkResult(**{key: value for key, value in record.items() if key in names})


def voxel_chunks(members, chunk_size):
    """Split voxel columns into consecutive chunks.

    Parameters
    ----------
    members : ndarray of int
        Voxel columns to fit.
    chunk_size : int
        Voxels per chunk.

    Returns
    -------
    list of ndarray
        The columns of each chunk.
    """
    chunk_size = max(int(chunk_size), 1)
    return [members[start : start + chunk_size] for start in range(0, len(members), chunk_size)]


@dataclass
class FitOptions:
    """Options of one :meth:`ParameterFitter.fit` call as plain values (JSON-able).

    Attributes
    ----------
    method, noise_model : str
        Solver and noise model.
    free_columns, shared_columns : list of int
        Parameter columns fitted per voxel / shared by all voxels.
    lower, upper : list of float
        Box bounds of the natural parameters.
    max_n_iterations, min_n_iterations, lag : int
        Iteration limits and the early-stopping window (Adam).
    r2_atol, learning_rate : float
        Convergence tolerance and Adam learning rate.
    store_intermediate : bool
        Keep the parameters of every iteration.
    optimizer : dict or None
        ``keras.optimizers.serialize`` output of the caller's optimizer.
    adam_kwargs : dict
        Keywords of the default Adam optimizer.
    labels : list of str
        Parameter labels.
    extra : dict
        Further plain :class:`FitSettings` fields, passed through unchanged.
    """

    method: str
    noise_model: str
    free_columns: list
    shared_columns: list
    lower: list
    upper: list
    max_n_iterations: int
    min_n_iterations: int
    r2_atol: float
    lag: int
    store_intermediate: bool
    learning_rate: float = 0.01
    optimizer: dict | None = None
    adam_kwargs: dict = field(default_factory=dict)
    labels: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_record(self):
        """Return the options as a plain dict (JSON-able)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_plain))

    @classmethod
    def from_record(cls, record):
        """Options from :meth:`to_record` output.

        Parameters
        ----------
        record : dict
            The plain options.

        Returns
        -------
        FitOptions
            The options.
        """
        return cls(**record)

    def make_optimizer(self):
        """Build a new Keras optimizer from the options."""
        import keras

        if self.optimizer is not None:
            return keras.optimizers.deserialize(self.optimizer)
        return keras.optimizers.Adam(learning_rate=self.learning_rate, **self.adam_kwargs)

    def settings(self, model, predict, linear, projector, solver_cache, monitor=None,
                 make_optimizer=None, **live):
        """Chunk settings: these options plus the live objects of this process.

        Parameters
        ----------
        model : EncodingModel
            The model (rebuilt from its specification on a worker).
        predict : callable
            Prediction function (:func:`build_predict`).
        linear : tuple or None
            Linear structure of the prediction (:func:`build_predict`).
        projector : ndarray or None
            Confound residual-forming matrix.
        solver_cache : dict
            Compiled LM solvers, reused across chunks.
        monitor : FitMonitor, optional
            Progress and TensorBoard logging of the iterations (in-process only).
        make_optimizer : callable, optional
            Optimizer factory (default :meth:`make_optimizer`).
        **live
            Further live objects of this process (e.g. ``paradigm``), passed on when
            :class:`FitSettings` has a field of that name.

        Returns
        -------
        FitSettings
            Settings for :func:`fit_chunk`.
        """
        names = {item.name for item in dataclasses.fields(FitSettings)}
        live = {key: value for key, value in live.items() if key in names}
        return FitSettings(
            model=model, predict=predict, free_columns=list(self.free_columns),
            shared_columns=list(self.shared_columns),
            lower=np.asarray(self.lower, np.float64), upper=np.asarray(self.upper, np.float64),
            projector=projector, noise_model=self.noise_model,
            max_n_iterations=int(self.max_n_iterations),
            min_n_iterations=int(self.min_n_iterations), r2_atol=float(self.r2_atol),
            lag=int(self.lag), store_intermediate=bool(self.store_intermediate),
            make_optimizer=make_optimizer or self.make_optimizer, monitor=monitor,
            solver_cache=solver_cache, linear=linear, labels=list(self.labels), **self.extra,
            **live,
        )


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"fit option of type {type(value).__name__} is not a plain value")


@dataclass
class FitPlan:
    """Everything a fit's chunks need, as plain data.

    Attributes
    ----------
    options : FitOptions
        The fit options.
    chunks : list of ndarray
        Voxel columns of each chunk.
    y : ndarray, shape (n_timepoints, n_voxels)
        Data of all voxels (confound-projected, float32).
    theta0 : ndarray, shape (n_voxels, n_parameters)
        Starting parameters (float32).
    sst : ndarray, shape (n_voxels,)
        Total sum of squares per voxel.
    paradigm : ndarray
        Stimulus per time point (float32).
    projector : ndarray or None
        Confound residual-forming matrix.
    spec : str
        The model's JSON specification (or its class name when it has none).
    """

    options: FitOptions
    chunks: list
    y: np.ndarray
    theta0: np.ndarray
    sst: np.ndarray
    paradigm: np.ndarray
    projector: np.ndarray | None
    spec: str

    def chunk_inputs(self, number):
        """Return the data, starting values and SST of chunk ``number``."""
        index = self.chunks[number]
        # C order everywhere: numpy's reductions sum in an order set by the memory layout.
        return (np.ascontiguousarray(self.y[:, index]), np.ascontiguousarray(self.theta0[index]),
                np.ascontiguousarray(self.sst[index]))

    def hashes(self, voxel_labels):
        """Hashes of each input of the results (data, start, paradigm, model, options).

        Parameters
        ----------
        voxel_labels : sequence
            Voxel labels of the data (part of the data hash).

        Returns
        -------
        dict
            Name → hex digest.
        """
        chunks = json.dumps([chunk.tolist() for chunk in self.chunks])
        return {
            "data": text_hash(self.y, json.dumps([str(v) for v in voxel_labels]), chunks),
            "starting values": text_hash(self.theta0),
            "paradigm": text_hash(self.paradigm),
            "model": text_hash(self.spec),
            "fit options": text_hash(json.dumps(dataclasses.asdict(self.options),
                                                sort_keys=True, default=str),
                                     self.projector),
        }


class ChunkStore:
    """Results of a fit's chunks gathered into per-voxel arrays, in any arrival order.

    Parameters
    ----------
    plan : FitPlan
        The fit's plan (starting values of chunks never fitted are kept).
    """

    def __init__(self, plan):
        n_voxels = plan.theta0.shape[0]
        self.plan = plan
        self.theta = plan.theta0.copy()
        self.sse = np.full(n_voxels, np.nan)
        self.sigma2 = np.full(n_voxels, np.nan)
        self.frozen = np.zeros(n_voxels, bool)
        self.converged = np.zeros(n_voxels, bool)
        self.voxel_iterations = np.zeros(n_voxels, np.int64)
        self.voxel_stop = np.zeros(n_voxels, np.int64)
        self.reasons, self.iterations, self.intermediate = [], [], []
        self.resumed = self.fitted = 0

    def add(self, number, result, resumed=False):
        """Store the result of chunk ``number``.

        Parameters
        ----------
        number : int
            Chunk number.
        result : ChunkResult
            Its result.
        resumed : bool, default False
            The result was loaded from a checkpoint.
        """
        index = self.plan.chunks[number]
        shared = self.plan.options.shared_columns
        self.theta[index] = result.theta
        if shared:  # one value, exactly (vectorised transforms differ by an ulp)
            self.theta[index[:, None], shared] = result.theta[0, shared]
        self.sse[index] = result.sse
        self.frozen[index] = result.frozen
        self.converged[index] = result.converged
        if result.sigma2 is not None:
            self.sigma2[index] = result.sigma2
        if getattr(result, "voxel_stop", None) is not None:
            self.voxel_iterations[index] = result.voxel_iterations
            self.voxel_stop[index] = result.voxel_stop
        self.reasons.append(result.stop_reason)
        self.iterations.append(int(np.max(result.n_iterations)))
        self.intermediate.extend((step, index, values) for step, values in result.intermediate)
        if resumed:
            self.resumed += 1
        else:
            self.fitted += 1

    def chunk_scalars(self, number, result, seconds):
        """TensorBoard scalars of one finished chunk (mean R², iterations, seconds)."""
        index = self.plan.chunks[number]
        sst = self.plan.sst[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1.0 - np.asarray(result.sse, np.float64) / sst
        finite = np.isfinite(r2)
        return {"chunks/mean_r2": float(r2[finite].mean()) if finite.any() else float("nan"),
                "chunks/n_iterations": float(np.max(result.n_iterations)),
                "chunks/voxels": float(len(index)), "chunks/seconds": float(seconds)}
