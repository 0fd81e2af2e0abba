"""Neural responses of isotropic 2D Gaussian pRFs through a separable factorisation.

On a product pixel grid an isotropic Gaussian factorises, ``G(p) = g_a(a_p) · g_b(b_p)``
along the grid's two axes, and each stimulus frame ``S_t`` (an ``n_a × n_b`` image) has a
small exact rank (a bar: a few components): ``S_t = Σ_r u_tr v_trᵀ``. Then

``Σ_p S_t(p) G(p) = Σ_r (u_tr · g_a)(v_tr · g_b)``,

and the derivatives with respect to the centre and the width only swap ``g_a`` or ``g_b``
for their derivatives. The cost per voxel falls from ``T · n_pixels`` per derivative field
to ``R · (n_a + n_b)`` for all of them (``R`` the total number of frame components), and
no ``n_pixels × n_voxels`` field is ever formed.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _product_grid(coordinates):
    """``(outer, inner, outer_is_x)`` axes if the pixels form a C-ordered product grid."""
    values = np.asarray(coordinates, np.float64)
    for outer_column in (0, 1):
        outer = np.unique(values[:, outer_column])
        inner_column = 1 - outer_column
        if outer.size < 2 or len(values) % outer.size:
            continue
        shape = (outer.size, len(values) // outer.size)
        a = values[:, outer_column].reshape(shape)
        b = values[:, inner_column].reshape(shape)
        if np.all(a == a[:, :1]) and np.all(b == b[:1, :]):
            return a[:, 0], b[0], outer_column == 0
    return None


def separable_gaussian(model, paradigm, max_fraction=0.5):
    """Return a :class:`SeparableGaussian` for ``model`` and ``paradigm`` (None: not applicable).

    Applicable to models whose receptive field is :class:`~braincoder.models.GaussianPRF2D`'s
    (isotropic Gaussian times ``rf_norm_tensor(sd)`` times the amplitude; see
    ``model.capabilities.isotropic_gaussian_rf``) on a product grid, when the factorised
    stimulus costs less than ``max_fraction`` of the full one.
    """
    if not model.capabilities.isotropic_gaussian_rf:
        return None
    grid = _product_grid(model.grid_coordinates[["x", "y"]].to_numpy())
    if grid is None:
        return None
    outer, inner, outer_is_x = grid
    frames = np.asarray(paradigm, np.float64).reshape(-1, outer.size, inner.size)
    left, right, segments = [], [], []
    for number, frame in enumerate(frames):
        if not frame.any():
            continue
        u, singular, vt = np.linalg.svd(frame, full_matrices=False)
        keep = singular > singular[0] * 1e-6
        left.append(u[:, keep] * singular[keep])
        right.append(vt[keep])
        segments.extend([number] * int(keep.sum()))
    n_components = len(segments)
    if n_components * (outer.size + inner.size) > max_fraction * frames[0].size * len(frames):
        return None
    return SeparableGaussian(model, outer, inner, outer_is_x, left, right, segments, len(frames))


class SeparableGaussian:
    """Neural response ``S · rf(theta)`` of isotropic Gaussians and its derivatives.

    Built by :func:`separable_gaussian`. Parameter columns: ``x`` 0, ``y`` 1, ``sd`` 2,
    ``amplitude`` 4 (:class:`~braincoder.models.GaussianPRF2D`'s order).
    """

    def __init__(self, model, outer, inner, outer_is_x, left, right, segments, n_frames):
        self.model = model
        self.outer = tf.constant(outer[:, None], tf.float32)
        self.inner = tf.constant(inner[:, None], tf.float32)
        self.outer_is_x = outer_is_x
        n_outer, n_inner = len(outer), len(inner)
        self.left = tf.constant(np.concatenate(left, axis=1).T if left
                                else np.zeros((0, n_outer)), tf.float32)  # (R, n_outer)
        self.right = tf.constant(np.concatenate(right, axis=0) if right
                                 else np.zeros((0, n_inner)), tf.float32)  # (R, n_inner)
        self.segments = tf.constant(np.asarray(segments, np.int32))
        self.n_frames = int(n_frames)

    def _frames(self, products):
        """Sum the components of each frame: (R, n) -> (T, n)."""
        return tf.math.unsorted_segment_sum(products, self.segments, self.n_frames)

    def _factors(self, theta):
        x, y, sd = theta[:, 0], theta[:, 1], theta[:, 2]
        centre_outer, centre_inner = (x, y) if self.outer_is_x else (y, x)
        variance = tf.square(sd)[None, :]
        d_outer = self.outer - centre_outer[None, :]
        d_inner = self.inner - centre_inner[None, :]
        g_outer = tf.exp(-tf.square(d_outer) / (2.0 * variance))
        g_inner = tf.exp(-tf.square(d_inner) / (2.0 * variance))
        return sd, variance, d_outer, d_inner, g_outer, g_inner

    def neural(self, theta):
        """Neural response (T, V) without baseline."""
        sd, _, _, _, g_outer, g_inner = self._factors(theta)
        products = tf.matmul(self.left, g_outer) * tf.matmul(self.right, g_inner)
        scale = self.model.rf_norm_tensor(sd) * theta[:, 4]
        return self._frames(products) * scale[None, :]

    def jacobian(self, theta, columns):
        """Neural response (T, V) and its derivatives along ``columns`` (T, n · V).

        ``columns`` may hold 0 (x), 1 (y), 2 (sd) and 4 (amplitude); other columns have a
        zero derivative.
        """
        n_voxels = tf.shape(theta)[0]
        sd, variance, d_outer, d_inner, g_outer, g_inner = self._factors(theta)
        sigma3 = variance * sd[None, :]
        outer_stack = tf.concat([g_outer, g_outer * d_outer / variance,
                                 g_outer * tf.square(d_outer) / sigma3], axis=1)
        inner_stack = tf.concat([g_inner, g_inner * d_inner / variance,
                                 g_inner * tf.square(d_inner) / sigma3], axis=1)
        a = tf.matmul(self.left, outer_stack)
        b = tf.matmul(self.right, inner_stack)

        def part(values, k):
            return values[:, k * n_voxels:(k + 1) * n_voxels]

        base = part(a, 0) * part(b, 0)
        d_outer_centre = part(a, 1) * part(b, 0)
        d_inner_centre = part(a, 0) * part(b, 1)
        d_width = part(a, 2) * part(b, 0) + part(a, 0) * part(b, 2)
        summed = self._frames(tf.concat([base, d_outer_centre, d_inner_centre, d_width],
                                        axis=1))
        unit_g, dg_outer, dg_inner, dg_width = (part(summed, k) for k in range(4))
        with tf.autodiff.ForwardAccumulator(sd, tf.ones_like(sd)) as accumulator:
            norm = self.model.rf_norm_tensor(sd)
        d_norm = accumulator.jvp(norm, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        amplitude = theta[:, 4][None, :]
        unit = unit_g * norm[None, :]
        gain = amplitude * norm[None, :]
        dx, dy = (dg_outer, dg_inner) if self.outer_is_x else (dg_inner, dg_outer)
        derivatives = {0: gain * dx, 1: gain * dy,
                       2: amplitude * (d_norm[None, :] * unit_g + norm[None, :] * dg_width),
                       4: unit}
        zeros = tf.zeros_like(unit)
        blocks = [derivatives.get(column, zeros) for column in columns]
        neural = unit * amplitude
        return neural, (tf.concat(blocks, axis=1) if blocks else None)


class SharedHRFJacobian:
    """Prediction ``H · n(theta) + baseline`` and Jacobian, ``n`` from a separable Gaussian.

    Parameters
    ----------
    separable : SeparableGaussian
        The neural response.
    convolution : tensor, shape (T, T), or None
        Causal convolution matrix of the shared HRF (None: no HRF).
    free_columns : sequence of int
        Differentiated columns.
    baseline_column : int or None
        Column of the additive baseline.
    """

    def __init__(self, separable, convolution, free_columns, baseline_column):
        self.separable = separable
        self.convolution = convolution
        self.free_columns = [int(c) for c in free_columns]
        self.baseline_column = baseline_column
        self.neural_columns = [c for c in self.free_columns if c != baseline_column]

    def _convolve(self, values):
        return values if self.convolution is None else tf.matmul(self.convolution, values)

    def _offset(self, theta):
        if self.baseline_column is None:
            return 0.0
        return theta[:, self.baseline_column][None, :]

    def predict(self, theta):
        """Prediction (T, V)."""
        return self._convolve(self.separable.neural(theta)) + self._offset(theta)

    def __call__(self, theta):
        """Prediction (T, V) and Jacobian (T, n_free · V)."""
        n_voxels = tf.shape(theta)[0]
        neural, blocks = self.separable.jacobian(theta, self.neural_columns)
        stacked = neural if blocks is None else tf.concat([neural, blocks], axis=1)
        convolved = self._convolve(stacked)
        prediction = convolved[:, :n_voxels] + self._offset(theta)
        n_timepoints = tf.shape(convolved)[0]
        jacobian = []
        for column in self.free_columns:
            if column == self.baseline_column:
                jacobian.append(tf.ones([n_timepoints, n_voxels]))
            else:
                k = 1 + self.neural_columns.index(column)
                jacobian.append(convolved[:, k * n_voxels:(k + 1) * n_voxels])
        return prediction, tf.concat(jacobian, axis=1)


def separable_provider(model, paradigm, free_columns):
    """Return a Jacobian provider through :class:`SeparableGaussian` (shared or no HRF)."""
    separable = separable_gaussian(model, paradigm)
    if separable is None:
        return None
    hrf_model = model.hrf_model
    convolution = None
    if hrf_model is not None:
        # The HRF as a T × T operator, whatever its kernel sampling: convolve the identity.
        n_timepoints = int(paradigm.shape[0])
        convolution = hrf_model.convolve(tf.eye(n_timepoints))
    labels = model.get_parameter_labels()
    baseline = labels.index("baseline") if "baseline" in labels else None
    return SharedHRFJacobian(separable, convolution, free_columns, baseline)
