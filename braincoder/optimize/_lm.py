"""Batched Levenberg–Marquardt: every voxel's small Gauss–Newton system solved at once.

Each voxel has its own damping λ. One iteration evaluates the prediction and its Jacobian
with respect to the free parameters in one forward-mode pass over a tiled batch, solves all
voxels' damped normal equations with one batched Cholesky, evaluates the trial point
(clipped to the parameter bounds) and accepts it per voxel if it lowers that voxel's sum of
squares. Converged voxels leave the batch, so later iterations cost less.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

LAMBDA_INIT = 1e-2
LAMBDA_MAX = 1e7


@dataclass
class LMState:
    """Per-voxel state of the LM iterations (all numpy)."""

    theta: np.ndarray  # (V, P) natural parameters
    sse: np.ndarray  # (V,)
    lam: np.ndarray  # (V,)
    converged: np.ndarray  # (V,) bool
    frozen: np.ndarray  # (V,) bool: non-finite loss, kept at the best parameters


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
        (HRF-convolved) stimulus tensor (T, n_pixels) and the two tensor functions. The
        Jacobian then differentiates only ``rf`` and ``baseline`` and takes one stacked
        matrix product for the prediction and all its derivatives.
    rf_jacobian : callable, optional
        Closed-form ``theta -> (rf, [d rf / d theta_k or None])`` of the model; replaces the
        forward-mode derivatives of ``rf`` when given (with ``linear``).
    baseline_column : int, optional
        Column of the additive baseline (its derivative is 1), with ``rf_jacobian``.
    amplitude_column : int, optional
        Column of an amplitude that multiplies the whole field (``rf = amplitude · unit``),
        with ``rf_jacobian``.
    """

    def __init__(self, predict, free_columns, lower, upper, projector=None, linear=None,
                 rf_jacobian=None, baseline_column=None, amplitude_column=None):
        self.predict = predict
        self.linear = linear
        self.rf_jacobian = rf_jacobian
        self.baseline_column = baseline_column
        self.amplitude_column = amplitude_column
        self.free_columns = np.asarray(free_columns, dtype=np.int32)
        # Variables, not constants: a new fit with other bounds reuses the compiled steps.
        self.lower = tf.Variable(tf.zeros(len(lower)), trainable=False)
        self.upper = tf.Variable(tf.zeros(len(upper)), trainable=False)
        self.set_bounds(lower, upper)
        self.projector = None if projector is None else tf.constant(projector, tf.float32)
        matrix = tf.TensorSpec([None, None], tf.float32)
        parameters = tf.TensorSpec([None, len(lower)], tf.float32)
        vector = tf.TensorSpec([None], tf.float32)
        signature = [matrix, parameters, vector, vector]
        # One trace each, whatever the (shrinking) number of voxels in the batch. Partials
        # (not lambdas) give each solver its own entry in TensorFlow's retracing statistics,
        # so fitting several models in one process does not warn of excessive retracing.
        self._iterate_voxels = tf.function(
            functools.partial(self._iteration, shared=False), input_signature=signature
        )
        self._iterate_shared = tf.function(
            functools.partial(self._iteration, shared=True), input_signature=signature
        )
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
        """Prediction (T, V) and Jacobian (T, n_free, V) by one tiled forward-mode pass."""
        n_free = len(self.free_columns)
        n_voxels = tf.shape(theta)[0]
        n_parameters = theta.shape[1]
        tiled = tf.tile(theta, [n_free, 1])
        tangents = tf.repeat(
            tf.one_hot(self.free_columns, n_parameters, dtype=tf.float32), n_voxels, axis=0
        )
        if self.linear is not None and self.rf_jacobian is not None:
            prediction, jvp = self._closed_form_jacobian(theta, n_voxels)
        elif self.linear is not None:
            stimulus, rf, baseline = self.linear
            with tf.autodiff.ForwardAccumulator(tiled, tangents) as accumulator:
                fields = rf(tiled)
                offsets = baseline(tiled)
            stacked = tf.concat([fields[:, :n_voxels], accumulator.jvp(fields)], axis=1)
            product = tf.matmul(stimulus, stacked)
            prediction = product[:, :n_voxels] + offsets[None, :n_voxels]
            jvp = product[:, n_voxels:] + accumulator.jvp(offsets)[None, :]
        else:
            with tf.autodiff.ForwardAccumulator(tiled, tangents) as accumulator:
                prediction = self.predict(tiled)
            jvp = accumulator.jvp(prediction)
            prediction = prediction[:, :n_voxels]
        n_timepoints = tf.shape(jvp)[0]
        prediction = self._project(prediction)
        jacobian = self._project(jvp)
        jacobian = tf.reshape(jacobian, [n_timepoints, n_free, n_voxels])
        return prediction, jacobian

    def _closed_form_jacobian(self, theta, n_voxels):
        """Prediction and Jacobian from the model's closed-form RF derivatives.

        One matrix product of the stimulus with the stacked non-zero derivative fields.
        For models ``rf = amplitude · unit`` with a free amplitude, the amplitude block
        (``unit``) also gives the prediction, so no separate block is needed.
        """
        stimulus, _, baseline = self.linear
        fields, derivatives = self.rf_jacobian(theta)
        columns = list(self.free_columns)
        reuse = self.amplitude_column in columns and derivatives[self.amplitude_column] is not None
        blocks = [] if reuse else [fields]
        block_of = {}
        for column in columns:
            if derivatives[column] is not None:
                block_of[column] = len(blocks)
                blocks.append(derivatives[column])
        product = tf.matmul(stimulus, tf.concat(blocks, axis=1))
        n_timepoints = tf.shape(product)[0]
        product = tf.reshape(product, [n_timepoints, len(blocks), n_voxels])
        if reuse:
            amplitude = theta[:, self.amplitude_column]
            prediction = product[:, block_of[self.amplitude_column]] * amplitude[None, :]
        else:
            prediction = product[:, 0]
        prediction = prediction + baseline(theta)[None, :]
        zeros = tf.zeros([n_timepoints, n_voxels])
        ones = tf.ones([n_timepoints, n_voxels])
        jacobian = []
        for column in columns:
            if column in block_of:
                jacobian.append(product[:, block_of[column]])
            else:
                jacobian.append(ones if column == self.baseline_column else zeros)
        return prediction, tf.reshape(tf.stack(jacobian, axis=1), [n_timepoints, -1])

    def _solve(self, hessian, gradient, lam):
        """Damped normal equations, batched: (H + λ·diag(H) + εI) δ = g."""
        diagonal = tf.linalg.diag_part(hessian)
        scale = tf.reduce_mean(diagonal, axis=-1, keepdims=True) + 1e-12
        damped = hessian + tf.linalg.diag(lam[:, None] * diagonal + 1e-6 * scale)
        chol = tf.linalg.cholesky(damped)
        step = tf.linalg.cholesky_solve(chol, gradient[..., None])[..., 0]
        ok = tf.reduce_all(tf.math.is_finite(step), axis=-1)
        return tf.where(ok[:, None], step, tf.zeros_like(step))

    def _iteration(self, y, theta, sse, lam, shared):
        """One LM iteration for every voxel in the batch.

        With ``shared`` True the free columns hold one value shared by all voxels: the
        normal equations are summed over voxels and one step with one λ is taken.
        """
        prediction, jacobian = self._jacobian(theta)
        residual = y - prediction
        gradient = tf.einsum("tnv,tv->vn", jacobian, residual)
        hessian = tf.einsum("tnv,tmv->vnm", jacobian, jacobian)
        if shared:
            gradient = tf.reduce_sum(gradient, axis=0, keepdims=True)
            hessian = tf.reduce_sum(hessian, axis=0, keepdims=True)
            step = self._solve(hessian, gradient, lam[:1])
            step = tf.broadcast_to(step, [tf.shape(theta)[0], step.shape[1]])
        else:
            step = self._solve(hessian, gradient, lam)
        n_parameters = theta.shape[1]
        update = tf.matmul(step, tf.one_hot(self.free_columns, n_parameters, dtype=tf.float32))
        trial = tf.clip_by_value(theta + update, self.lower, self.upper)
        trial_sse = self._sse(y, trial)
        finite = tf.math.is_finite(trial_sse)
        if shared:
            accept = tf.fill(tf.shape(sse), tf.reduce_sum(trial_sse) < tf.reduce_sum(sse))
            accept = tf.logical_and(accept, tf.reduce_all(finite))
        else:
            accept = tf.logical_and(finite, trial_sse < sse)
        new_theta = tf.where(accept[:, None], trial, theta)
        new_sse = tf.where(accept, trial_sse, sse)
        new_lam = tf.where(accept, tf.maximum(lam / 10.0, 1e-7), lam * 10.0)
        return new_theta, new_sse, new_lam, accept

    def initial_state(self, y, theta):
        """Evaluate the starting point."""
        sse = self._evaluate(tf.constant(y, tf.float32), tf.constant(theta, tf.float32)).numpy()
        n_voxels = len(theta)
        return LMState(
            theta=np.asarray(theta, np.float32).copy(),
            sse=sse,
            lam=np.full(n_voxels, LAMBDA_INIT, np.float32),
            converged=np.zeros(n_voxels, bool),
            frozen=~np.isfinite(sse),
        )

    def iterate(self, y, state, sst, r2_atol, shared=False):
        """Run one iteration on the voxels that are still active; update ``state``.

        Parameters
        ----------
        y : ndarray, shape (T, V)
            Data (confound-projected).
        state : LMState
            State of all voxels, updated in place.
        sst : ndarray, shape (V,)
            Total sum of squares per voxel (for the R² convergence criterion).
        r2_atol : float
            A voxel converges when an accepted step gains less than this in R², or when
            its damping exceeds 1e7 (no step lowers its loss).
        shared : bool, default False
            Step the shared columns (all voxels together).

        Returns
        -------
        int
            Number of voxels iterated.
        """
        active = np.flatnonzero(~state.converged & ~state.frozen)
        if shared:
            active = np.flatnonzero(~state.frozen)
        if active.size == 0:
            return 0
        iterate = self._iterate_shared if shared else self._iterate_voxels
        theta, sse, lam, accept = iterate(
            tf.constant(y[:, active]), tf.constant(state.theta[active]),
            tf.constant(state.sse[active], tf.float32), tf.constant(state.lam[active]),
        )
        theta, sse, lam, accept = theta.numpy(), sse.numpy(), lam.numpy(), accept.numpy()
        gain = (state.sse[active] - sse) / np.maximum(sst[active], 1e-30)
        state.theta[active] = theta
        state.sse[active] = sse
        state.lam[active] = lam
        if not shared:
            done = (accept & (gain < r2_atol)) | (lam > LAMBDA_MAX)
            state.converged[active[done]] = True
        return active.size
