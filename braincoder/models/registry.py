"""Name → class registry of encoding and decoding models.

Every model is known by a short snake-case name. The models of the library are listed in a
static table (:data:`BUILTIN_MODELS`) that gives, for each name, where its class lives
(``"module:Class"``), its parameter labels and a one-line description: listing the models
(:func:`list_models`, :func:`model_info`) imports neither the model modules nor
TensorFlow/Keras, and :func:`get_model_class` imports a model's module only when its class is
asked for. Classes defined elsewhere are added with the :func:`register_model` decorator.

This module imports nothing from the rest of the library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["ModelInfo", "BUILTIN_MODELS", "register_model", "get_model", "get_model_class",
           "list_models", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model without importing it.

    Parameters
    ----------
    target : str
        Where the class lives, ``"package.module:ClassName"``.
    parameter_labels : tuple of str
        Per-voxel parameter labels (empty for models fitted by weights only, and for deep
        models and decoders, which have no per-voxel parameters).
    kind : {"encoding", "deep", "decoder"}
        ``"encoding"``: an :class:`~braincoder.models.EncodingModel` fitted per voxel;
        ``"deep"``: a Keras model; ``"decoder"``: a decoder without per-voxel parameters.
    hrf : bool
        Whether the model convolves its response with an HRF (its HRF parameters can be
        fitted per voxel).
    description : str
        One line describing the model.
    """

    target: str
    parameter_labels: tuple = ()
    kind: str = "encoding"
    hrf: bool = False
    description: str = ""


def _info(target, labels="", kind="encoding", hrf=False, description=""):
    return ModelInfo(f"braincoder.models.{target}", tuple(labels.split()), kind, hrf,
                     description)


_PRF_1D = "mu sd amplitude baseline"
_PRF_2D = "x y sd baseline amplitude"
_DOG_2D = _PRF_2D + " srf_amplitude srf_size"
_DN_2D = "x y sd rf_amplitude srf_amplitude srf_size neural_baseline surround_baseline"

#: Static table of the library's models: registry name → :class:`ModelInfo`.
BUILTIN_MODELS: dict[str, ModelInfo] = {
    "linear": _info("linear:LinearModel",
                    description="response = paradigm @ weights"),
    "linear_baseline": _info("linear:LinearModelWithBaseline", "baseline",
                             description="response = paradigm @ weights + baseline"),
    "linear_baseline_hrf": _info("linear:LinearModelWithBaselineHRF", "baseline", hrf=True,
                                 description="linear model with baseline, convolved with an "
                                 "HRF"),
    "gaussian_prf": _info("prf_1d:GaussianPRF", _PRF_1D,
                          description="Gaussian tuning to a scalar stimulus"),
    "gaussian_prf_hrf": _info("prf_1d:GaussianPRFWithHRF", _PRF_1D, hrf=True,
                              description="Gaussian tuning to a scalar stimulus, with an HRF"),
    "von_mises_prf": _info("prf_1d:VonMisesPRF", "mu kappa amplitude baseline",
                           description="von Mises tuning to a circular stimulus (radians)"),
    "log_gaussian_prf": _info("prf_1d:LogGaussianPRF", _PRF_1D,
                              description="log-Gaussian tuning to a positive scalar stimulus"),
    "log_gaussian_prf_hrf": _info("prf_1d:LogGaussianPRFWithHRF", _PRF_1D, hrf=True,
                                  description="log-Gaussian tuning, with an HRF"),
    "gaussian_prf_2d": _info("prf_2d:GaussianPRF2D", _PRF_2D,
                             description="isotropic 2D Gaussian population receptive field"),
    "gaussian_prf_2d_hrf": _info("prf_2d:GaussianPRF2DWithHRF", _PRF_2D, hrf=True,
                                 description="2D Gaussian pRF, with an HRF"),
    "dog_prf_2d": _info("prf_2d:DifferenceOfGaussiansPRF2D", _DOG_2D,
                        description="difference-of-Gaussians 2D pRF (inhibitory surround)"),
    "dog_prf_2d_hrf": _info("prf_2d:DifferenceOfGaussiansPRF2DWithHRF", _DOG_2D, hrf=True,
                            description="difference-of-Gaussians 2D pRF, with an HRF"),
    "dn_prf_2d": _info("prf_2d:DivisiveNormalizationGaussianPRF2D", _DN_2D,
                       description="divisive-normalisation 2D pRF"),
    "dn_prf_2d_hrf": _info("prf_2d:DivisiveNormalizationGaussianPRF2DWithHRF",
                           _DN_2D + " bold_baseline",
                           hrf=True, description="divisive-normalisation 2D pRF, with an HRF"),
    "ridge_image_decoder": _info("image_decoders:RidgeImageDecoder", kind="decoder",
                                 description="ridge regression from voxels to pixels"),
    "prf_inversion_decoder": _info("image_decoders:PRFInversionDecoder", kind="decoder",
                                   description="MAP image under a fitted 2D pRF model"),
    "ridge_embedding_decoder": _info("deep._embedding_ridge:RidgeEmbeddingDecoder",
                                     kind="decoder", description="closed-form ridge decoder "
                                     "from voxels to stimulus embeddings"),
    "embedding_decoder": _info("deep.embedding:EmbeddingDecoder", kind="deep",
                               description="neural decoder from voxels to stimulus "
                               "embeddings"),
    "eeg_to_fmri": _info("deep.eeg_to_fmri:EEG_to_fMRI", kind="deep",
                         description="EEG-to-fMRI synthesis"),
    "fmri_ae": _info("deep.fmri_ae:fMRI_AE", kind="deep",
                     description="fMRI autoencoder"),
    "fmri_encoder": _info("deep._vae_gan_parts:fMRIEncoder", kind="deep",
                          description="voxel patterns to the VAE-GAN latent space"),
    "vae_gan": _info("deep.vae_gan:VAEGAN", kind="deep",
                     description="VAE-GAN decoding images from fMRI"),
}

#: Classes registered by :func:`register_model` (and built-in classes once imported).
_REGISTRY: dict[str, type] = {}


def _target(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def register_model(name):
    """Register a model class under ``name`` (class decorator).

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"gaussian_prf_2d"``. Must be unique.

    Returns
    -------
    callable
        A decorator that registers the class, sets its ``registry_name`` attribute and
        returns the class unchanged.

    Raises
    ------
    ValueError
        If ``name`` is already registered to a different class (built-in names belong to
        the classes of :data:`BUILTIN_MODELS`).

    Examples
    --------
    >>> from braincoder.models import register_model, EncodingModel
    >>> @register_model("my_model")
    ... class MyModel(EncodingModel):
    ...     parameter_labels = ["baseline"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty string, got {name!r}")

    def decorator(cls):
        builtin = BUILTIN_MODELS.get(name)
        if builtin is not None and builtin.target != _target(cls):
            owner = builtin.target.rsplit(":", 1)[1]
            raise ValueError(f"model name {name!r} is already registered to {owner}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"model name {name!r} is already registered to {existing.__qualname__}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def _info_of_class(cls):
    labels = getattr(cls, "parameter_labels", None)
    is_encoding = isinstance(labels, (list, tuple)) and hasattr(cls, "predict")
    hrf = any(base.__name__ == "HRFEncodingModel" for base in cls.__mro__)
    lines = (cls.__doc__ or "").strip().splitlines()
    return ModelInfo(_target(cls), tuple(labels) if is_encoding else (),
                     "encoding" if is_encoding else "deep", hrf, lines[0] if lines else "")


def _unknown(name):
    known = ", ".join(list_models())
    return ValueError(f"unknown model {name!r}; known models: {known}")


def model_info(name):
    """Describe a registered model without importing it.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    ModelInfo
        Class location, parameter labels, kind, HRF flag and description.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.

    Examples
    --------
    >>> from braincoder.models.registry import model_info
    >>> model_info("gaussian_prf").parameter_labels
    ('mu', 'sd', 'amplitude', 'baseline')
    """
    if not isinstance(name, str):
        raise _unknown(name)
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    if name in _REGISTRY:
        return _info_of_class(_REGISTRY[name])
    raise _unknown(name)


def get_model(name, **kwargs):
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_models`).
    **kwargs
        Keyword arguments passed to the model's constructor; an unknown keyword raises
        ``TypeError``.

    Returns
    -------
    object
        A new instance of the registered class.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.

    Examples
    --------
    >>> from braincoder.models import get_model
    >>> model = get_model("gaussian_prf")
    >>> model.get_parameter_labels()
    ['mu', 'sd', 'amplitude', 'baseline']
    """
    return get_model_class(name)(**kwargs)


def get_model_class(name):
    """Return the class registered under ``name``, importing its module if needed.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    type
        The registered class.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.
    """
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    info = model_info(name)
    module, _, qualname = info.target.partition(":")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    _REGISTRY.setdefault(name, cls)
    return _REGISTRY[name]


def list_models():
    """List the registered model names, without importing any model.

    Returns
    -------
    list of str
        Sorted registry names: the library's models and those added by
        :func:`register_model`.

    Examples
    --------
    >>> from braincoder.models import list_models
    >>> "gaussian_prf_2d_hrf" in list_models()
    True
    """
    return sorted(set(BUILTIN_MODELS) | set(_REGISTRY))
