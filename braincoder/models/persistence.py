"""One save and one load for every registered model and decoder (no pickle).

:func:`save` writes an object to a folder: a small JSON header, ``braincoder.json``, that
names the storage format, its version, the object's registry name and the library version,
and beside it the object's own files:

* ``classic`` — :class:`~braincoder.models.EncodingModel` subclasses: ``model.json`` plus
  one ``.tsv`` (or ``.npz``) file per value block;
* ``keras`` — Keras models (EEG-to-fMRI, fMRI AE, embedding decoder, fMRI encoder):
  ``model.keras``, read with ``safe_mode``;
* ``vae_gan`` — :class:`~braincoder.models.deep.VAEGAN`: ``vae_gan.json`` plus one
  ``.keras`` file per part;
* ``ridge_embedding`` — :class:`~braincoder.models.deep.RidgeEmbeddingDecoder`:
  ``decoder.json`` plus ``decoder.npz``;
* ``image_decoder`` — the ridge and pRF-inversion image decoders: ``decoder.json`` plus
  ``decoder.npz``.

:func:`load` reads the header and dispatches to the format's loader. Paths saved before the
header existed are recognised by their files: a folder with ``model.json`` (classic model or
ridge decoder) or ``vae_gan.json``, a ``.keras`` file, or a ridge decoder's ``.json`` file.
JSON is parsed as plain data and arrays are read with ``allow_pickle=False``; only classes
of the model registry are built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.labels import decode_index, encode_index

__all__ = ["save", "load", "read_header", "HEADER_FILE"]

#: Name of the header file written in every saved folder.
HEADER_FILE = "braincoder.json"
_HEADER_KEYS = {"format", "format_version", "model", "braincoder_version"}
_DECODER_JSON = "decoder.json"
_DECODER_NPZ = "decoder.npz"
_KERAS_FILE = "model.keras"


# ---------------------------------------------------------------------- header
def _library_version():
    from .. import __version__

    return __version__


def _registry_name(obj):
    """Registry name of ``obj``'s class, refusing classes not registered under their name."""
    from .registry import get_model_class

    name = getattr(type(obj), "registry_name", None)
    try:
        registered = get_model_class(name) if isinstance(name, str) else None
    except ValueError:
        registered = None
    if registered is not type(obj):
        raise TypeError(f"{type(obj).__name__} is not registered under its own name; register "
                        "it with braincoder.models.register_model to save it")
    return name


def write_header(directory, format_name, format_version, model):
    """Write the header file of a saved folder.

    Parameters
    ----------
    directory : str or path
        The saved folder.
    format_name : str
        Storage format (see the module documentation).
    format_version : int
        Version of that format.
    model : str
        Registry name of the saved object.

    Returns
    -------
    Path
        The header file.
    """
    header = {"format": format_name, "format_version": int(format_version), "model": model,
              "braincoder_version": _library_version()}
    path = Path(directory) / HEADER_FILE
    path.write_text(json.dumps(header, indent=1))
    return path


def read_header(path):
    """Read and check the header of a saved folder.

    Parameters
    ----------
    path : str or path
        The folder, or its header file.

    Returns
    -------
    dict or None
        ``{"format", "format_version", "model", "braincoder_version"}``; None when the
        folder has no header (saved by an older version).

    Raises
    ------
    ValueError
        For a malformed header.
    """
    path = Path(path)
    file = path if path.name == HEADER_FILE else path / HEADER_FILE
    if not file.is_file():
        return None
    try:
        header = json.loads(file.read_text())
    except ValueError as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        found = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise ValueError(f"{file}: expected keys {sorted(_HEADER_KEYS)}, found {found}")
    if header["format"] not in _FORMATS:
        raise ValueError(f"{file}: unknown format {header['format']!r}; known formats are "
                         f"{sorted(_FORMATS)}")
    version = _FORMATS[header["format"]][2]
    if header["format_version"] != version:
        raise ValueError(f"{file}: format {header['format']!r} version "
                         f"{header['format_version']!r} is not supported (expected {version})")
    return header


# ---------------------------------------------------------------------- formats
def _save_classic(obj, directory, **options):
    obj.save(directory, **options)


def _load_classic(directory):
    from .base import EncodingModel

    return EncodingModel.load(directory)


def _save_keras(obj, directory, **options):
    import keras

    keras.saving.save_model(obj, os.fspath(Path(directory) / _KERAS_FILE))


def _load_keras(path):
    import keras

    path = Path(path)
    file = path / _KERAS_FILE if path.is_dir() else path
    return keras.saving.load_model(os.fspath(file), compile=False, safe_mode=True)


def _save_vae_gan(obj, directory, **options):
    obj.save(directory, overwrite=True)


def _load_vae_gan(directory):
    from .deep.vae_gan import VAEGAN

    return VAEGAN.load(directory)


def _save_ridge_embedding(obj, directory, **options):
    obj.save(Path(directory) / _DECODER_JSON)


def _load_ridge_embedding(path):
    from .deep._embedding_ridge import RidgeEmbeddingDecoder

    path = Path(path)
    return RidgeEmbeddingDecoder.load(path / _DECODER_JSON if path.is_dir() else path)


def _save_image_decoder(obj, directory, **options):
    from .image_decoders import PRFInversionDecoder

    if getattr(obj, "voxel_names", None) is None:
        raise RuntimeError(f"{type(obj).__name__} is not fitted; nothing to save")
    directory = Path(directory)
    spec = {"model": type(obj).registry_name, "format_version": 1,
            "voxel_names": encode_index(obj.voxel_names, "voxel names"),
            "image_shape": [int(n) for n in obj.image_shape], "cv": int(obj.cv)}
    if isinstance(obj, PRFInversionDecoder):
        post = obj._posterior
        spec.update(
            encoding_model=json.loads(obj.model.to_json(include_values=False))["spec"],
            parameters={"index": encode_index(obj.parameters.index, "parameters index"),
                        "columns": encode_index(obj.parameters.columns, "parameters columns")},
            smoothness=list(obj.smoothness), l2=list(obj.l2), prior_mean=obj.prior_mean,
            chosen_smoothness=float(obj.chosen_smoothness), chosen_l2=float(obj.chosen_l2),
            cv_mse=None if obj.cv_mse is None else {
                "index": encode_index(obj.cv_mse.index, "cv_mse index"),
                "columns": encode_index(obj.cv_mse.columns, "cv_mse columns")},
        )
        arrays = {"parameters": obj.parameters.to_numpy(np.float64), "r": post.r,
                  "gain": post.gain, "baseline": post.baseline, "noise": post.noise,
                  "mean": post.mean, "factor": post.factor}
        if obj.cv_mse is not None:
            arrays["cv_mse"] = obj.cv_mse.to_numpy(np.float64)
    else:
        solution = obj.solution
        spec["alphas"] = list(obj.alphas)
        arrays = {"weights": solution.weights, "intercept": solution.intercept,
                  "alphas": solution.alphas, "cv_r2": solution.cv_r2, "mean": obj.mean,
                  "scale": obj.scale}
    (directory / _DECODER_JSON).write_text(json.dumps(spec, indent=1, allow_nan=False))
    np.savez(directory / _DECODER_NPZ, **{k: np.asarray(v) for k, v in arrays.items()})


def _load_image_decoder(directory):
    try:
        return _read_image_decoder(directory)
    except KeyError as error:
        raise ValueError(f"{Path(directory) / _DECODER_JSON} or {_DECODER_NPZ}: missing "
                         f"entry {error}") from None


def _read_image_decoder(directory):
    from ..optimize.ridge import RidgeSolution
    from . import image_decoders as module
    from .serialization import model_from_config

    directory = Path(directory)
    spec = json.loads((directory / _DECODER_JSON).read_text())
    with np.load(directory / _DECODER_NPZ, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    voxels = decode_index(spec["voxel_names"], "voxel names")
    if spec.get("model") == module.RidgeImageDecoder.registry_name:
        decoder = module.RidgeImageDecoder(alphas=spec["alphas"], cv=spec["cv"])
        decoder.solution = RidgeSolution(arrays["weights"], arrays["intercept"],
                                         arrays["alphas"], arrays["cv_r2"])
        decoder.mean, decoder.scale = arrays["mean"], arrays["scale"]
    elif spec.get("model") == module.PRFInversionDecoder.registry_name:
        blocks = spec["parameters"]
        parameters = pd.DataFrame(arrays["parameters"],
                                  index=decode_index(blocks["index"], "parameters index"),
                                  columns=decode_index(blocks["columns"], "parameters columns"))
        decoder = module.PRFInversionDecoder(
            model_from_config(spec["encoding_model"]), parameters, smoothness=spec["smoothness"],
            l2=spec["l2"], prior_mean=spec["prior_mean"], cv=spec["cv"])
        decoder.chosen_smoothness = spec["chosen_smoothness"]
        decoder.chosen_l2 = spec["chosen_l2"]
        if spec["cv_mse"] is not None:
            decoder.cv_mse = pd.DataFrame(
                arrays["cv_mse"], index=decode_index(spec["cv_mse"]["index"], "cv_mse index"),
                columns=decode_index(spec["cv_mse"]["columns"], "cv_mse columns"))
        decoder._posterior = module._restore_posterior(
            arrays, tuple(spec["image_shape"]), decoder.chosen_smoothness, decoder.chosen_l2)
        decoder.gain = pd.Series(arrays["gain"], index=voxels, name="gain")
        decoder.baseline = pd.Series(arrays["baseline"], index=voxels, name="baseline")
        decoder.noise_variance = pd.Series(arrays["noise"], index=voxels, name="noise_variance")
    else:
        raise ValueError(f"{directory / _DECODER_JSON} does not describe an image decoder")
    decoder.voxel_names = voxels
    decoder.image_shape = tuple(spec["image_shape"])
    return decoder


#: format name → (saver, loader, version)
_FORMATS = {
    "classic": (_save_classic, _load_classic, 1),
    "keras": (_save_keras, _load_keras, 1),
    "vae_gan": (_save_vae_gan, _load_vae_gan, 1),
    "ridge_embedding": (_save_ridge_embedding, _load_ridge_embedding, 1),
    "image_decoder": (_save_image_decoder, _load_image_decoder, 1),
}


def _format_of(obj):
    from .base import EncodingModel

    name = type(obj).__name__
    if isinstance(obj, EncodingModel):
        return "classic"
    module = type(obj).__module__
    if name == "VAEGAN" and module.endswith("vae_gan"):
        return "vae_gan"
    if name == "RidgeEmbeddingDecoder":
        return "ridge_embedding"
    if module.endswith("image_decoders"):
        return "image_decoder"
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a dependency
        keras = None
    if keras is not None and isinstance(obj, keras.Model):
        return "keras"
    raise TypeError(f"cannot save a {name}: not a braincoder model")


# ---------------------------------------------------------------------- public
def save(obj, path, **options):
    """Save a registered model or decoder to a folder with a header.

    Parameters
    ----------
    obj : object
        An instance of a registered class (:func:`braincoder.models.list_models`): an
        encoding model, a Keras model, the VAE-GAN, or a ridge/image decoder.
    path : str or path
        Folder (created if needed).
    **options
        Options of the format's writer; ``npz_threshold`` for encoding models (see
        :meth:`~braincoder.models.EncodingModel.save`).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    TypeError
        If the object's class is not registered under its own name.
    RuntimeError
        For decoders that were never fitted.
    """
    format_name = _format_of(obj)
    name = _registry_name(obj)
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    saver, _, version = _FORMATS[format_name]
    saver(obj, directory, **options)
    write_header(directory, format_name, version, name)
    return directory


def _nothing_saved(path):
    return (f"no model.json, {HEADER_FILE}, vae_gan.json or {_KERAS_FILE} in {str(path)!r}; "
            "is it a saved braincoder model?")


def _sniff(path):
    """Format of a path saved without a header."""
    if path.is_file():
        if path.suffix == ".keras":
            return "keras", path
        if path.suffix == ".json":
            try:
                document = json.loads(path.read_text())
            except ValueError as error:
                raise ValueError(f"{path} is not valid JSON: {error}") from None
            if isinstance(document, dict) and "arrays" in document:
                return "ridge_embedding", path
            if path.name == "vae_gan.json":
                return "vae_gan", path.parent
            return "classic", path.parent
        raise ValueError(f"{path} is not a saved braincoder model")
    if (path / "model.json").is_file():
        document = json.loads((path / "model.json").read_text())
        if isinstance(document, dict) and "arrays" in document:
            return "ridge_embedding", path / "model.json"
        return "classic", path
    if (path / "vae_gan.json").is_file():
        return "vae_gan", path
    if (path / _KERAS_FILE).is_file():
        return "keras", path
    raise FileNotFoundError(_nothing_saved(path))


def load(path):
    """Load any object saved with :func:`save` (or by an older version's own ``save``).

    Parameters
    ----------
    path : str or path
        A saved folder (or its header), or a file written by an object's own ``save``
        (``.keras`` file, ridge decoder ``.json``, classic ``model.json``).

    Returns
    -------
    object
        The model or decoder, of the registered class named in the header.

    Raises
    ------
    FileNotFoundError
        If nothing saved is found at ``path``.
    ValueError
        For malformed headers or files.
    TypeError
        If the loaded object is not of the class the header names.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(_nothing_saved(path))
    if path.name == HEADER_FILE:
        path = path.parent
    header = read_header(path) if path.is_dir() else None
    if header is None:
        format_name, target = _sniff(path)
        return _FORMATS[format_name][1](target)
    obj = _FORMATS[header["format"]][1](path)
    from .registry import get_model_class

    expected = get_model_class(header["model"])
    if type(obj) is not expected:
        raise TypeError(f"{path} holds a {type(obj).__name__}, but its header names "
                        f"{header['model']!r} ({expected.__name__})")
    return obj
