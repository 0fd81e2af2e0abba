"""Compiled gradient-descent loop over one masked variable (Adam by default).

The variable holds only the free entries: per-voxel free parameters, one value per shared
parameter and, with the Gaussian noise model, one log-variance per voxel. Fixed entries
stay at their initial (unbounded) values. Many steps run inside one ``tf.function`` call
(a ``tf.while_loop``); the host only sees each call's summary, every ``steps_per_call``
steps.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf


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
        theta = self.model._transform_forward(self.unbounded(vector))
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


class CompiledLoop:
    """Run ``n_steps`` optimiser steps per call, tracking each voxel's best R².

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

    def __init__(self, problem, optimizer, y, sst):
        self.problem = problem
        self.optimizer = optimizer
        self.y = tf.constant(y, tf.float32)
        self.sst = tf.constant(np.maximum(sst, 1e-30), tf.float32)
        self.variable = tf.Variable(problem.initial_vector, name="free_parameters")
        self.optimizer.build([self.variable])
        n_voxels = problem.n_voxels
        self.active = tf.Variable(tf.ones(n_voxels, tf.bool), trainable=False)
        self.best_r2 = tf.Variable(tf.fill([n_voxels], -np.inf), trainable=False)
        self.best_vector = tf.Variable(problem.initial_vector, trainable=False)
        self._voxel_of_entry = tf.constant(self._entry_voxels())
        # A partial, not the bound method: its own retracing statistics per loop.
        self._run = tf.function(functools.partial(self._steps))

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

    def _step(self):
        with tf.GradientTape() as tape:
            loss, sse = self.problem.loss(self.variable, self.y, self.active)
        gradient = tape.gradient(loss, self.variable)
        finite_voxel = tf.math.is_finite(sse)
        self.active.assign(tf.logical_and(self.active, finite_voxel))
        entry_ok = tf.logical_and(self._entry_mask(self.active), tf.math.is_finite(gradient))
        gradient = tf.where(entry_ok, gradient, tf.zeros_like(gradient))
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
        self.optimizer.apply_gradients([(gradient, self.variable)])
        active_r2 = tf.boolean_mask(r2, self.active)
        return loss, tf.reduce_mean(active_r2)

    def _steps(self, n_steps):
        costs = tf.TensorArray(tf.float32, size=n_steps)
        mean_r2 = tf.TensorArray(tf.float32, size=n_steps)
        best = tf.TensorArray(tf.float32, size=n_steps)
        for i in tf.range(n_steps):
            loss, r2 = self._step()
            costs = costs.write(i, loss)
            mean_r2 = mean_r2.write(i, r2)
            best = best.write(i, tf.reduce_mean(tf.boolean_mask(self.best_r2, self.active)))
        return costs.stack(), mean_r2.stack(), best.stack()

    def run(self, n_steps):
        """Run ``n_steps`` steps; return per-step cost, mean R² and mean best R² (numpy)."""
        costs, mean_r2, best = self._run(tf.constant(n_steps, tf.int32))
        return costs.numpy(), mean_r2.numpy(), best.numpy()

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
