"""Predictions and Jacobians of a batch of voxels for the Levenberg–Marquardt solver.

Each provider maps natural parameters ``theta (V, P)`` to the prediction ``(T, V)`` and its
Jacobian with respect to the free columns, ``(T, n_free · V)`` (column blocks of V voxels in
free-column order), before any confound projection:

- :func:`forward_mode_jacobian`: any prediction function, one tiled forward-mode pass;
- :class:`LinearJacobian`: models ``stimulus @ rf(theta) + baseline`` with a shared HRF
  (the stimulus is pre-convolved), one stacked matrix product for the prediction and all
  derivatives, with the model's closed-form RF derivatives when it has them;
- :class:`PerVoxelHRFJacobian`: models with a per-voxel HRF. Convolution is linear, so the
  prediction is ``h(theta_hrf) * n(theta)`` (causal convolution of the neural response with
  each voxel's kernel): the neural response and its derivatives are computed once on the
  raw paradigm, and the HRF derivatives are the neural response convolved with the kernel's
  derivatives (:func:`~braincoder.hrf.hrf_kernel_jacobian`), all in one depthwise
  convolution.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..hrf import convolve_per_voxel, hrf_kernel_jacobian
from ._separable import separable_gaussian


def forward_mode_jacobian(function, theta, columns):
    """Value of ``function(theta)`` (T, V) and its derivatives along ``columns`` (T, n·V).

    One forward-mode pass over ``theta`` tiled ``len(columns)`` times, one tangent per copy.
    """
    n_voxels = tf.shape(theta)[0]
    tiled = tf.tile(theta, [len(columns), 1])
    tangents = tf.repeat(tf.one_hot(columns, theta.shape[1], dtype=tf.float32), n_voxels, axis=0)
    with tf.autodiff.ForwardAccumulator(tiled, tangents) as accumulator:
        value = function(tiled)
    return value[:, :n_voxels], accumulator.jvp(value)


class StimulusProduct:
    """``stimulus @ fields``, through a low-rank factorisation when the stimulus has one.

    Stimuli of pRF experiments repeat frames and sweep bars, so their rank is often well
    below the number of time points (the V1 example data: 97 of 150). ``S = L R`` with
    ``L`` (T, r) and ``R`` (r, n_pixels) from the singular value decomposition (singular
    values below ``1e-6`` of the largest dropped: below float32 resolution) then costs
    ``r / T`` of the full product.

    Parameters
    ----------
    stimulus : tensor or ndarray, shape (T, n_pixels)
        The stimulus.
    """

    def __init__(self, stimulus):
        values = np.asarray(stimulus, np.float64)
        self.stimulus = tf.constant(values, tf.float32)
        self.factors = None
        n_timepoints, n_pixels = values.shape
        if n_pixels > n_timepoints:
            u, singular, vt = np.linalg.svd(values, full_matrices=False)
            rank = int((singular > singular[0] * 1e-6).sum()) if singular[0] > 0 else 0
            if 0 < rank < 0.85 * n_timepoints:
                self.factors = (tf.constant(u[:, :rank] * singular[:rank], tf.float32),
                                tf.constant(vt[:rank], tf.float32))

    def __call__(self, fields):
        """Return ``stimulus @ fields`` (T, n_columns)."""
        if self.factors is None:
            return tf.matmul(self.stimulus, fields)
        left, right = self.factors
        return tf.matmul(left, tf.matmul(right, fields))


class LinearJacobian:
    """Prediction and Jacobian of ``stimulus @ rf(theta) + baseline(theta)``.

    Parameters
    ----------
    linear : tuple (stimulus, rf, baseline)
        The (HRF-convolved) stimulus tensor (T, n_pixels) and the two tensor functions.
    free_columns : sequence of int
        Differentiated columns.
    rf_jacobian : callable, optional
        Closed-form ``theta -> (rf, [d rf / d theta_k or None])``.
    baseline_column, amplitude_column : int, optional
        Columns of the additive baseline and of an amplitude multiplying the whole field
        (with ``rf_jacobian``).
    """

    def __init__(self, linear, free_columns, rf_jacobian=None, baseline_column=None,
                 amplitude_column=None):
        stimulus, self.rf, self.baseline = linear
        self.stimulus = StimulusProduct(stimulus)
        self.free_columns = [int(c) for c in free_columns]
        self.rf_jacobian = rf_jacobian
        self.baseline_column = baseline_column
        self.amplitude_column = amplitude_column

    def predict(self, theta):
        """Prediction (T, V)."""
        return self.stimulus(self.rf(theta)) + self.baseline(theta)[None, :]

    def __call__(self, theta):
        """Prediction (T, V) and Jacobian (T, n_free · V)."""
        n_voxels = tf.shape(theta)[0]
        if self.rf_jacobian is not None:
            return self._closed_form(theta, n_voxels)
        tiled = tf.tile(theta, [len(self.free_columns), 1])
        tangents = tf.repeat(tf.one_hot(self.free_columns, theta.shape[1], dtype=tf.float32),
                             n_voxels, axis=0)
        with tf.autodiff.ForwardAccumulator(tiled, tangents) as accumulator:
            fields = self.rf(tiled)
            offsets = self.baseline(tiled)
        stacked = tf.concat([fields[:, :n_voxels], accumulator.jvp(fields)], axis=1)
        product = self.stimulus(stacked)
        prediction = product[:, :n_voxels] + offsets[None, :n_voxels]
        return prediction, product[:, n_voxels:] + accumulator.jvp(offsets)[None, :]

    def _closed_form(self, theta, n_voxels):
        """One matrix product of the stimulus with the stacked non-zero derivative fields.

        For models ``rf = amplitude · unit`` with a free amplitude, the amplitude block
        (``unit``) also gives the prediction, so no separate block is needed.
        """
        fields, derivatives = self.rf_jacobian(theta)
        columns = self.free_columns
        reuse = self.amplitude_column in columns and derivatives[self.amplitude_column] is not None
        blocks = [] if reuse else [fields]
        block_of = {}
        for column in columns:
            if derivatives[column] is not None:
                block_of[column] = len(blocks)
                blocks.append(derivatives[column])
        product = self.stimulus(tf.concat(blocks, axis=1))
        n_timepoints = tf.shape(product)[0]
        product = tf.reshape(product, [n_timepoints, len(blocks), n_voxels])
        if reuse:
            amplitude = theta[:, self.amplitude_column]
            prediction = product[:, block_of[self.amplitude_column]] * amplitude[None, :]
        else:
            prediction = product[:, 0]
        prediction = prediction + self.baseline(theta)[None, :]
        zeros = tf.zeros([n_timepoints, n_voxels])
        ones = tf.ones([n_timepoints, n_voxels])
        jacobian = []
        for column in columns:
            if column in block_of:
                jacobian.append(product[:, block_of[column]])
            else:
                jacobian.append(ones if column == self.baseline_column else zeros)
        return prediction, tf.reshape(tf.stack(jacobian, axis=1), [n_timepoints, -1])


class PerVoxelHRFJacobian:
    """Prediction and Jacobian of a model whose voxels each have their own HRF.

    The prediction is ``conv(n(theta), h(theta_hrf)) + baseline`` with the neural response
    ``n`` (T, V) computed on the raw paradigm (``paradigm @ rf`` for models linear in the
    paradigm) and ``h`` each voxel's kernel. Derivatives: ``conv(dn/dθ_k, h)`` for the
    neural parameters, 1 for the baseline and ``conv(n, dh/dθ_hrf)`` for the HRF
    parameters; every convolution of one call is a single depthwise convolution (the kernel
    is short, so this costs far less than the spatial product).

    Parameters
    ----------
    model : HRFEncodingModel
        Model with ``hrf_model.unique_hrfs`` True (HRF parameters are its last columns).
    paradigm : tensor, shape (T, n_dimensions)
        Raw (not convolved) paradigm.
    free_columns : sequence of int
        Differentiated columns.
    """

    def __init__(self, model, paradigm, free_columns):
        self.model = model
        self.hrf_model = model.hrf_model
        self.paradigm = tf.convert_to_tensor(paradigm, tf.float32)
        self.linear = bool(model.linear_in_paradigm)
        self.product = StimulusProduct(paradigm) if self.linear else None
        labels = model.get_parameter_labels()
        self.n_parameters = len(labels)
        n_hrf = len(self.hrf_model.parameter_labels)
        self.hrf_columns = list(range(len(labels) - n_hrf, len(labels)))
        self.baseline_column = labels.index("baseline") if "baseline" in labels else None
        self.free_columns = [int(c) for c in free_columns]
        self.neural_columns = [c for c in self.free_columns
                               if c not in self.hrf_columns and c != self.baseline_column]
        self.free_hrf = [c - self.hrf_columns[0] for c in self.free_columns
                         if c in self.hrf_columns]
        self.separable = separable_gaussian(model, paradigm)
        self.rf_jacobian = (model.receptive_field_jacobian
                            if model.capabilities.closed_form_jacobian else None)

    def _neural(self, theta):
        if self.separable is not None:
            return self.separable.neural(theta)
        if self.linear:
            return self.product(self.model.receptive_field_tensor(theta))
        return self.model.neural_tensor(self.paradigm, theta)

    def _offset(self, theta):
        baseline = self.model.baseline_tensor(theta)
        return 0.0 if baseline is None else baseline[None, :]

    def predict(self, theta):
        """Prediction (T, V)."""
        kernels = self.hrf_model.get_hrf(theta[:, self.hrf_columns[0]:])
        return convolve_per_voxel(self._neural(theta), kernels) + self._offset(theta)

    def _neural_jacobian(self, theta, n_voxels):
        """Neural response (T, V) and its derivatives along the neural columns (T, n·V)."""
        columns = self.neural_columns
        if not columns:
            return self._neural(theta), None
        if self.separable is not None:
            return self.separable.jacobian(theta, columns)
        if self.rf_jacobian is None:
            return forward_mode_jacobian(self._neural, theta, columns)
        fields, derivatives = self.rf_jacobian(theta)
        blocks = [fields]
        zero = []
        for column in columns:
            if derivatives[column] is None:
                zero.append(column)
            else:
                blocks.append(derivatives[column])
        product = self.product(tf.concat(blocks, axis=1))
        n_timepoints = tf.shape(product)[0]
        parts, index = [], 1
        for column in columns:
            if column in zero:
                parts.append(tf.zeros([n_timepoints, n_voxels]))
            else:
                parts.append(product[:, index * n_voxels:(index + 1) * n_voxels])
                index += 1
        return product[:, :n_voxels], tf.concat(parts, axis=1)

    def __call__(self, theta):
        """Prediction (T, V) and Jacobian (T, n_free · V)."""
        n_voxels = tf.shape(theta)[0]
        neural, neural_derivatives = self._neural_jacobian(theta, n_voxels)
        kernels, kernel_derivatives = hrf_kernel_jacobian(
            self.hrf_model, theta[:, self.hrf_columns[0]:], self.free_hrf)
        n_neural = len(self.neural_columns)
        signals = [neural]
        filters = [kernels]
        if n_neural:
            signals.append(neural_derivatives)
            filters.append(tf.tile(kernels, [1, n_neural]))
        for derivative in kernel_derivatives:
            signals.append(neural)
            filters.append(derivative)
        convolved = convolve_per_voxel(tf.concat(signals, axis=1), tf.concat(filters, axis=1))
        n_timepoints = tf.shape(convolved)[0]
        prediction = convolved[:, :n_voxels] + self._offset(theta)

        def block(number):
            return convolved[:, number * n_voxels:(number + 1) * n_voxels]

        jacobian = []
        for column in self.free_columns:
            if column in self.neural_columns:
                jacobian.append(block(1 + self.neural_columns.index(column)))
            elif column == self.baseline_column:
                jacobian.append(tf.ones([n_timepoints, n_voxels]))
            else:
                position = self.free_hrf.index(column - self.hrf_columns[0])
                jacobian.append(block(1 + n_neural + position))
        return prediction, tf.concat(jacobian, axis=1)


def uses_per_voxel_hrf(model):
    """Return True for models whose HRF has per-voxel parameters."""
    return model.capabilities.per_voxel_hrf_parameters

