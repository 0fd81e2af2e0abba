"""Population receptive-field models over a one-dimensional stimulus."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..stimuli import (
    CircularStimulus,
    OneDimensionalStimulus,
    PositiveStimulus,
    StimulusWithAmplitude,
)
from ..utils.math import Softplus
from .base import EncodingModel, HRFEncodingModel
from .registry import register_model

__all__ = [
    "GaussianPRF",
    "GaussianPRFWithHRF",
    "VonMisesPRF",
    "LogGaussianPRF",
    "LogGaussianPRFWithHRF",
]


class _PRF1D(EncodingModel):
    """Shared parts of the 1D tuning models: ``baseline + amplitude · f(x; θ)``.

    With ``model_stimulus_amplitude``, the paradigm's second column ``a`` scales the
    stimulus-driven part: ``baseline + amplitude · a · f(x; θ)``.
    """

    linear_in_amplitude = True

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, omega=None,
        verbosity=20, model_stimulus_amplitude=False,
    ):
        if not isinstance(model_stimulus_amplitude, bool | np.bool_):
            raise TypeError(
                f"model_stimulus_amplitude must be True or False, got {model_stimulus_amplitude!r}"
            )
        self.model_stimulus_amplitude = bool(model_stimulus_amplitude)
        base = self._make_stimulus()
        self.stimulus = StimulusWithAmplitude(base) if self.model_stimulus_amplitude else base
        super().__init__(paradigm, data, parameters, weights, omega, verbosity)

    def _tuning(self, x, parameters):
        raise NotImplementedError

    def _neural(self, paradigm, parameters):
        amplitude = parameters[:, self.parameter_labels.index("amplitude")]
        response = self._tuning(paradigm[:, :1], parameters) * amplitude[tf.newaxis, :]
        if self.model_stimulus_amplitude:
            response = response * paradigm[:, 1:2]
        return response

    def get_config(self):
        """Return the specification; ``model_stimulus_amplitude`` is recorded only when set.

        Returns
        -------
        dict
            What :func:`~braincoder.models.serialization.model_from_config` rebuilds the
            model from.
        """
        extra = {"model_stimulus_amplitude": True} if self.model_stimulus_amplitude else {}
        return {**super().get_config(), **extra}


class _HRF1D(HRFEncodingModel):
    """HRF mixin of the 1D models, whose constructor also takes the amplitude option."""

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, hrf_model=None,
        omega=None, verbosity=20, model_stimulus_amplitude=False, flexible_hrf_parameters=None,
    ):
        super().__init__(
            paradigm, data, parameters, weights, hrf_model=hrf_model, omega=omega,
            verbosity=verbosity, model_stimulus_amplitude=model_stimulus_amplitude,
            flexible_hrf_parameters=flexible_hrf_parameters,
        )


@register_model("gaussian_prf")
class GaussianPRF(_PRF1D):
    """Gaussian tuning to a scalar stimulus (e.g. numerosity on a linear scale).

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. The paradigm has one column.
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.

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
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.

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
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.

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
class GaussianPRFWithHRF(_HRF1D, GaussianPRF):
    """:class:`GaussianPRF` whose response is convolved with an HRF.

    Parameters
    ----------
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF; with ``unique_hrfs=True`` the labels gain ``hrf_delay``, ``hrf_dispersion``.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.

    Notes
    -----
    The baseline is added after convolution: ``b + A · (h * f)(t)``.
    """


@register_model("log_gaussian_prf_hrf")
class LogGaussianPRFWithHRF(_HRF1D, LogGaussianPRF):
    """:class:`LogGaussianPRF` whose response is convolved with an HRF.

    Parameters
    ----------
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    model_stimulus_amplitude, flexible_hrf_parameters : optional
        As in :class:`GaussianPRFWithHRF`: the stimulus-strength column, and per-voxel
        (True) or shared (False) HRF parameters.
    """
