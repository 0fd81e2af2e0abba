"""Population receptive-field models over images on a 2D pixel grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from ..stimuli import ImageStimulus
from ..utils.math import Softplus
from .base import EncodingModel, HRFEncodingModel
from .registry import register_model

__all__ = [
    "GaussianPRF2D",
    "GaussianPRF2DWithHRF",
    "DifferenceOfGaussiansPRF2D",
    "DifferenceOfGaussiansPRF2DWithHRF",
    "DivisiveNormalizationGaussianPRF2D",
    "DivisiveNormalizationGaussianPRF2DWithHRF",
]

_INIT_DOC = """
    Parameters
    ----------
    grid_coordinates : DataFrame or array-like, shape (n_pixels, 2)
        Visual-field position (columns ``x``, ``y``) of every pixel, in the order of the
        paradigm's columns (see :func:`~braincoder.stimuli.make_grid_coordinates`).
    paradigm, data, parameters, weights, omega, verbosity : optional
        See :class:`EncodingModel`. The paradigm is time × pixels (or time × height × width).
    normalize_rf : bool, default True
        Divide every Gaussian by ``sd · √(2π) / pixel_area`` (the public braincoder's
        convention, so its parameter tables predict the same numbers). False gives
        Gaussians with peak 1, whose ``amplitude`` is the response to a one-pixel dot at
        the centre. Recorded by :meth:`get_config`.
    hrf_model : HRFModel, optional
        Convolve the response with this HRF (see :class:`EncodingModel`).
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters of ``hrf_model``.
"""


def _gaussian(grid, x, y, sd):
    """Unnormalised isotropic Gaussian (peak 1), shape (n_pixels, n_units)."""
    dx = grid[:, :1] - x[tf.newaxis, :]
    dy = grid[:, 1:] - y[tf.newaxis, :]
    return tf.exp(-(tf.square(dx) + tf.square(dy)) / (2.0 * tf.square(sd)[tf.newaxis, :]))


def pixel_area(grid_coordinates):
    """Area of one pixel: mean spacing of the distinct x times that of the distinct y.

    Parameters
    ----------
    grid_coordinates : DataFrame, shape (n_pixels, 2)
        Pixel positions, columns ``x`` and ``y``.

    Returns
    -------
    float
        The area (1.0 along an axis with a single position).
    """
    area = 1.0
    for column in ("x", "y"):
        values = np.unique(grid_coordinates[column].to_numpy(np.float64))
        if values.size > 1:
            area *= float(np.diff(values).mean())
    return area


class _PRF2D(EncodingModel):
    """Shared parts of the 2D models: the pixel grid and ``paradigm @ rf`` responses."""

    def __init__(
        self, grid_coordinates=None, paradigm=None, data=None, parameters=None, weights=None,
        omega=None, verbosity=20, normalize_rf=True, hrf_model=None,
        flexible_hrf_parameters=None,
    ):
        if not isinstance(normalize_rf, bool | np.bool_):
            raise TypeError(f"normalize_rf must be True or False, got {normalize_rf!r}")
        self.normalize_rf = bool(normalize_rf)
        self.stimulus = ImageStimulus(grid_coordinates)
        self.grid_coordinates = self.stimulus.grid_coordinates
        self.pixel_area = pixel_area(self.grid_coordinates)
        self._grid = tf.constant(self.grid_coordinates.to_numpy(np.float32))
        super().__init__(paradigm, data, parameters, weights, omega, verbosity,
                         hrf_model=hrf_model, flexible_hrf_parameters=flexible_hrf_parameters)

    #: The paradigm is images on ``grid_coordinates`` (see ``capabilities``).
    image_stimulus = True

    def rf_norm_tensor(self, sd):
        """Factor multiplying a peak-1 Gaussian of width ``sd`` in the receptive field.

        Parameters
        ----------
        sd : tensor, shape (n_units,)
            Widths.

        Returns
        -------
        tensor, shape (n_units,)
            ``pixel_area / (sd √(2π))`` with ``normalize_rf``, else ones.
        """
        return self._norm(sd)

    def _tighten_bounds(self, clip, paradigm, data):
        coordinates = self.grid_coordinates[["x", "y"]].to_numpy(dtype=np.float64)
        extent = np.abs(coordinates).max()
        clip("x", -1.5 * extent, 1.5 * extent)
        clip("y", -1.5 * extent, 1.5 * extent)
        width = coordinates.max(axis=0) - coordinates.min(axis=0)
        spacings = [np.diff(np.unique(column)).min() for column in coordinates.T
                    if np.unique(column).size > 1]
        clip("sd", 0.8 * (float(min(spacings)) if spacings else 1.0), float(width.max()))

    def _default_grid_values(self, paradigm, size, n_sd, sd_range):
        grid = {}
        spans = []
        for axis in ("x", "y"):
            values = self.grid_coordinates[axis].to_numpy(np.float64)
            low, high = float(values.min()), float(values.max())
            grid[axis] = np.linspace(low, high, size)
            spans.append(max(high - low, 1e-6))
        grid["sd"] = np.geomspace(*(sd_range or (max(spans) / 20, max(spans) / 2)), n_sd)
        return grid

    def _norm(self, sd):
        """Factor multiplying a peak-1 Gaussian of width ``sd``: ``pixel_area / (sd √(2π))``."""
        if not self.normalize_rf:
            return tf.ones_like(sd)
        return self.pixel_area / (sd * float(np.sqrt(2.0 * np.pi)))

    def _normalised_gaussian(self, x, y, sd):
        return _gaussian(self._grid, x, y, sd) * self._norm(sd)[tf.newaxis, :]

    def _rf(self, parameters):
        """Receptive field of every unit on the pixel grid, shape (n_pixels, n_units)."""
        raise NotImplementedError

    def get_rf(self, as_frame=False, unpack=False, parameters=None):
        """Return each unit's receptive field on the pixel grid.

        Parameters
        ----------
        as_frame : bool, default False
            False: an array of shape (n_units, n_pixels), as the public braincoder returns.
            True: a DataFrame with one row per (unit, pixel) — index levels the parameters'
            index, ``x`` and ``y`` — and one column of values.
        unpack : bool, default False
            With ``as_frame``, one row per (unit, y) and one column per x, y descending
            (an image per unit, top row first).
        parameters : DataFrame, optional
            Unit × parameter values (falls back to the constructor's).

        Returns
        -------
        ndarray or DataFrame
            The receptive fields (see ``as_frame``); :meth:`get_rf_frame` gives a pixel ×
            unit DataFrame.
        """
        parameters = self._get_parameters(parameters)
        rf = self._rf(tf.constant(parameters.to_numpy(np.float32))).numpy().T
        if not as_frame:
            return rf
        pixels = pd.MultiIndex.from_frame(self.grid_coordinates[["x", "y"]])
        frame = pd.concat([pd.DataFrame(row, index=pixels) for row in rf],
                          keys=parameters.index)
        if unpack:
            frame = frame.unstack("x").sort_index(ascending=False)
        return frame

    def get_rf_frame(self, parameters=None):
        """Return each unit's receptive field as a pixel × unit DataFrame.

        Parameters
        ----------
        parameters : DataFrame, optional
            Unit × parameter values (falls back to the constructor's).

        Returns
        -------
        DataFrame, shape (n_pixels, n_units)
            Receptive fields indexed like ``grid_coordinates``, columns the units.
        """
        parameters = self._get_parameters(parameters)
        rf = self._rf(tf.constant(parameters.to_numpy(np.float32))).numpy()
        return pd.DataFrame(rf, index=self.grid_coordinates.index, columns=parameters.index)

    def _neural(self, paradigm, parameters):
        return tf.matmul(paradigm, self._rf(parameters))

    def get_config(self):
        """Return the model's specification, including the pixel grid.

        Returns
        -------
        dict
            JSON-serialisable specification.
        """
        config = super().get_config()
        config["grid_coordinates"] = self.stimulus.get_config()["grid_coordinates"]
        if not self.normalize_rf:
            config["normalize_rf"] = False
        return config


@register_model("gaussian_prf_2d")
class GaussianPRF2D(_PRF2D):
    """Isotropic 2D Gaussian population receptive field.

    {init}

    Notes
    -----
    Parameter labels ``x, y, sd, baseline, amplitude``; ``sd`` is optimised through a
    softplus. With :math:`s_{{t,p}}` the image, :math:`(g^x_p, g^y_p)` pixel positions and
    :math:`\\Delta` the pixel area:

    .. math::

        \\hat y_t = b + \\frac{{A \\Delta}}{{\\sigma\\sqrt{{2\\pi}}}} \\sum_p s_{{t,p}}
        \\exp\\left(-\\frac{{(g^x_p - x)^2 + (g^y_p - y)^2}}{{2\\sigma^2}}\\right)

    (the public braincoder's normalisation); with ``normalize_rf=False`` the Gaussian has
    peak 1 and the factor :math:`\\Delta / (\\sigma\\sqrt{{2\\pi}})` is dropped.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import GaussianPRF2D
    >>> from braincoder.stimuli import make_grid_coordinates
    >>> grid = make_grid_coordinates(3, extent=1.0)  # pixel area 1
    >>> image = np.zeros((1, 9)); image[0, 4] = 1.0  # a dot at the centre
    >>> round(float(GaussianPRF2D(grid).predict(image, [[0.0, 0.0, 1.0, 0.0, 1.0]]).iloc[0, 0]), 5)
    0.39894
    >>> peak_one = GaussianPRF2D(grid, normalize_rf=False)
    >>> float(peak_one.predict(image, parameters=[[0.0, 0.0, 1.0, 0.0, 2.0]]).iloc[0, 0])
    2.0
    """

    parameter_labels = ["x", "y", "sd", "baseline", "amplitude"]
    parameter_transforms = {"sd": Softplus()}
    linear_in_paradigm = True
    linear_in_amplitude = True

    def _rf(self, parameters):
        rf = self._normalised_gaussian(parameters[:, 0], parameters[:, 1], parameters[:, 2])
        return rf * parameters[:, 4][tf.newaxis, :]

    def _isotropic_gaussian_rf(self):
        return type(self)._rf is GaussianPRF2D._rf

    def _rf_jacobian(self, parameters):
        """Receptive field and its closed-form derivatives (one exponential for all).

        Returns the field (n_pixels, n_units) and, per parameter column, its derivative
        (same shape) or None where it is zero. With ``normalize_rf`` the field is
        ``A c(σ) u`` with ``c(σ) = Δ / (σ √(2π))``, so ``∂/∂σ`` gains ``−field / σ``.
        """
        x, y, sd, amplitude = (parameters[:, i] for i in (0, 1, 2, 4))
        dx = self._grid[:, :1] - x[tf.newaxis, :]
        dy = self._grid[:, 1:] - y[tf.newaxis, :]
        variance = tf.square(sd)[tf.newaxis, :]
        distance2 = tf.square(dx) + tf.square(dy)
        unit = tf.exp(-distance2 / (2.0 * variance)) * self._norm(sd)[tf.newaxis, :]
        field = unit * amplitude[tf.newaxis, :]
        d_sd = field * distance2 / (variance * sd[tf.newaxis, :])
        if self.normalize_rf:
            d_sd = d_sd - field / sd[tf.newaxis, :]
        derivatives = [field * dx / variance, field * dy / variance, d_sd, None, unit]
        return field, derivatives + [None] * (parameters.shape[1] - 5)


@register_model("dog_prf_2d")
class DifferenceOfGaussiansPRF2D(_PRF2D):
    """Difference-of-Gaussians 2D receptive field (excitatory centre, inhibitory surround).

    {init}

    Notes
    -----
    Parameter labels ``x, y, sd, baseline, amplitude, srf_amplitude, srf_size``. The
    surround has standard deviation ``sd · srf_size`` (``srf_size > 1``, softplus above 1)
    and peak ``srf_amplitude`` relative to the centre (softplus):

    .. math::

        \\hat y_t = b + A \\frac{{\\Delta}}{{\\sigma\\sqrt{{2\\pi}}}} \\sum_p s_{{t,p}}
        \\left(G_p(x, y, \\sigma) - a_s G_p(x, y, \\sigma\\, r_s)\\right)

    with :math:`G_p` peak-1 Gaussians, as in the public braincoder (whose surround,
    normalised by its own width and scaled by ``srf_size``, gives the same factor); with
    ``normalize_rf=False`` the factor :math:`\\Delta / (\\sigma\\sqrt{{2\\pi}})` is dropped.
    """

    parameter_labels = ["x", "y", "sd", "baseline", "amplitude", "srf_amplitude", "srf_size"]
    parameter_transforms = {
        "sd": Softplus(), "srf_amplitude": Softplus(), "srf_size": Softplus(1.0)
    }
    linear_in_paradigm = True
    linear_in_amplitude = True

    def _rf(self, parameters):
        x, y, sd = parameters[:, 0], parameters[:, 1], parameters[:, 2]
        centre = _gaussian(self._grid, x, y, sd)
        surround = _gaussian(self._grid, x, y, sd * parameters[:, 6])
        gain = parameters[:, 4] * self._norm(sd)
        return (centre - parameters[:, 5][tf.newaxis, :] * surround) * gain[tf.newaxis, :]


@register_model("dn_prf_2d")
class DivisiveNormalizationGaussianPRF2D(_PRF2D):
    """Divisive-normalisation 2D receptive field (Aqil et al., 2021).

    {init}

    Notes
    -----
    Parameter labels (the public braincoder's) ``x, y, sd, rf_amplitude, srf_amplitude,
    srf_size, neural_baseline, surround_baseline``. With :math:`c_t = \\sum_p s_{{t,p}}
    N_p(x, y, \\sigma)` and :math:`n_t = \\sum_p s_{{t,p}} N_p(x, y, \\sigma r_s)`, where
    :math:`N_p` are the normalised Gaussians (see ``normalize_rf``):

    .. math::

        \\hat y_t = \\frac{{a_c c_t + n_b}}{{a_s a_c n_t + s_b}}

    so the response without stimulus is :math:`n_b / s_b`. ``srf_size`` > 1;
    ``srf_amplitude``, ``neural_baseline`` and ``surround_baseline`` > 0 (softplus);
    ``rf_amplitude`` is free. The model is not of the form ``baseline + amplitude · f``:
    a grid search needs values for every parameter. Scaling ``rf_amplitude`` and
    ``neural_baseline`` by ``g`` and ``srf_amplitude`` by ``1/g`` scales the response
    above :math:`n_b / s_b` by ``g`` (used by
    :meth:`~braincoder.optimize.ParameterFitter.refine_baseline_and_amplitude` for the
    HRF variant). Given ``hrf_model=``, this class convolves the whole response, rest
    level included; the public braincoder's HRF variant, with a ``bold_baseline`` added
    after the convolution, is :class:`DivisiveNormalizationGaussianPRF2DWithHRF`.

    References
    ----------
    Aqil, M., Knapen, T., & Dumoulin, S. O. (2021). Divisive normalization unifies disparate
    response signatures throughout the human visual hierarchy. PNAS 118(46).
    """

    parameter_labels = [
        "x", "y", "sd", "rf_amplitude", "srf_amplitude", "srf_size", "neural_baseline",
        "surround_baseline",
    ]
    parameter_transforms = {
        "sd": Softplus(),
        "srf_amplitude": Softplus(),
        "srf_size": Softplus(1.0),
        "neural_baseline": Softplus(),
        "surround_baseline": Softplus(),
    }
    #: Parameters multiplied by ``g`` (exponent 1) or ``1/g`` (−1) to scale the response.
    gain_parameters = {"rf_amplitude": 1, "neural_baseline": 1, "srf_amplitude": -1}

    def _drive(self, paradigm, parameters):
        """Centre and surround drives ``c_t``, ``n_t`` (n_timepoints, n_units)."""
        x, y, sd = parameters[:, 0], parameters[:, 1], parameters[:, 2]
        centre = tf.matmul(paradigm, self._normalised_gaussian(x, y, sd))
        surround = tf.matmul(paradigm, self._normalised_gaussian(x, y, sd * parameters[:, 5]))
        return centre, surround

    def _neural(self, paradigm, parameters):
        centre, surround = self._drive(paradigm, parameters)
        rf_amplitude, srf_amplitude = parameters[:, 3], parameters[:, 4]
        neural_baseline, surround_baseline = parameters[:, 6], parameters[:, 7]
        return (rf_amplitude * centre + neural_baseline) / (
            srf_amplitude * rf_amplitude * surround + surround_baseline
        )


for _cls in (GaussianPRF2D, DifferenceOfGaussiansPRF2D, DivisiveNormalizationGaussianPRF2D):
    _cls.__doc__ = _cls.__doc__.format(init=_INIT_DOC)


class _WithHRF2D(HRFEncodingModel):
    """Constructor of the 2D models with an HRF (keeps braincoder's argument order)."""

    def __init__(
        self, grid_coordinates=None, paradigm=None, data=None, parameters=None, weights=None,
        hrf_model=None, omega=None, verbosity=20, flexible_hrf_parameters=None,
        normalize_rf=True,
    ):
        super().__init__(
            grid_coordinates, paradigm, data, parameters, weights, hrf_model=hrf_model,
            omega=omega, verbosity=verbosity, flexible_hrf_parameters=flexible_hrf_parameters,
            normalize_rf=normalize_rf,
        )


@register_model("gaussian_prf_2d_hrf")
class GaussianPRF2DWithHRF(_WithHRF2D, GaussianPRF2D):
    """:class:`GaussianPRF2D` convolved with an HRF.

    Parameters
    ----------
    grid_coordinates : DataFrame or array-like, shape (n_pixels, 2)
        Pixel positions (columns ``x``, ``y``).
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF; with ``SPMHRFModel(tr, unique_hrfs=True)`` the labels gain ``hrf_delay``
        and ``hrf_dispersion``.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.
    normalize_rf : bool, default True
        See :class:`GaussianPRF2D`.

    Notes
    -----
    The baseline is added after convolution: ``b + A · (h * (s · rf))(t)``.

    Examples
    --------
    >>> from braincoder.hrf import SPMHRFModel
    >>> from braincoder.models import GaussianPRF2DWithHRF
    >>> from braincoder.stimuli import make_grid_coordinates
    >>> model = GaussianPRF2DWithHRF(make_grid_coordinates(10),
    ...                              hrf_model=SPMHRFModel(tr=1.5, unique_hrfs=True))
    >>> model.get_parameter_labels()
    ['x', 'y', 'sd', 'baseline', 'amplitude', 'hrf_delay', 'hrf_dispersion']
    """


@register_model("dog_prf_2d_hrf")
class DifferenceOfGaussiansPRF2DWithHRF(_WithHRF2D, DifferenceOfGaussiansPRF2D):
    """:class:`DifferenceOfGaussiansPRF2D` convolved with an HRF.

    Parameters
    ----------
    grid_coordinates : DataFrame or array-like, shape (n_pixels, 2)
        Pixel positions (columns ``x``, ``y``).
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.
    normalize_rf : bool, default True
        See :class:`GaussianPRF2D`.
    """


class _DivisiveNormalizationWithoutHRF(DivisiveNormalizationGaussianPRF2D):
    """The HRF variant's response without its HRF (what decoding compares with)."""

    parameter_labels = [*DivisiveNormalizationGaussianPRF2D.parameter_labels, "bold_baseline"]

    def _neural(self, paradigm, parameters):
        response = DivisiveNormalizationGaussianPRF2D._neural(self, paradigm, parameters)
        return response - parameters[:, 6] / parameters[:, 7]

    def _baseline(self, parameters):
        return parameters[:, 8]


@register_model("dn_prf_2d_hrf")
class DivisiveNormalizationGaussianPRF2DWithHRF(_WithHRF2D, DivisiveNormalizationGaussianPRF2D):
    """:class:`DivisiveNormalizationGaussianPRF2D` convolved with an HRF.

    Parameters
    ----------
    grid_coordinates : DataFrame or array-like, shape (n_pixels, 2)
        Pixel positions (columns ``x``, ``y``).
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF.
    omega, verbosity : optional
        See :class:`EncodingModel`.
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.
    normalize_rf : bool, default True
        See :class:`DivisiveNormalizationGaussianPRF2D`.

    Notes
    -----
    As in the public braincoder, the labels gain ``bold_baseline`` (after the eight of the
    neural model, before any HRF parameters): the response above :math:`n_b / s_b` is
    convolved and the BOLD baseline added,
    ``bold_baseline + h * (DN(t) − neural_baseline / surround_baseline)``.
    """

    parameter_labels = [*DivisiveNormalizationGaussianPRF2D.parameter_labels, "bold_baseline"]
    _decoding_class = _DivisiveNormalizationWithoutHRF

    def _neural(self, paradigm, parameters):
        return _DivisiveNormalizationWithoutHRF._neural(self, paradigm, parameters)

    def _baseline(self, parameters):
        return parameters[:, 8]
