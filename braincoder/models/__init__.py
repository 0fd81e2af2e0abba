"""Encoding models and the model registry.

Linear models, 1D and 2D population receptive-field models (each optionally convolved with
an HRF) and, in :mod:`braincoder.models.deep`, deep encoding and decoding models. Every
model is registered by name (:func:`list_models`, :func:`get_model`).
"""

from .base import EncodingModel, HRFEncodingModel
from .linear import LinearModel, LinearModelWithBaseline, LinearModelWithBaselineHRF
from .prf_1d import (
    GaussianPRF,
    GaussianPRFWithHRF,
    LogGaussianPRF,
    LogGaussianPRFWithHRF,
    VonMisesPRF,
)
from .prf_2d import (
    DifferenceOfGaussiansPRF2D,
    DifferenceOfGaussiansPRF2DWithHRF,
    DivisiveNormalizationGaussianPRF2D,
    DivisiveNormalizationGaussianPRF2DWithHRF,
    GaussianPRF2D,
    GaussianPRF2DWithHRF,
)
from .registry import get_model, get_model_class, list_models, register_model
from .serialization import load_model, save_model

__all__ = [
    "EncodingModel",
    "HRFEncodingModel",
    "LinearModel",
    "LinearModelWithBaseline",
    "LinearModelWithBaselineHRF",
    "GaussianPRF",
    "GaussianPRFWithHRF",
    "VonMisesPRF",
    "LogGaussianPRF",
    "LogGaussianPRFWithHRF",
    "GaussianPRF2D",
    "GaussianPRF2DWithHRF",
    "DifferenceOfGaussiansPRF2D",
    "DifferenceOfGaussiansPRF2DWithHRF",
    "DivisiveNormalizationGaussianPRF2D",
    "DivisiveNormalizationGaussianPRF2DWithHRF",
    "register_model",
    "get_model",
    "get_model_class",
    "list_models",
]
__all__ += ["save_model", "load_model"]
