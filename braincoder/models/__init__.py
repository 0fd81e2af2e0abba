"""Encoding models and the model registry.

Linear models, 1D and 2D population receptive-field models (each optionally convolved with
an HRF) and, in :mod:`braincoder.models.deep`, deep encoding and decoding models. Every
model is registered by name (:func:`list_models`, :func:`get_model`).
"""

import importlib

from .registry import get_model, get_model_class, list_models, register_model

# Submodules import TensorFlow/Keras: they are imported on first use (PEP 562), so that
# ``import braincoder.models`` and listing the registry stay cheap.
_LAZY = {
    "base": ("EncodingModel", "HRFEncodingModel"),
    "linear": ("LinearModel", "LinearModelWithBaseline", "LinearModelWithBaselineHRF"),
    "prf_1d": ("GaussianPRF", "GaussianPRFWithHRF", "LogGaussianPRF", "LogGaussianPRFWithHRF",
               "VonMisesPRF"),
    "prf_2d": ("DifferenceOfGaussiansPRF2D", "DifferenceOfGaussiansPRF2DWithHRF",
               "DivisiveNormalizationGaussianPRF2D",
               "DivisiveNormalizationGaussianPRF2DWithHRF", "GaussianPRF2D",
               "GaussianPRF2DWithHRF"),
    "serialization": ("load_model", "save_model"),
    "protocol": ("FittableModel", "ModelCapabilities"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


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
__all__ += ["FittableModel", "ModelCapabilities"]
