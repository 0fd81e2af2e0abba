"""Bayesian dense layer with Flipout weight perturbations (see :mod:`braincoder.layers`)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["DenseFlipout", "scale_kl_divergence"]


@keras.saving.register_keras_serializable(package="braincoder")
class DenseFlipout(keras.layers.Layer):
    """Dense layer with a factorised Gaussian posterior over its kernel (Flipout sampling).

    The kernel has the posterior :math:`q(W) = \\prod_{ij} \\mathcal{N}(\\mu_{ij},
    \\sigma_{ij}^2)` with :math:`\\sigma = \\mathrm{softplus}(\\rho)` and the prior
    :math:`p(W) = \\prod_{ij} \\mathcal{N}(0, s^2)`; the bias is a point estimate. When
    sampling, the output for a batch :math:`X` is Flipout's (Wen et al., 2018)

    .. math::

        X \\mu + b + \\big((X \\circ S) (\\sigma \\circ E)\\big) \\circ R

    with one standard-normal :math:`E` shared by the batch and independent random signs
    :math:`S, R` per example, so that examples get decorrelated weight perturbations at the
    cost of one extra matrix product. Each call adds ``kl_weight`` times
    :math:`\\mathrm{KL}(q \\,\\|\\, p)` (closed form) to the layer's losses; training with
    it minimises the negative evidence lower bound. This replaces TensorFlow Probability's
    ``DenseFlipout`` (kernel posterior and prior as above, deterministic bias).

    Parameters
    ----------
    units : int
        Output features.
    activation : str or callable, optional
        Keras activation of the output.
    prior_scale : float, default 1.0
        Standard deviation :math:`s` of the zero-mean Gaussian prior of the kernel.
    posterior_scale_init : float, default 1e-3
        Initial posterior standard deviation :math:`\\sigma` of every kernel entry.
    kl_weight : float, optional
        Factor of the KL divergence in the losses. None lets
        :class:`braincoder.optimize.DeepFitter` set it to one over the number of training
        elements (samples × outputs), so that a per-element mean loss plus the KL term is the
        negative ELBO per element; 1.0 until then.
    seed : int, optional
        Seed of the kernel initialiser and of the Flipout noise.
    **kwargs
        Keras layer arguments.

    Raises
    ------
    ValueError
        For non-positive ``units``, ``prior_scale`` or ``posterior_scale_init``, or a
        negative ``kl_weight``.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.layers import DenseFlipout
    >>> layer = DenseFlipout(3, seed=0)
    >>> x = np.ones((2, 4), dtype="float32")
    >>> bool(np.allclose(layer(x), layer(x)))  # the posterior mean unless sampling
    True
    >>> bool(np.allclose(layer(x, sample=True), layer(x)))
    False
    """

    def __init__(self, units, activation=None, prior_scale=1.0, posterior_scale_init=1e-3,
                 kl_weight=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or int(units) != units or int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        for key, value in (("prior_scale", prior_scale),
                           ("posterior_scale_init", posterior_scale_init)):
            if not float(value) > 0 or not np.isfinite(float(value)):
                raise ValueError(f"{key} must be a positive number, got {value!r}")
        if kl_weight is not None and not float(kl_weight) >= 0:
            raise ValueError(f"kl_weight must be >= 0 or None, got {kl_weight!r}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.prior_scale = float(prior_scale)
        self.posterior_scale_init = float(posterior_scale_init)
        self.kl_weight = None if kl_weight is None else float(kl_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        """Create the posterior means and scales of the kernel, the bias and the KL factor.

        Parameters
        ----------
        input_shape : tuple
            (..., n_inputs).
        """
        shape = (int(input_shape[-1]), self.units)
        self.kernel_loc = self.add_weight(
            shape=shape, initializer=keras.initializers.GlorotUniform(seed=self.seed),
            name="kernel_loc",
        )
        rho = float(np.log(np.expm1(self.posterior_scale_init)))
        self.kernel_rho = self.add_weight(
            shape=shape, initializer=keras.initializers.Constant(rho), name="kernel_rho"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.kl_factor = self.add_weight(
            shape=(), trainable=False, name="kl_factor",
            initializer=keras.initializers.Constant(
                1.0 if self.kl_weight is None else self.kl_weight
            ),
        )
        self.built = True

    @property
    def kernel_scale(self):
        """Posterior standard deviations of the kernel, ``softplus(kernel_rho)``.

        Returns
        -------
        tensor, shape (n_inputs, units)
            Standard deviations.
        """
        return ops.softplus(self.kernel_rho)

    def kl_divergence(self):
        """Closed-form KL divergence of the kernel posterior from its prior.

        Returns
        -------
        tensor
            :math:`\\sum_{ij} \\log(s/\\sigma_{ij}) + (\\sigma_{ij}^2 + \\mu_{ij}^2)/(2 s^2)
            - 1/2`.
        """
        scale = self.kernel_scale
        prior = self.prior_scale
        return ops.sum(
            ops.log(prior / scale)
            + (ops.square(scale) + ops.square(self.kernel_loc)) / (2.0 * prior**2)
            - 0.5
        )

    def call(self, inputs, training=None, sample=None):
        """Apply the layer: posterior mean, or a Flipout sample of the kernel.

        Parameters
        ----------
        inputs : tensor, shape (batch, n_inputs)
            Inputs.
        training : bool, optional
            Training mode: samples the kernel unless ``sample`` says otherwise.
        sample : bool, optional
            Sample the kernel (default: as ``training``).

        Returns
        -------
        tensor, shape (batch, units)
            Outputs.
        """
        self.add_loss(self.kl_factor * self.kl_divergence())
        outputs = ops.matmul(inputs, self.kernel_loc) + self.bias
        sample = bool(training) if sample is None else bool(sample)
        if sample:
            batch = ops.shape(inputs)[0]
            sign_in = self._signs((batch, self.kernel_loc.shape[0]), inputs.dtype)
            sign_out = self._signs((batch, self.units), inputs.dtype)
            noise = keras.random.normal(self.kernel_loc.shape, seed=self.seed_generator)
            perturbation = ops.matmul(inputs * sign_in, self.kernel_scale * noise)
            outputs = outputs + perturbation * sign_out
        return self.activation(outputs)

    def _signs(self, shape, dtype):
        uniform = keras.random.uniform(shape, seed=self.seed_generator)
        return 2.0 * ops.cast(uniform < 0.5, dtype) - 1.0

    def compute_output_shape(self, input_shape):
        """Return (..., units).

        Parameters
        ----------
        input_shape : tuple
            Input shape.

        Returns
        -------
        tuple
            Output shape.
        """
        return (*input_shape[:-1], self.units)

    def get_config(self):
        """Return the layer configuration.

        Returns
        -------
        dict
            Constructor arguments plus the Keras layer arguments.
        """
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            prior_scale=self.prior_scale,
            posterior_scale_init=self.posterior_scale_init,
            kl_weight=self.kl_weight,
            seed=self.seed,
        )
        return config


def scale_kl_divergence(model, n_elements):
    """Set the KL factor of every :class:`DenseFlipout` with ``kl_weight=None`` in a model.

    Parameters
    ----------
    model : keras.Model
        A built model.
    n_elements : int
        Number of training elements the data term averages over (samples × outputs).

    Returns
    -------
    int
        Number of layers whose factor was set to ``1 / n_elements``.

    Raises
    ------
    ValueError
        If ``n_elements`` is not positive.
    """
    if not n_elements > 0:
        raise ValueError(f"n_elements must be positive, got {n_elements!r}")
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, DenseFlipout) and layer.kl_weight is None and layer.built:
            layer.kl_factor.assign(1.0 / float(n_elements))
            count += 1
    return count
