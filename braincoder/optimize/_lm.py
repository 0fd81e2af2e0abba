"""Batched Levenberg–Marquardt: every voxel's small Gauss–Newton system solved at once.

Each voxel has its own damping λ. One iteration evaluates the prediction and its Jacobian
with respect to the free parameters (see :mod:`._jacobians`), solves all voxels' damped
normal equations with one batched Cholesky, evaluates the trial point (clipped to the
parameter bounds) and accepts it per voxel if it lowers that voxel's sum of squares. A
parameter sitting at a bound whose gradient pushes it outwards is held there for the step
(projected LM), so a voxel pinned at a bound takes full steps in its other parameters.

Several iterations run inside one compiled ``tf.while_loop`` per host call (a *block*);
between blocks the converged voxels leave the batch, so later iterations cost less and the
per-call overhead is paid once per block, not once per iteration.

Per-voxel stopping rules (codes in :data:`STOP_REASONS`), checked after every iteration:
an accepted step gained less than ``r2_atol`` in R²; an accepted step moved the free
parameters by less than ``xtol · (xtol + ‖θ‖)``; over the last ``stall_window``
iterations the voxel gained less than ``stall_r2`` in R² (a voxel crawling, e.g. along a
bound); no step lowers the loss (damping above 1e7); or every free parameter is pinned at
a bound.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ._jacobians import LinearJacobian, forward_mode_jacobian

LAMBDA_INIT = 1e-2
LAMBDA_MAX = 1e7

#: Per-voxel stop codes of the LM fit and their meaning (0: still active).
STOP_REASONS = {
    0: "active",
    1: "R² gain below r2_atol",
    2: "parameter step below xtol",
    3: "stalled (R² gain below stall_r2 over stall_window iterations)",
    4: "no step lowers the loss",
    5: "all free parameters at bounds",
    6: "non-finite loss",
    7: "reached max_n_iterations",
}
AT_CAP = 7
SHRINK = 0.6
NON_FINITE = 6


@dataclass
class LMState:
    """Per-voxel state of the LM iterations (all numpy)."""

    theta: np.ndarray  # (V, P) natural parameters
    sse: np.ndarray  # (V,)
    lam: np.ndarray  # (V,)
    converged: np.ndarray  # (V,) bool
    frozen: np.ndarray  # (V,) bool: non-finite loss, kept at the best parameters
    code: np.ndarray | None = None  # (V,) int32 stop code, 0 while active
    iterations: np.ndarray | None = None  # (V,) int32 iterations run per voxel
    window_sse: np.ndarray | None = None  # (V,) SSE at the start of the stall window
    window_count: np.ndarray | None = None  # (V,) int32 iterations in the stall window


class LMSolver:
    """Compiled LM iterations for one model, paradigm and set of free parameters.

    Parameters
    ----------
    predict : callable
        Tensor function ``theta (V, P) -> predictions (T, V)``.
    free_columns : sequence of int
        Columns of ``theta`` optimised per voxel.
    lower, upper : ndarray, shape (P,)
        Box bounds of the natural parameters.
    projector : ndarray, shape (T, T), optional
        Residual-forming matrix of confounds, applied to predictions and Jacobians.
    linear : tuple (stimulus, rf, baseline), optional
        For models whose prediction is ``stimulus @ rf(theta) + baseline(theta)``: the
        (HRF-convolved) stimulus tensor and the two tensor functions
        (see :class:`~._jacobians.LinearJacobian`).
    rf_jacobian : callable, optional
        Closed-form ``theta -> (rf, [d rf / d theta_k or None])`` (with ``linear``).
    baseline_column, amplitude_column : int, optional
        Columns of the additive baseline and of a whole-field amplitude (with
        ``rf_jacobian``).
    jacobian : callable, optional
        Provider with ``__call__(theta) -> (prediction, jacobian (T, n_free · V))`` and
        ``predict(theta)``, e.g. :class:`~._jacobians.PerVoxelHRFJacobian`; replaces
        ``linear``.
    """

    def __init__(self, predict, free_columns, lower, upper, projector=None, linear=None,
                 rf_jacobian=None, baseline_column=None, amplitude_column=None, jacobian=None):
        self.free_columns = np.asarray(free_columns, dtype=np.int32)
        if jacobian is None and linear is not None:
            jacobian = LinearJacobian(linear, self.free_columns, rf_jacobian, baseline_column,
                                      amplitude_column)
        self.provider = jacobian
        self.predict = predict if jacobian is None else jacobian.predict
        # Variables, not constants: a new fit with other bounds reuses the compiled steps.
        self.lower = tf.Variable(tf.zeros(len(lower)), trainable=False)
        self.upper = tf.Variable(tf.zeros(len(upper)), trainable=False)
        self.set_bounds(lower, upper)
        self.projector = None if projector is None else tf.constant(projector, tf.float32)
        matrix = tf.TensorSpec([None, None], tf.float32)
        parameters = tf.TensorSpec([None, len(lower)], tf.float32)
        vector = tf.TensorSpec([None], tf.float32)
        counts = tf.TensorSpec([None], tf.int32)
        scalar = tf.TensorSpec([], tf.float32)
        # One trace each, whatever the (shrinking) number of voxels in the batch. Partials
        # (not lambdas) give each solver its own entry in TensorFlow's retracing statistics.
        self._iterate_shared = tf.function(
            functools.partial(self._iteration, shared=True), input_signature=[
                matrix, parameters, vector, vector])
        self._run_block = tf.function(functools.partial(self._block), input_signature=[
            matrix, parameters, vector, vector, vector, vector, counts, counts,
            tf.TensorSpec([], tf.int32), scalar, scalar, scalar, tf.TensorSpec([], tf.int32)])
        self._evaluate = tf.function(functools.partial(self._sse),
                                     input_signature=[matrix, parameters])

    def set_bounds(self, lower, upper):
        """Set the natural-parameter bounds of the optimised columns.

        Only the optimised columns are clipped: fixed values stay exactly as given.

        Parameters
        ----------
        lower, upper : array-like, shape (n_parameters,)
            Bounds per parameter column (non-finite: unbounded).
        """
        lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        moving = np.isin(np.arange(len(lower)), self.free_columns)
        self.lower.assign(np.where(moving & np.isfinite(lower), lower, -3.0e38).astype(np.float32))
        self.upper.assign(np.where(moving & np.isfinite(upper), upper, 3.0e38).astype(np.float32))

    def _project(self, values):
        if self.projector is None:
            return values
        return tf.matmul(self.projector, values)

    def _sse(self, y, theta):
        prediction = self._project(self.predict(theta))
        return tf.reduce_sum(tf.square(y - prediction), axis=0)

    def _jacobian(self, theta):
        """Prediction (T, V) and Jacobian (T, n_free, V), confound-projected."""
        n_voxels = tf.shape(theta)[0]
        if self.provider is not None:
            prediction, jvp = self.provider(theta)
        else:
            prediction, jvp = forward_mode_jacobian(self.predict, theta, self.free_columns)
        n_timepoints = tf.shape(jvp)[0]
        jacobian = tf.reshape(self._project(jvp), [n_timepoints, len(self.free_columns),
                                                   n_voxels])
        return self._project(prediction), jacobian

    def _solve(self, hessian, gradient, lam):
        """Damped normal equations, batched: (H + λ·diag(H) + εI) δ = g."""
        diagonal = tf.linalg.diag_part(hessian)
        scale = tf.reduce_mean(diagonal, axis=-1, keepdims=True) + 1e-12
        damped = hessian + tf.linalg.diag(lam[:, None] * diagonal + 1e-6 * scale)
        chol = tf.linalg.cholesky(damped)
        step = tf.linalg.cholesky_solve(chol, gradient[..., None])[..., 0]
        ok = tf.reduce_all(tf.math.is_finite(step), axis=-1)
        return tf.where(ok[:, None], step, tf.zeros_like(step))

    def _iteration(self, y, theta, sse, lam, shared, current=None):
        """One LM iteration for every voxel in the batch.

        With ``shared`` True the free columns hold one value shared by all voxels: the
        normal equations are summed over voxels and one step with one λ is taken.
        Returns the new theta, SSE and λ, the acceptance, the norms of the accepted step
        (inf if rejected) and of the free parameters, and whether every free parameter was
        pinned at a bound. With ``current`` (the prediction and Jacobian at ``theta``) the
        trial point is evaluated with its Jacobian, which the next iteration reuses when
        the step is accepted (one evaluation per iteration instead of two); the prediction
        and Jacobian at the new theta are then returned as well.
        """
        if current is None:
            prediction, jacobian = self._jacobian(theta)
        else:
            prediction, jacobian = current
        residual = y - prediction
        gradient = tf.einsum("tnv,tv->vn", jacobian, residual)
        hessian = tf.einsum("tnv,tmv->vnm", jacobian, jacobian)
        n_free = len(self.free_columns)
        values = tf.gather(theta, self.free_columns, axis=1)
        if shared:
            gradient = tf.reduce_sum(gradient, axis=0, keepdims=True)
            hessian = tf.reduce_sum(hessian, axis=0, keepdims=True)
            step = self._solve(hessian, gradient, lam[:1])
            step = tf.broadcast_to(step, [tf.shape(theta)[0], n_free])
            pinned_all = tf.zeros(tf.shape(sse), tf.bool)
        else:
            # Projected LM: hold parameters at a bound that the gradient pushes outwards.
            lower = tf.gather(self.lower, self.free_columns)
            upper = tf.gather(self.upper, self.free_columns)
            pinned = ((values <= lower) & (gradient < 0)) | ((values >= upper) & (gradient > 0))
            keep = 1.0 - tf.cast(pinned, tf.float32)
            gradient = gradient * keep
            hessian = hessian * keep[:, :, None] * keep[:, None, :] + tf.linalg.diag(1.0 - keep)
            step = self._solve(hessian, gradient, lam)
            pinned_all = tf.reduce_all(pinned, axis=1)
        update = tf.matmul(step, tf.one_hot(self.free_columns, theta.shape[1], dtype=tf.float32))
        trial = tf.clip_by_value(theta + update, self.lower, self.upper)
        if current is None:
            trial_sse = self._sse(y, trial)
        else:
            trial_prediction, trial_jacobian = self._jacobian(trial)
            trial_sse = tf.reduce_sum(tf.square(y - trial_prediction), axis=0)
        finite = tf.math.is_finite(trial_sse)
        if shared:
            accept = tf.fill(tf.shape(sse), tf.reduce_sum(trial_sse) < tf.reduce_sum(sse))
            accept = tf.logical_and(accept, tf.reduce_all(finite))
        else:
            accept = tf.logical_and(finite, trial_sse < sse)
        new_theta = tf.where(accept[:, None], trial, theta)
        new_sse = tf.where(accept, trial_sse, sse)
        new_lam = tf.where(accept, tf.maximum(lam / 10.0, 1e-7), lam * 10.0)
        moved = tf.gather(trial - theta, self.free_columns, axis=1)
        step_norm = tf.where(accept, tf.norm(moved, axis=1), tf.fill(tf.shape(sse), np.inf))
        out = (new_theta, new_sse, new_lam, accept, (step_norm, tf.norm(values, axis=1)),
               pinned_all)
        if current is None:
            return out
        kept = (tf.where(accept[None, :], trial_prediction, prediction),
                tf.where(accept[None, None, :], trial_jacobian, jacobian))
        return out, kept

    def _block(self, y, theta, sse, lam, sst, window_sse, window_count, code, n_steps, r2_atol,
               xtol, stall_r2, stall_window):
        """Up to ``n_steps`` iterations of the voxels with ``code == 0``, in one graph."""

        def body(step, theta, sse, lam, window_sse, window_count, code, iterations, current):
            active = tf.equal(code, 0)
            out, current = self._iteration(y, theta, sse, lam, shared=False, current=current)
            new_theta, new_sse, new_lam, accept, (step_norm, norm), pinned_all = out
            gain = (sse - new_sse) / sst
            count = window_count + 1
            window_gain = (window_sse - new_sse) / sst
            window_full = count >= stall_window
            stop = tf.zeros_like(code)
            for number, condition in reversed([
                (1, accept & (gain < r2_atol)),
                (2, accept & (step_norm < xtol * (xtol + norm))),
                (3, window_full & (window_gain < stall_r2)),
                (4, new_lam > LAMBDA_MAX),
                (5, pinned_all),
            ]):
                stop = tf.where(condition, number, stop)
            theta = tf.where(active[:, None], new_theta, theta)
            sse = tf.where(active, new_sse, sse)
            lam = tf.where(active, new_lam, lam)
            window_sse = tf.where(active & window_full, new_sse, window_sse)
            window_count = tf.where(active, tf.where(window_full, 0, count), window_count)
            code = tf.where(active, stop, code)
            iterations = iterations + tf.cast(active, tf.int32)
            return step + 1, theta, sse, lam, window_sse, window_count, code, iterations, current

        n_batch = tf.reduce_sum(tf.cast(tf.equal(code, 0), tf.int32))

        def condition(step, theta, sse, lam, window_sse, window_count, code, iterations,
                      current):
            # Hand back to the host (which drops the stopped voxels from the batch) when
            # fewer than SHRINK of the batch remain active.
            n_active = tf.reduce_sum(tf.cast(tf.equal(code, 0), tf.int32))
            return (step < n_steps) & (n_active > 0) & (
                tf.cast(n_active, tf.float32) >= SHRINK * tf.cast(n_batch, tf.float32))

        iterations = tf.zeros_like(code)
        state = (tf.constant(0), theta, sse, lam, window_sse, window_count, code, iterations,
                 self._jacobian(theta))
        return tf.while_loop(condition, body, state)[:-1]

    def initial_state(self, y, theta):
        """Evaluate the starting point."""
        sse = self._evaluate(tf.constant(y, tf.float32), tf.constant(theta, tf.float32)).numpy()
        n_voxels = len(theta)
        frozen = ~np.isfinite(sse)
        return LMState(
            theta=np.asarray(theta, np.float32).copy(),
            sse=sse,
            lam=np.full(n_voxels, LAMBDA_INIT, np.float32),
            converged=np.zeros(n_voxels, bool),
            frozen=frozen,
            code=np.where(frozen, NON_FINITE, 0).astype(np.int32),
            iterations=np.zeros(n_voxels, np.int32),
            window_sse=sse.copy(),
            window_count=np.zeros(n_voxels, np.int32),
        )

    def run(self, y, state, sst, n_steps, r2_atol, xtol=1e-5, stall_r2=1e-4, stall_window=20):
        """Run up to ``n_steps`` iterations of the active voxels in one call; update ``state``.

        Parameters
        ----------
        y : ndarray, shape (T, V)
            Data (confound-projected).
        state : LMState
            State of all voxels, updated in place.
        sst : ndarray, shape (V,)
            Total sum of squares per voxel.
        n_steps : int
            Iterations at most (fewer when every voxel stops).
        r2_atol, xtol, stall_r2, stall_window : float, float, float, int
            Stopping rules (see the module docstring).

        Returns
        -------
        int
            Iterations run.
        """
        active = np.flatnonzero(state.code == 0)
        if active.size == 0:
            return 0
        out = self._run_block(
            tf.constant(y[:, active]), tf.constant(state.theta[active]),
            tf.constant(state.sse[active], tf.float32), tf.constant(state.lam[active]),
            tf.constant(np.maximum(sst[active], 1e-30), tf.float32),
            tf.constant(state.window_sse[active], tf.float32),
            tf.constant(state.window_count[active]), tf.constant(state.code[active]),
            tf.constant(int(n_steps)), tf.constant(float(r2_atol), tf.float32),
            tf.constant(float(xtol), tf.float32), tf.constant(float(stall_r2), tf.float32),
            tf.constant(int(stall_window)),
        )
        steps, theta, sse, lam, window_sse, window_count, code, iterations = (
            value.numpy() for value in out)
        state.theta[active] = theta
        state.sse[active] = sse
        state.lam[active] = lam
        state.window_sse[active] = window_sse
        state.window_count[active] = window_count
        state.code[active] = code
        state.iterations[active] += iterations
        state.converged[:] = (state.code > 0) & (state.code < NON_FINITE)
        return int(steps)

    def iterate(self, y, state, sst, r2_atol, shared=False):
        """Run one iteration (per voxel, or one step of the shared columns).

        Parameters
        ----------
        y : ndarray, shape (T, V)
            Data (confound-projected).
        state : LMState
            State of all voxels, updated in place.
        sst : ndarray, shape (V,)
            Total sum of squares per voxel.
        r2_atol : float
            Per-voxel R² tolerance (see :meth:`run`).
        shared : bool, default False
            Step the shared columns (all voxels together).

        Returns
        -------
        int
            Number of voxels iterated.
        """
        if not shared:
            active = int((state.code == 0).sum())
            self.run(y, state, sst, 1, r2_atol)
            return active
        active = np.flatnonzero(~state.frozen)
        if active.size == 0:
            return 0
        theta, sse, lam, *_ = self._iterate_shared(
            tf.constant(y[:, active]), tf.constant(state.theta[active]),
            tf.constant(state.sse[active], tf.float32), tf.constant(state.lam[active]),
        )
        state.theta[active] = theta.numpy()
        state.sse[active] = sse.numpy()
        state.lam[active] = lam.numpy()
        return active.size
