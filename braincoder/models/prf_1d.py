"""Population receptive-field models over a one-dimensional stimulus."""

from __future__ import annotations

import tensorflow as tf

from ..stimuli import CircularStimulus, OneDimensionalStimulus, PositiveStimulus
from ..utils.math import Softplus
from .base import EncodingModel, HRFConstructor
from .registry import register_model

__all__ = [
    "GaussianPRF",
    "GaussianPRFWithHRF",
    "VonMisesPRF",
    "LogGaussianPRF",
    "LogGaussianPRFWithHRF",
]


class _PRF1D(EncodingModel):
    """Shared parts of the 1D tuning models: ``baseline + amplitude · f(x; θ)``."""

    linear_in_amplitude = True

    def _tuning(self, x, parameters):
        raise NotImplementedError

    def _neural(self, paradigm, parameters):
        amplitude = parameters[:, self.parameter_labels.index("amplitude")]
        return self._tuning(paradigm[:, :1], parameters) * amplitude[tf.newaxis, :]


@register_model("gaussian_prf")
class GaussianPRF(_PRF1D):
    """Gaussian tuning to a scalar stimulus (e.g. numerosity on a linear scale).

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. The paradigm has one column.

    Notes
    -----
    Parameter labels ``mu, sd, amplitude, baseline``; ``sd`` is optimised through a
    softplus.

    .. math:: \\hat y_t = b + A \\exp\\left(-\\frac{(x_t - \\mu)^2}{2\\sigma^2}\\right)

    Examples
    --------
    >>> from braincoder.models import GaussianPRF
    >>> model = GaussianPRF()
    >>> prediction = model.predict(paradigm=[0.0, 1.0], parameters=[[0.0, 1.0, 2.0, 1.0]])
    >>> prediction.iloc[:, 0].astype(float).round(4).tolist()
    [3.0, 2.2131]
    """

    parameter_labels = ["mu", "sd", "amplitude", "baseline"]
    parameter_transforms = {"sd": Softplus()}

    def _make_stimulus(self):
        return OneDimensionalStimulus()

    def _tuning(self, x, parameters):
        mu = parameters[:, 0][tf.newaxis, :]
        sd = parameters[:, 1][tf.newaxis, :]
        return tf.exp(-0.5 * tf.square((x - mu) / sd))


@register_model("von_mises_prf")
class VonMisesPRF(_PRF1D):
    """Von Mises tuning to a circular stimulus in radians (orientation, direction).

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. The paradigm has one column (radians).

    Notes
    -----
    Parameter labels ``mu, kappa, amplitude, baseline``; ``kappa`` (concentration) is
    optimised through a softplus. The tuning curve peaks at 1 (at ``mu``):

    .. math:: \\hat y_t = b + A \\exp\\left(\\kappa(\\cos(x_t - \\mu) - 1)\\right)
    """

    parameter_labels = ["mu", "kappa", "amplitude", "baseline"]
    parameter_transforms = {"kappa": Softplus()}

    def _make_stimulus(self):
        return CircularStimulus()

    def _tuning(self, x, parameters):
        mu = parameters[:, 0][tf.newaxis, :]
        kappa = parameters[:, 1][tf.newaxis, :]
        return tf.exp(kappa * (tf.cos(x - mu) - 1.0))


@register_model("log_gaussian_prf")
class LogGaussianPRF(_PRF1D):
    """Log-Gaussian tuning to a positive scalar stimulus (e.g. numerosity).

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. The paradigm has one column of positive values.

    Notes
    -----
    Parameter labels ``mu, sd, amplitude, baseline``; ``mu`` is the preferred stimulus (the
    mode of the tuning curve, natural units) and ``sd`` the width in natural-log units; both
    are optimised through softplus transforms.

    .. math:: \\hat y_t = b + A \\exp\\left(-\\frac{(\\ln x_t - \\ln \\mu)^2}{2\\sigma^2}\\right)
    """

    parameter_labels = ["mu", "sd", "amplitude", "baseline"]
    parameter_transforms = {"mu": Softplus(), "sd": Softplus()}

    def _make_stimulus(self):
        return PositiveStimulus()

    def _tuning(self, x, parameters):
        mu = parameters[:, 0][tf.newaxis, :]
        sd = parameters[:, 1][tf.newaxis, :]
        return tf.exp(-0.5 * tf.square((tf.math.log(x) - tf.math.log(mu)) / sd))


@register_model("gaussian_prf_hrf")
class GaussianPRFWithHRF(HRFConstructor, GaussianPRF):
    """:class:`GaussianPRF` whose response is convolved with an HRF.

    Parameters
    ----------
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF; with ``unique_hrfs=True`` the labels gain ``hrf_delay``, ``hrf_dispersion``.
    omega, verbosity : optional
        See :class:`EncodingModel`.

    Notes
    -----
    The baseline is added after convolution: ``b + A · (h * f)(t)``.
    """


@register_model("log_gaussian_prf_hrf")
class LogGaussianPRFWithHRF(HRFConstructor, LogGaussianPRF):
    """:class:`LogGaussianPRF` whose response is convolved with an HRF.

    Parameters
    ----------
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    """
