"""Population receptive-field models over images on a 2D pixel grid."""

from __future__ import annotations

import numpy as np
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
"""


def _gaussian(grid, x, y, sd):
    """Unnormalised isotropic Gaussian (peak 1), shape (n_pixels, n_units)."""
    dx = grid[:, :1] - x[tf.newaxis, :]
    dy = grid[:, 1:] - y[tf.newaxis, :]
    return tf.exp(-(tf.square(dx) + tf.square(dy)) / (2.0 * tf.square(sd)[tf.newaxis, :]))


class _PRF2D(EncodingModel):
    """Shared parts of the 2D models: the pixel grid and ``paradigm @ rf`` responses."""

    def __init__(
        self, grid_coordinates=None, paradigm=None, data=None, parameters=None, weights=None,
        omega=None, verbosity=20,
    ):
        self.stimulus = ImageStimulus(grid_coordinates)
        self.grid_coordinates = self.stimulus.grid_coordinates
        self._grid = tf.constant(self.grid_coordinates.to_numpy(np.float32))
        super().__init__(paradigm, data, parameters, weights, omega, verbosity)

    def _rf(self, parameters):
        """Receptive field of every unit on the pixel grid, shape (n_pixels, n_units)."""
        raise NotImplementedError

    def get_rf(self, parameters=None):
        """Return each unit's receptive field on the pixel grid.

        Parameters
        ----------
        parameters : DataFrame, optional
            Unit × parameter values (falls back to the constructor's).

        Returns
        -------
        DataFrame, shape (n_pixels, n_units)
            Receptive fields indexed like ``grid_coordinates``, columns the units.
        """
        import pandas as pd

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
        return config


@register_model("gaussian_prf_2d")
class GaussianPRF2D(_PRF2D):
    """Isotropic 2D Gaussian population receptive field.

    {init}

    Notes
    -----
    Parameter labels ``x, y, sd, baseline, amplitude``; ``sd`` is optimised through a
    softplus. With :math:`s_{{t,p}}` the image and :math:`(g^x_p, g^y_p)` pixel positions:

    .. math::

        \\hat y_t = b + A \\sum_p s_{{t,p}}
        \\exp\\left(-\\frac{{(g^x_p - x)^2 + (g^y_p - y)^2}}{{2\\sigma^2}}\\right)

    The Gaussian has peak 1 (not unit volume).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import GaussianPRF2D
    >>> from braincoder.stimuli import make_grid_coordinates
    >>> model = GaussianPRF2D(grid_coordinates=make_grid_coordinates(3, extent=1.0))
    >>> image = np.zeros((1, 9)); image[0, 4] = 1.0  # a dot at the centre
    >>> float(model.predict(image, parameters=[[0.0, 0.0, 1.0, 0.0, 2.0]]).iloc[0, 0])
    2.0
    """

    parameter_labels = ["x", "y", "sd", "baseline", "amplitude"]
    parameter_transforms = {"sd": Softplus()}
    linear_in_paradigm = True
    linear_in_amplitude = True

    def _rf(self, parameters):
        rf = _gaussian(self._grid, parameters[:, 0], parameters[:, 1], parameters[:, 2])
        return rf * parameters[:, 4][tf.newaxis, :]

    def _rf_jacobian(self, parameters):
        """Receptive field and its closed-form derivatives (one exponential for all).

        Returns the field (n_pixels, n_units) and, per parameter column, its derivative
        (same shape) or None where it is zero.
        """
        x, y, sd, amplitude = (parameters[:, i] for i in (0, 1, 2, 4))
        dx = self._grid[:, :1] - x[tf.newaxis, :]
        dy = self._grid[:, 1:] - y[tf.newaxis, :]
        variance = tf.square(sd)[tf.newaxis, :]
        distance2 = tf.square(dx) + tf.square(dy)
        unit = tf.exp(-distance2 / (2.0 * variance))
        field = unit * amplitude[tf.newaxis, :]
        derivatives = [
            field * dx / variance,
            field * dy / variance,
            field * distance2 / (variance * sd[tf.newaxis, :]),
            None,
            unit,
        ]
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

        \\hat y_t = b + A \\sum_p s_{{t,p}}\\left(G_p(x, y, \\sigma) - a_s
        G_p(x, y, \\sigma\\, r_s)\\right)
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
        return (centre - parameters[:, 5][tf.newaxis, :] * surround) * parameters[:, 4][
            tf.newaxis, :
        ]


@register_model("dn_prf_2d")
class DivisiveNormalizationGaussianPRF2D(_PRF2D):
    """Divisive-normalisation 2D receptive field (Aqil et al., 2021).

    {init}

    Notes
    -----
    Parameter labels ``x, y, sd, baseline, amplitude, srf_amplitude, srf_size,
    neural_baseline, surround_baseline``. With :math:`c_t = \\sum_p s_{{t,p}} G_p(x, y,
    \\sigma)` and :math:`n_t = \\sum_p s_{{t,p}} G_p(x, y, \\sigma r_s)`:

    .. math::

        \\hat y_t = b + \\frac{{A c_t + n_b}}{{a_s n_t + s_b}} - \\frac{{n_b}}{{s_b}}

    ``srf_size`` > 1; ``srf_amplitude``, ``neural_baseline`` and ``surround_baseline`` > 0
    (softplus). The response is 0 (above baseline) without stimulus.

    References
    ----------
    Aqil, M., Knapen, T., & Dumoulin, S. O. (2021). Divisive normalization unifies disparate
    response signatures throughout the human visual hierarchy. PNAS 118(46).
    """

    parameter_labels = [
        "x", "y", "sd", "baseline", "amplitude", "srf_amplitude", "srf_size",
        "neural_baseline", "surround_baseline",
    ]
    parameter_transforms = {
        "sd": Softplus(),
        "srf_amplitude": Softplus(),
        "srf_size": Softplus(1.0),
        "neural_baseline": Softplus(),
        "surround_baseline": Softplus(),
    }

    def _neural(self, paradigm, parameters):
        x, y, sd = parameters[:, 0], parameters[:, 1], parameters[:, 2]
        centre = tf.matmul(paradigm, _gaussian(self._grid, x, y, sd))
        surround = tf.matmul(paradigm, _gaussian(self._grid, x, y, sd * parameters[:, 6]))
        amplitude, srf_amplitude = parameters[:, 4], parameters[:, 5]
        neural_baseline, surround_baseline = parameters[:, 7], parameters[:, 8]
        return (amplitude * centre + neural_baseline) / (
            srf_amplitude * surround + surround_baseline
        ) - neural_baseline / surround_baseline


for _cls in (GaussianPRF2D, DifferenceOfGaussiansPRF2D, DivisiveNormalizationGaussianPRF2D):
    _cls.__doc__ = _cls.__doc__.format(init=_INIT_DOC)


class _WithHRF2D(HRFEncodingModel):
    """Constructor of the 2D models with an HRF (keeps braincoder's argument order)."""

    def __init__(
        self, grid_coordinates=None, paradigm=None, data=None, parameters=None, weights=None,
        hrf_model=None, omega=None, verbosity=20, flexible_hrf_parameters=None,
    ):
        super().__init__(
            grid_coordinates, paradigm, data, parameters, weights, hrf_model=hrf_model,
            omega=omega, verbosity=verbosity, flexible_hrf_parameters=flexible_hrf_parameters,
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
    """


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
    """
