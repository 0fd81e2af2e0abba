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
        verbosity=20, model_stimulus_amplitude=False, hrf_model=None,
        flexible_hrf_parameters=None,
    ):
        if not isinstance(model_stimulus_amplitude, bool | np.bool_):
            raise TypeError(
                f"model_stimulus_amplitude must be True or False, got {model_stimulus_amplitude!r}"
            )
        self.model_stimulus_amplitude = bool(model_stimulus_amplitude)
        base = self._make_stimulus()
        self.stimulus = StimulusWithAmplitude(base) if self.model_stimulus_amplitude else base
        super().__init__(paradigm, data, parameters, weights, omega, verbosity,
                         hrf_model=hrf_model, flexible_hrf_parameters=flexible_hrf_parameters)

    def _stimulus_span(self, paradigm):
        """Lowest and highest stimulus value of the paradigm's first column, and the span."""
        values = self.get_paradigm(paradigm).iloc[:, 0].to_numpy(np.float64)
        low, high = float(values.min()), float(values.max())
        return low, high, max(high - low, 1e-6)

    def _tighten_bounds(self, clip, paradigm, data):
        if paradigm is None:
            return
        values = np.asarray(paradigm, dtype=np.float64)
        values = values[:, 0] if values.ndim == 2 else values
        peak = self._tuning_bounds(clip, values)
        if data is not None:
            array = np.asarray(data, dtype=np.float64)
            data_low, data_high = float(np.nanmin(array)), float(np.nanmax(array))
            data_range = max(data_high - data_low, 1e-6)
            clip("amplitude", -10.0 * data_range / peak, 10.0 * data_range / peak)
            clip("baseline", data_low - data_range, data_high + data_range)

    def _tuning_bounds(self, clip, values):
        """Clip the tuning curve's parameters; return the curve's smallest peak."""
        low, high = float(values.min()), float(values.max())
        span = max(high - low, 1e-6)
        clip("mu", low - span / 2.0, high + span / 2.0)
        clip("sd", 0.01 * span, 2.0 * span)
        return 1.0

    def _default_grid_values(self, paradigm, size, n_sd, sd_range):
        low, high, span = self._stimulus_span(paradigm)
        return {"mu": np.linspace(low, high, size),
                "sd": np.geomspace(*(sd_range or (span / 20, span / 2)), n_sd)}

    def _tuning(self, x, parameters):
        raise NotImplementedError

    def _neural(self, paradigm, parameters):
        amplitude = parameters[:, self.get_parameter_labels().index("amplitude")]
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
    """HRF mixin of the 1D models, whose constructor also takes the amplitude option.

    Further keyword arguments (``parameterisation`` of the log-Gaussian) go to the model.
    """

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, hrf_model=None,
        omega=None, verbosity=20, model_stimulus_amplitude=False, flexible_hrf_parameters=None,
        **options,
    ):
        super().__init__(
            paradigm, data, parameters, weights, hrf_model=hrf_model, omega=omega,
            verbosity=verbosity, model_stimulus_amplitude=model_stimulus_amplitude,
            flexible_hrf_parameters=flexible_hrf_parameters, **options,
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
    hrf_model : HRFModel, optional
        Convolve the response with this HRF (see :class:`EncodingModel`).
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters of ``hrf_model``.

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
        See :class:`EncodingModel`. The paradigm has one column, ``x (radians)``.
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.
    normalize_rf : bool, default True
        The tuning curve is the von Mises density (the public braincoder's convention);
        False gives the curve with peak 1 at ``mu``, ``exp(κ(cos(x − μ) − 1))``, whose
        ``amplitude`` is the response at the preferred angle. Recorded by
        :meth:`get_config`.
    hrf_model : HRFModel, optional
        Convolve the response with this HRF (see :class:`EncodingModel`).
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters of ``hrf_model``.

    Notes
    -----
    Parameter labels ``mu, kappa, amplitude, baseline``; ``kappa`` (concentration) is
    optimised through a softplus. By default

    .. math:: \\hat y_t = b + A \\frac{\\exp(\\kappa\\cos(x_t - \\mu))}{2\\pi I_0(\\kappa)}

    evaluated stably as :math:`\\exp(\\kappa(\\cos(x_t - \\mu) - 1)) / (2\\pi\\,
    e^{-\\kappa} I_0(\\kappa))`.

    Examples
    --------
    >>> from braincoder.models import VonMisesPRF
    >>> parameters = [[0.0, 1.0, 1.0, 0.0]]
    >>> round(float(VonMisesPRF().predict([0.0], parameters).iloc[0, 0]), 5)
    0.34171
    >>> float(VonMisesPRF(normalize_rf=False).predict([0.0], parameters).iloc[0, 0])
    1.0
    """

    parameter_labels = ["mu", "kappa", "amplitude", "baseline"]
    parameter_transforms = {"kappa": Softplus()}

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, omega=None,
        verbosity=20, model_stimulus_amplitude=False, normalize_rf=True, hrf_model=None,
        flexible_hrf_parameters=None,
    ):
        if not isinstance(normalize_rf, bool | np.bool_):
            raise TypeError(f"normalize_rf must be True or False, got {normalize_rf!r}")
        self.normalize_rf = bool(normalize_rf)
        super().__init__(paradigm, data, parameters, weights, omega, verbosity,
                         model_stimulus_amplitude, hrf_model=hrf_model,
                         flexible_hrf_parameters=flexible_hrf_parameters)

    def _make_stimulus(self):
        return CircularStimulus()

    def _tuning_bounds(self, clip, values):
        clip("kappa", 0.0, 100.0)
        # the smallest peak of the density (kappa -> 0)
        return 1.0 / (2.0 * np.pi) if self.normalize_rf else 1.0

    def _default_grid_values(self, paradigm, size, n_sd, sd_range):
        return {"mu": np.linspace(-np.pi, np.pi, size, endpoint=False),
                "kappa": np.geomspace(*(sd_range or (0.5, 10.0)), n_sd)}

    def _tuning(self, x, parameters):
        mu = parameters[:, 0][tf.newaxis, :]
        kappa = parameters[:, 1][tf.newaxis, :]
        curve = tf.exp(kappa * (tf.cos(x - mu) - 1.0))
        if self.normalize_rf:
            curve = curve / (2.0 * np.pi * tf.math.bessel_i0e(kappa))
        return curve

    def get_config(self):
        """Return the specification; ``normalize_rf`` is recorded only when False.

        Returns
        -------
        dict
            What :func:`~braincoder.models.serialization.model_from_config` rebuilds the
            model from.
        """
        extra = {} if self.normalize_rf else {"normalize_rf": False}
        return {**super().get_config(), **extra}


#: Parameterisations of :class:`LogGaussianPRF`: labels of the first two parameters.
LOG_GAUSSIAN_PARAMETERISATIONS = {
    "mu_sd_natural": ["mu", "sd"],
    "mode_fwhm_natural": ["mode", "fwhm"],
    "mode_sd_log": ["mu", "sd"],
}


@register_model("log_gaussian_prf")
class LogGaussianPRF(_PRF1D):
    """Log-Gaussian tuning to a non-negative scalar stimulus (e.g. numerosity).

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. The paradigm has one column of values >= 0 (at 0 the
        response is the baseline).
    model_stimulus_amplitude : bool, default False
        Add a second paradigm column, ``amplitude``, that multiplies the stimulus-driven
        response (stimulus strength or attentional gain); the stimulus space becomes
        :class:`~braincoder.stimuli.StimulusWithAmplitude` and decoding recovers both.
    parameterisation : {'mu_sd_natural', 'mode_fwhm_natural', 'mode_sd_log'}
        How the first two parameters describe the curve (default ``'mu_sd_natural'``, the
        public braincoder's). Recorded by :meth:`get_config`. See Notes.
    hrf_model : HRFModel, optional
        Convolve the response with this HRF (see :class:`EncodingModel`).
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters of ``hrf_model``.

    Notes
    -----
    Labels ``<first>, <second>, amplitude, baseline``; the first two are optimised
    through softplus transforms. Every curve has peak 1.

    * ``'mu_sd_natural'`` (``mu, sd``): the log-normal distribution with mean ``mu`` and
      standard deviation ``sd`` in natural units; the curve is the Gaussian of the log
      stimulus around the distribution's median :math:`\\mu / \\sqrt{1 + \\sigma^2/\\mu^2}`
      (where it peaks). With
      :math:`s^2 = \\ln(1 + \\sigma^2/\\mu^2)`:

      .. math:: \\hat y_t = b + A \\exp\\left(-\\frac{(\\ln x_t - \\ln \\mu +
          s^2/2)^2}{2 s^2}\\right)

    * ``'mode_fwhm_natural'`` (``mode, fwhm``): the log-normal density with mode ``mode``
      and full width at half maximum ``fwhm`` (natural units), divided by its value at the
      mode. With :math:`s = \\operatorname{asinh}(\\mathrm{fwhm} / (2\\,\\mathrm{mode})) /
      \\sqrt{2\\ln 2}`:

      .. math:: \\hat y_t = b + A \\frac{m}{x_t} \\exp\\left(\\frac{s^2}{2} -
          \\frac{(\\ln(x_t/m) - s^2)^2}{2 s^2}\\right)

    * ``'mode_sd_log'`` (``mu, sd``): ``mu`` is the preferred stimulus (the mode, natural
      units) and ``sd`` the width in natural-log units, a Gaussian on the log axis:

      .. math:: \\hat y_t = b + A \\exp\\left(-\\frac{(\\ln x_t - \\ln \\mu)^2}
          {2\\sigma^2}\\right)

    Examples
    --------
    >>> from braincoder.models import LogGaussianPRF
    >>> parameters = [[10.0, 5.0, 1.0, 0.0]]
    >>> round(float(LogGaussianPRF().predict([10.0], parameters).iloc[0, 0]), 5)
    0.97249
    >>> model = LogGaussianPRF(parameterisation="mode_sd_log")
    >>> float(model.predict([10.0], parameters=[[10.0, 0.5, 1.0, 0.0]]).iloc[0, 0])
    1.0
    """

    parameter_labels = ["mu", "sd", "amplitude", "baseline"]

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, omega=None,
        verbosity=20, model_stimulus_amplitude=False, parameterisation="mu_sd_natural",
        hrf_model=None, flexible_hrf_parameters=None,
    ):
        if parameterisation not in LOG_GAUSSIAN_PARAMETERISATIONS:
            raise ValueError(
                f"parameterisation must be one of {sorted(LOG_GAUSSIAN_PARAMETERISATIONS)}, "
                f"got {parameterisation!r}"
            )
        self.parameterisation = parameterisation
        first, second = LOG_GAUSSIAN_PARAMETERISATIONS[parameterisation]
        self.parameter_transforms = {first: Softplus(), second: Softplus()}
        super().__init__(paradigm, data, parameters, weights, omega, verbosity,
                         model_stimulus_amplitude, hrf_model=hrf_model,
                         flexible_hrf_parameters=flexible_hrf_parameters)

    def _model_parameter_labels(self):
        return [*LOG_GAUSSIAN_PARAMETERISATIONS[self.parameterisation], "amplitude",
                "baseline"]

    def _make_stimulus(self):
        return PositiveStimulus()

    def _tuning_bounds(self, clip, values):
        positive = values[values > 0]
        smallest = float(positive.min()) if positive.size else 1e-3
        largest = max(float(values.max()), smallest)
        first, second = self._model_parameter_labels()[:2]
        clip(first, smallest / 2.0, 2.0 * largest)
        if self.parameterisation == "mode_sd_log":
            clip(second, 0.01, max(2.0, 2.0 * np.log(largest / smallest)))
        else:
            clip(second, 0.01 * largest, 4.0 * largest)
        return 1.0

    def _default_grid_values(self, paradigm, size, n_sd, sd_range):
        low, high, span = self._stimulus_span(paradigm)
        low = max(low, 1e-3)  # stimulus 0 is allowed, a preferred value 0 is not
        first, second = self._model_parameter_labels()[:2]
        # width in log units ('mode_sd_log') or in natural units (the mean's SD, the FWHM)
        widths = ((0.1, 2.0) if self.parameterisation == "mode_sd_log"
                  else (max(span, low) / 20, max(span, low)))
        return {first: np.geomspace(low, max(high, 2 * low), size),
                second: np.geomspace(*(sd_range or widths), n_sd)}

    def _tuning(self, x, parameters):
        first = parameters[:, 0][tf.newaxis, :]
        second = parameters[:, 1][tf.newaxis, :]
        positive = x > 0
        log_x = tf.math.log(tf.where(positive, x, tf.ones_like(x)))
        if self.parameterisation == "mu_sd_natural":
            s2 = tf.math.log1p(tf.square(second / first))
            log_curve = -tf.square(log_x - tf.math.log(first) + 0.5 * s2) / (2.0 * s2)
        elif self.parameterisation == "mode_fwhm_natural":
            s2 = tf.square(tf.math.asinh(second / (2.0 * first))) / (2.0 * np.log(2.0))
            log_ratio = log_x - tf.math.log(first)
            log_curve = -log_ratio + 0.5 * s2 - tf.square(log_ratio - s2) / (2.0 * s2)
        else:
            log_curve = -0.5 * tf.square((log_x - tf.math.log(first)) / second)
        curve = tf.exp(log_curve)
        return tf.where(positive, curve, tf.zeros_like(curve))

    def get_config(self):
        """Return the specification; ``parameterisation`` is recorded unless the default.

        Returns
        -------
        dict
            What :func:`~braincoder.models.serialization.model_from_config` rebuilds the
            model from.
        """
        extra = ({} if self.parameterisation == "mu_sd_natural"
                 else {"parameterisation": self.parameterisation})
        return {**super().get_config(), **extra}


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
    parameterisation : {'mu_sd_natural', 'mode_fwhm_natural', 'mode_sd_log'}
        As in :class:`LogGaussianPRF` (default ``'mu_sd_natural'``).
    """

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, hrf_model=None,
        omega=None, verbosity=20, model_stimulus_amplitude=False, flexible_hrf_parameters=None,
        parameterisation="mu_sd_natural",
    ):
        super().__init__(
            paradigm, data, parameters, weights, hrf_model=hrf_model, omega=omega,
            verbosity=verbosity, model_stimulus_amplitude=model_stimulus_amplitude,
            flexible_hrf_parameters=flexible_hrf_parameters, parameterisation=parameterisation,
        )
