"""The one compiled first-order loop (any Keras optimizer) and its stop rules.

:class:`FirstOrderLoop` runs many optimiser steps of one variable inside one
``tf.function`` call and returns one value per step of each tracked quantity; between
calls, :func:`drive` updates the :class:`~._monitor.Monitor`, asks the stop rules
(:class:`MaxSteps`, :class:`LossPlateau`, :class:`R2Plateau`, :class:`NonFiniteLoss`)
whether to stop and turns Ctrl-C into "interrupted" (the best state so far is kept).

Users: :class:`CompiledLoop` (the parameter fitter's masked per-voxel problem,
:class:`MaskedProblem`: per-voxel free parameters, shared parameters and Gaussian
log-variances in one vector, per-voxel best R² tracked) and :func:`adam_minimize` (the
stimulus and noise fitters: a scalar loss, best loss tracked).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ._monitor import Monitor

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- stop rules
class StopRule:
    """Decides, from the per-step history, whether a loop should stop.

    Subclasses implement :meth:`first_stop`.
    """

    def first_stop(self, history, start):
        """First step (1-based count) at which the rule fires among the new steps.

        Parameters
        ----------
        history : dict of list
            Per-step values of every tracked quantity, from the first step.
        start : int
            Number of steps that had been checked before (only later steps are new).

        Returns
        -------
        (int, str) or None
            Step count at which to stop and the reason, or None.
        """
        raise NotImplementedError


@dataclass
class MaxSteps(StopRule):
    """Stop after ``n`` steps."""

    n: int

    def first_stop(self, history, start):
        total = len(next(iter(history.values()), []))
        if total >= self.n:
            return self.n, f"reached max_n_iterations ({self.n})"
        return None


@dataclass
class NonFiniteLoss(StopRule):
    """Stop at the first non-finite value of ``key``."""

    key: str = "loss"

    def first_stop(self, history, start):
        values = np.asarray(history[self.key][start:], np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            return start + int(bad[0]) + 1, "non-finite loss"
        return None


@dataclass
class LossPlateau(StopRule):
    """Stop once ``key`` improved by at most ``rtol`` (relative) over the last ``lag`` steps.

    Fires at step ``k`` (after ``min_steps`` steps and more than ``lag``) when
    ``value[k − lag] − value[k] <= rtol · |value[k − lag]|``.
    """

    lag: int
    rtol: float
    min_steps: int = 0
    key: str = "loss"

    def first_stop(self, history, start):
        values = np.asarray(history[self.key], np.float64)
        for k in range(max(start, self.lag, self.min_steps), len(values)):
            old, new = values[k - self.lag], values[k]
            if np.isfinite(old) and np.isfinite(new) and old - new <= self.rtol * abs(old):
                return k + 1, "converged"
        return None


@dataclass
class R2Plateau(StopRule):
    """Stop once ``key`` (mean best R²) rose by less than ``atol`` over the last ``lag`` steps.

    Checked at the end of each call, as the fitter's history is per call.
    """

    lag: int
    atol: float
    min_steps: int = 0
    key: str = "best_r2"

    def first_stop(self, history, start):
        values = history[self.key]
        if len(values) >= self.min_steps and len(values) > self.lag:
            if values[-1] - values[-1 - self.lag] < self.atol:
                return len(values), (f"mean best R² improved less than r2_atol={self.atol:g} "
                                     f"over the last {self.lag} steps")
        return None


# ---------------------------------------------------------------------- the loop
class FirstOrderLoop:
    """Compiled first-order minimisation of one variable with a Keras optimizer.

    Parameters
    ----------
    loss : callable or None
        Tensor function ``vector -> scalar loss``; subclasses may override
        :meth:`objective` instead.
    initial : array-like
        Starting value (any shape).
    optimizer : keras.optimizers.Optimizer
        Any Keras 3 optimizer (built here for the variable).
    dtype : tf.DType, default float32
        Dtype of the variable.
    """

    #: Scalars returned by :meth:`track` (one value per step each).
    TRACKED = ("loss", "best_loss")

    def __init__(self, loss, initial, optimizer, dtype=tf.float32):
        self.loss_fn = loss
        self.optimizer = optimizer
        self.dtype = dtype
        self.initial = np.asarray(initial)
        self.variable = tf.Variable(tf.constant(self.initial, dtype), name="free_parameters")
        self.optimizer.build([self.variable])
        self.best_vector = tf.Variable(self.variable, trainable=False)
        self.best_loss = tf.Variable(tf.constant(np.inf, dtype), trainable=False)
        # A partial, not the bound method: every loop traces its own function.
        self._run = tf.function(functools.partial(self._steps))

    def objective(self, vector):
        """Scalar loss and auxiliary tensors of ``vector``."""
        return tf.cast(self.loss_fn(vector), self.dtype), None

    def filter_gradient(self, gradient, loss, aux):
        """Gradient actually applied (non-finite entries zeroed)."""
        return tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))

    def track(self, loss, gradient, aux):
        """Update the best state before the step; return this step's tracked scalars."""
        finite = tf.logical_and(tf.math.is_finite(loss),
                                tf.reduce_all(tf.math.is_finite(gradient)))
        better = tf.logical_and(finite, loss < self.best_loss)
        self.best_vector.assign(tf.where(better, self.variable, self.best_vector))
        self.best_loss.assign(tf.where(better, loss, self.best_loss))
        return {"loss": loss, "best_loss": self.best_loss.read_value()}

    def _step(self):
        with tf.GradientTape() as tape:
            loss, aux = self.objective(self.variable)
        gradient = tape.gradient(loss, self.variable)
        tracked = self.track(loss, gradient, aux)
        gradient = self.filter_gradient(gradient, loss, aux)
        self.optimizer.apply_gradients([(gradient, self.variable)])
        return tracked

    def _steps(self, n_steps):
        arrays = tuple(tf.TensorArray(self.dtype, size=n_steps) for _ in self.TRACKED)
        for i in tf.range(n_steps):
            tracked = self._step()
            arrays = tuple(array.write(i, tf.cast(tracked[key], self.dtype))
                           for array, key in zip(arrays, self.TRACKED, strict=True))
        return {key: array.stack() for key, array in zip(self.TRACKED, arrays, strict=True)}

    def run_steps(self, n_steps):
        """Run ``n_steps`` compiled steps; return each tracked quantity per step (numpy)."""
        out = self._run(tf.constant(int(n_steps), tf.int32))
        return {key: value.numpy() for key, value in out.items()}


def drive(run, rules, max_steps, steps_per_call, monitor=None, on_call=None,
          what="fit"):
    """Run a loop call by call until a stop rule fires or Ctrl-C.

    Parameters
    ----------
    run : callable
        ``n -> dict`` of per-step arrays (e.g. :meth:`FirstOrderLoop.run_steps`).
    rules : sequence of StopRule
        Checked after every call, in order.
    max_steps : int
        Step budget (a :class:`MaxSteps` rule is added).
    steps_per_call : int
        Steps per compiled call.
    monitor : Monitor, optional
        Receives the interruption; progress is reported by ``on_call``.
    on_call : callable, optional
        ``on_call(step, values)`` after every call (logging, bar, intermediate states).
    what : str, default "fit"
        Name used in the interruption warning.

    Returns
    -------
    n_steps : int
        Steps counted (up to the step at which a rule fired).
    reason : str
        Why the loop stopped (``"interrupted"`` after Ctrl-C).
    history : dict of ndarray
        Per-step values of every tracked quantity.
    """
    rules = list(rules) + [MaxSteps(int(max_steps))]
    history = {}
    step = 0
    stop = None if max_steps > 0 else (0, f"reached max_n_iterations ({max_steps})")
    try:
        while stop is None:
            n = int(min(steps_per_call, max_steps - step))
            values = run(n)
            for key, array in values.items():
                history.setdefault(key, []).extend(np.asarray(array).tolist())
            start, step = step, step + n
            if on_call is not None:
                on_call(step, values)
            for rule in rules:
                stop = rule.first_stop(history, start)
                if stop is not None:
                    break
    except KeyboardInterrupt:
        (monitor or Monitor(progressbar=False)).interrupt(what, step)
        stop = (step, "interrupted")
    n_steps, reason = stop
    return n_steps, reason, {key: np.asarray(v) for key, v in history.items()}


class MaskedProblem:
    """Map between the single trainable vector and the full parameter matrix.

    Parameters
    ----------
    model : EncodingModel
        Provides ``_transform_forward`` (unbounded → natural, tensors).
    predict : callable
        Tensor function ``theta (V, P) natural -> predictions (T, V)``.
    init_unbounded : ndarray, shape (V, P)
        Starting point in unbounded space.
    free_columns, shared_columns : sequence of int
        Per-voxel free columns and shared columns.
    noise_model : {"ssq", "gaussian"}
        Loss.
    projector : ndarray, shape (T, T), optional
        Residual-forming matrix of confounds.
    init_sigma2 : ndarray, shape (V,), optional
        Starting noise variances for the Gaussian noise model.
    """

    def __init__(self, model, predict, init_unbounded, free_columns, shared_columns,
                 noise_model, projector=None, init_sigma2=None):
        self.model = model
        self.predict = predict
        init = np.asarray(init_unbounded, np.float32)
        self.n_voxels, self.n_parameters = init.shape
        self.free_columns = list(free_columns)
        self.shared_columns = list(shared_columns)
        self.noise_model = noise_model
        eye = np.eye(self.n_parameters, dtype=np.float32)
        self.free_embed = tf.constant(eye[self.free_columns].reshape(-1, self.n_parameters))
        self.shared_embed = tf.constant(eye[self.shared_columns].reshape(-1, self.n_parameters))
        keep = np.ones(self.n_parameters, np.float32)
        keep[self.free_columns + self.shared_columns] = 0.0
        self.base = tf.constant(init * keep)
        self.projector = None if projector is None else tf.constant(projector, tf.float32)
        self.n_free = self.n_voxels * len(self.free_columns)
        self.n_shared = len(self.shared_columns)
        pieces = [init[:, self.free_columns].ravel(), init[0, self.shared_columns]]
        if noise_model == "gaussian":
            sigma2 = np.ones(self.n_voxels) if init_sigma2 is None else init_sigma2
            pieces.append(np.log(np.maximum(sigma2, 1e-12)).astype(np.float32))
        self.initial_vector = np.concatenate(pieces).astype(np.float32)

    def unbounded(self, vector):
        """Full unbounded parameter matrix (V, P) from the trainable vector."""
        free = tf.reshape(vector[: self.n_free], [self.n_voxels, len(self.free_columns)])
        theta = self.base + tf.matmul(free, self.free_embed)
        if self.n_shared:
            shared = vector[self.n_free : self.n_free + self.n_shared]
            theta = theta + tf.matmul(shared[None, :], self.shared_embed)
        return theta

    def log_sigma2(self, vector):
        """Per-voxel log noise variance (Gaussian noise model)."""
        return vector[self.n_free + self.n_shared :]

    def sse(self, vector, y):
        """Per-voxel sum of squared residuals, shape (V,)."""
        theta = self.model.transform_tensor_forward(self.unbounded(vector))
        prediction = self.predict(theta)
        if self.projector is not None:
            prediction = tf.matmul(self.projector, prediction)
        return tf.reduce_sum(tf.square(y - prediction), axis=0)

    def loss(self, vector, y, active):
        """Total loss over the active (non-frozen) voxels and the per-voxel SSE."""
        sse = self.sse(vector, y)
        if self.noise_model == "gaussian":
            log_sigma2 = self.log_sigma2(vector)
            n = tf.cast(tf.shape(y)[0], tf.float32)
            per_voxel = 0.5 * n * log_sigma2 + 0.5 * sse * tf.exp(-log_sigma2)
        else:
            per_voxel = sse
        usable = tf.logical_and(active, tf.math.is_finite(per_voxel))
        return tf.reduce_sum(tf.where(usable, per_voxel, tf.zeros_like(per_voxel))), sse


class CompiledLoop(FirstOrderLoop):
    """The parameter fitter's loop: a :class:`MaskedProblem`, each voxel's best R² tracked.

    Voxels whose loss becomes non-finite are frozen (their gradient is zeroed) and keep
    their best parameters.

    Parameters
    ----------
    problem : MaskedProblem
        The masked problem.
    optimizer : keras.optimizers.Optimizer
        Any Keras 3 optimizer.
    y : ndarray, shape (T, V)
        Data (confound-projected).
    sst : ndarray, shape (V,)
        Total sum of squares per voxel.
    """

    TRACKED = ("loss", "r2", "best_r2")

    def __init__(self, problem, optimizer, y, sst):
        self.problem = problem
        self.y = tf.constant(y, tf.float32)
        self.sst = tf.constant(np.maximum(sst, 1e-30), tf.float32)
        n_voxels = problem.n_voxels
        self.active = tf.Variable(tf.ones(n_voxels, tf.bool), trainable=False)
        self.best_r2 = tf.Variable(tf.fill([n_voxels], -np.inf), trainable=False)
        self._voxel_of_entry = tf.constant(self._entry_voxels())
        super().__init__(None, problem.initial_vector, optimizer)

    def _entry_voxels(self):
        """Voxel owning each vector entry (−1 for shared entries)."""
        problem = self.problem
        free = np.repeat(np.arange(problem.n_voxels), len(problem.free_columns))
        shared = np.full(problem.n_shared, -1)
        pieces = [free, shared]
        if problem.noise_model == "gaussian":
            pieces.append(np.arange(problem.n_voxels))
        return np.concatenate(pieces).astype(np.int32)

    def _entry_mask(self, voxel_mask):
        owner = self._voxel_of_entry
        safe = tf.maximum(owner, 0)
        return tf.where(owner >= 0, tf.gather(voxel_mask, safe), tf.ones_like(owner, tf.bool))

    def objective(self, vector):
        return self.problem.loss(vector, self.y, self.active)

    def filter_gradient(self, gradient, loss, sse):
        entry_ok = tf.logical_and(self._entry_mask(self.active), tf.math.is_finite(gradient))
        return tf.where(entry_ok, gradient, tf.zeros_like(gradient))

    def track(self, loss, gradient, sse):
        self.active.assign(tf.logical_and(self.active, tf.math.is_finite(sse)))
        r2 = 1.0 - sse / self.sst
        r2 = tf.where(tf.math.is_finite(r2), r2, tf.fill(tf.shape(r2), -np.inf))
        if self.problem.n_shared:
            # Voxels are coupled: the best state is the one with the best mean R².
            current = tf.reduce_mean(tf.boolean_mask(r2, self.active))
            previous = tf.reduce_mean(tf.boolean_mask(self.best_r2, self.active))
            better = tf.logical_or(current > previous, tf.math.is_inf(previous))
            improved = tf.fill(tf.shape(r2), better)
            entry_improved = tf.fill(tf.shape(self._voxel_of_entry), better)
            self.best_r2.assign(tf.where(improved, r2, self.best_r2))
        else:
            improved = r2 > self.best_r2
            entry_improved = self._entry_mask(improved)
            self.best_r2.assign(tf.maximum(self.best_r2, r2))
        self.best_vector.assign(tf.where(entry_improved, self.variable, self.best_vector))
        return {"loss": loss, "r2": tf.reduce_mean(tf.boolean_mask(r2, self.active)),
                "best_r2": tf.reduce_mean(tf.boolean_mask(self.best_r2, self.active))}

    def run(self, n_steps):
        """Run ``n_steps`` steps; return per-step cost, mean R² and mean best R² (numpy)."""
        out = self.run_steps(n_steps)
        return out["loss"], out["r2"], out["best_r2"]

    def best_unbounded(self):
        """Best unbounded parameters (V, P) and best R² per voxel (numpy)."""
        theta = self.problem.unbounded(self.best_vector).numpy()
        return theta, self.best_r2.numpy()

    def sigma2(self):
        """Noise variance per voxel at the best state (Gaussian noise model)."""
        return np.exp(self.problem.log_sigma2(self.best_vector).numpy())

    def frozen(self):
        """Voxels whose loss became non-finite (kept at their best parameters)."""
        return ~self.active.numpy()


# ---------------------------------------------------------------------- scalar losses
@dataclass
class AdamResult:
    """Outcome of :func:`adam_minimize`.

    Attributes
    ----------
    x : ndarray
        Best point (lowest loss seen).
    best_loss : float
        Loss at ``x``.
    losses : ndarray
        Loss at every step counted.
    n_iterations : int
        Number of steps counted (up to the step at which the run stopped).
    stop_reason : str
        Why the run stopped.
    """

    x: np.ndarray
    best_loss: float
    losses: np.ndarray
    n_iterations: int
    stop_reason: str


def _check_schedule(max_n_iterations, min_n_iterations, lag, rtol, learning_rate):
    for name, value in (("max_n_iterations", max_n_iterations), ("lag", lag)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if int(min_n_iterations) < 0:
        raise ValueError(f"min_n_iterations must be >= 0, got {min_n_iterations}")
    if not float(learning_rate) > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not float(rtol) >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")


def adam_minimize(
    loss_fn, init, learning_rate=0.01, max_n_iterations=1000, min_n_iterations=100, lag=100,
    rtol=1e-6, steps_per_call=100, progressbar=True, description="Adam", dtype=tf.float32,
    beta_1=0.9, beta_2=0.999, epsilon=1e-7, optimizer=None,
):
    """Minimise a scalar tensor function with Adam (or any Keras optimizer) in the one loop.

    Stops at the first non-finite loss, once the loss improved by at most ``rtol``
    (relative) over the last ``lag`` steps (after ``min_n_iterations``), after
    ``max_n_iterations`` steps, or on Ctrl-C; the best point seen is returned.

    Parameters
    ----------
    loss_fn : callable
        Tensor function ``x -> scalar loss`` (traced once).
    init : array-like
        Starting point (any shape).
    learning_rate : float, default 0.01
        Adam step size.
    max_n_iterations, min_n_iterations : int
        Step budget and minimum number of steps before early stopping.
    lag : int, default 100
        Window of the early-stopping test.
    rtol : float, default 1e-6
        Stop when ``loss[k − lag] − loss[k] <= rtol · |loss[k − lag]|``.
    steps_per_call : int, default 100
        Steps per compiled call (the progress bar updates between calls).
    progressbar : bool, default True
        Show a tqdm bar.
    description : str
        Label of the progress bar.
    dtype : tf.DType, default float32
        Dtype of the optimised variable.
    beta_1, beta_2, epsilon : float
        Adam constants.
    optimizer : keras.optimizers.Optimizer, optional
        Use this optimizer instead of Adam (``learning_rate`` and the Adam constants are
        then ignored).

    Returns
    -------
    AdamResult
        Best point, losses and stop reason.
    """
    _check_schedule(max_n_iterations, min_n_iterations, lag, rtol, learning_rate)
    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2,
                                          epsilon=epsilon)
    loop = FirstOrderLoop(loss_fn, init, optimizer, dtype=dtype)
    rules = [NonFiniteLoss(), LossPlateau(int(lag), float(rtol), int(min_n_iterations))]
    with Monitor(None, int(max_n_iterations), progressbar, description,
                 what=description) as monitor:
        def on_call(step, values):
            monitor.advance(len(values["loss"]), loss=float(values["loss"][-1]),
                            best=float(values["best_loss"][-1]))

        n_steps, reason, history = drive(loop.run_steps, rules, int(max_n_iterations),
                                         int(steps_per_call), monitor, on_call, description)
    best_loss = float(loop.best_loss.numpy())
    x = loop.best_vector.numpy() if np.isfinite(best_loss) else np.asarray(init)
    losses = history.get("loss", np.zeros(0))[:n_steps]
    logger.info("%s: %s after %d steps (best loss %.6g)", description, reason, n_steps,
                best_loss)
    return AdamResult(np.asarray(x), best_loss, losses, n_steps, reason)
