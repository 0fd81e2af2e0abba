"""Saving and loading encoding models as JSON specifications plus TSV values (no pickle).

A saved model is plain data: the model's specification (its registry name, the HRF
configuration, the pixel grid of 2D models) and its parameters, weights and noise covariance
with their row and column labels. Loading only ever builds classes found in the model
registry (:func:`~braincoder.models.registry.get_model_class`) and the HRF classes of
:mod:`braincoder.hrf`; no name in a file is imported or evaluated, and numbers are parsed as
numbers only.

Document layout (``model.to_json()``)::

    {"format": "braincoder.model", "format_version": 1,
     "spec": {"model": "gaussian_prf_2d_hrf", "hrf_model": {...}, "grid_coordinates": {...}},
     "parameters": {"index": ..., "columns": ..., "dtype": "float64", "values": [[...]]},
     "weights": null, "omega": null}

:meth:`SerializationMixin.save` writes the same document to ``model.json`` with each block's
``values`` replaced by ``"file": "<block>.tsv"``, the values going to that TSV file (row
labels in the first column, column labels in the header). Blocks with more than
``npz_threshold`` values go to ``<block>.npz`` instead (one array named ``values``, read
back with ``allow_pickle=False``); their labels stay in ``model.json`` either way.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.labels import _list, decode_index, encode_index

__all__ = ["SerializationMixin", "save_model", "load_model", "model_from_config"]

FORMAT = "braincoder.model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
_BLOCKS = ("parameters", "weights", "omega")
_DOCUMENT_KEYS = {"format", "format_version", "spec", *_BLOCKS}
_SPEC_ARGUMENTS = ("hrf_model", "grid_coordinates", "model_stimulus_amplitude", "normalize_rf",
                   "parameterisation")
_VALUE_DTYPES = ("float64", "float32")
_NPZ_THRESHOLD = 1_000_000


# ---------------------------------------------------------------------- value blocks
def _numeric(values, what):
    """Return a float64 matrix from nested lists of numbers; strings are refused."""
    try:
        array = np.asarray(values)
    except ValueError as error:
        raise ValueError(f"{what}: values must be a rectangular list of numbers ({error})"
                         ) from None
    if array.dtype.kind not in "iuf" or array.ndim != 2:
        raise ValueError(f"{what}: values must be a 2D list of numbers, found "
                         f"{'dtype ' + str(array.dtype) if array.ndim == 2 else array.ndim}"
                         f"{'' if array.ndim == 2 else 'D values'}")
    return array.astype(np.float64)


def _encode_block(frame, name, inline, suffix=".tsv"):
    values = np.asarray(frame.to_numpy())
    dtype = str(values.dtype) if str(values.dtype) in _VALUE_DTYPES else "float64"
    block = {
        "index": encode_index(frame.index, f"{name} index"),
        "columns": encode_index(frame.columns, f"{name} columns"),
        "dtype": dtype,
    }
    if inline:
        block["values"] = values.astype(np.float64).tolist()
    else:
        block["file"] = f"{name}{suffix}"
    return block


def _decode_block(block, name, directory=None):
    what = f"{name!r} block"
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ValueError(f"{what} must be an object or null, got {type(block).__name__}")
    source = "values" if directory is None else "file"
    expected = {"index", "columns", "dtype", source}
    if set(block) != expected:
        raise ValueError(f"{what}: expected keys {sorted(expected)}, found {sorted(block)}")
    index = decode_index(block["index"], f"{name} index")
    columns = decode_index(block["columns"], f"{name} columns")
    dtype = block["dtype"]
    if dtype not in _VALUE_DTYPES:
        raise ValueError(f"{what}: dtype must be one of {list(_VALUE_DTYPES)}, got {dtype!r}")
    if directory is None:
        values = _numeric(block["values"], what)
    else:
        allowed = (f"{name}.tsv", f"{name}.npz")
        if block["file"] not in allowed:
            raise ValueError(f"{what}: file must be {allowed[0]!r} or {allowed[1]!r}, got "
                             f"{block['file']!r}")
        path = Path(directory) / block["file"]
        if block["file"].endswith(".npz"):
            values = _read_npz_values(path)
        else:
            values = _read_tsv_values(path, index, columns)
    if values.shape != (len(index), len(columns)):
        raise ValueError(f"{what}: values have shape {values.shape} but there are "
                         f"{len(index)} row and {len(columns)} column labels")
    return pd.DataFrame(values.astype(dtype), index=index, columns=columns)


def _write_tsv(frame, path):
    text = pd.DataFrame(
        np.asarray(frame.to_numpy()),
        index=pd.Index([str(v) for v in frame.index], name=_label_name(frame.index)),
        columns=[str(v) for v in frame.columns],
    )
    text.to_csv(path, sep="\t")


def _label_name(index):
    names = [name for name in index.names if name is not None]
    return "|".join(str(name) for name in names) if names else ""


def _read_tsv_values(path, index, columns):
    """Read a TSV written by :meth:`SerializationMixin.save`: numbers only, labels checked."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file {str(path)!r}")
    frame = pd.read_csv(path, sep="\t", index_col=0, dtype=str, keep_default_na=False)
    found_columns = [str(c) for c in frame.columns]
    if found_columns != [str(c) for c in columns]:
        raise ValueError(f"{path.name}: column labels do not match {MODEL_FILE}")
    if [str(v) for v in frame.index] != [str(v) for v in index]:
        raise ValueError(f"{path.name}: row labels do not match {MODEL_FILE}")
    text = frame.to_numpy(dtype=object)
    try:
        values = np.array(text, dtype=np.float64).reshape(text.shape)
    except (TypeError, ValueError):
        bad = next(v for v in text.ravel() if not _is_number(v))
        raise ValueError(f"{path.name}: non-numeric value {bad!r}") from None
    return values


def _write_npz(frame, path):
    np.savez(path, values=np.asarray(frame.to_numpy()))


def _read_npz_values(path):
    """Read an ``.npz`` written by :meth:`SerializationMixin.save`: one float matrix only."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path.name}: not a valid .npz file")
    with np.load(path, allow_pickle=False) as archive:
        if list(archive.files) != ["values"]:
            raise ValueError(f"{path.name}: expected one array named 'values', found "
                             f"{list(archive.files)}")
        try:
            values = archive["values"]
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{path.name}: cannot read 'values' ({error})") from None
    if values.dtype.kind not in "iuf" or values.ndim != 2:
        raise ValueError(f"{path.name}: expected a 2D numeric array, found dtype "
                         f"{values.dtype} and shape {values.shape}")
    return values.astype(np.float64)


def _is_number(text):
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------- spec
def model_from_config(spec):
    """Build an (unfitted) encoding model from ``model.get_config()`` output.

    Only registered model names are accepted; the HRF is rebuilt with
    :func:`braincoder.hrf.hrf_model_from_config` (the package's HRF classes only).

    Parameters
    ----------
    spec : dict
        ``{"model": name, "hrf_model": {...}, "grid_coordinates": {"x": [...], "y": [...]},
        "model_stimulus_amplitude": true, "normalize_rf": false, "parameterisation":
        "mode_sd_log"}`` (all but ``model`` only for models that take them).

    Returns
    -------
    EncodingModel
        A new model without parameters.

    Raises
    ------
    ValueError
        For an unknown model name or keys the model does not take.
    TypeError
        For a registered class that is not an :class:`~braincoder.models.EncodingModel`
        (deep models save themselves as ``.keras`` files).

    Examples
    --------
    >>> from braincoder.models.serialization import model_from_config
    >>> model_from_config({"model": "gaussian_prf"}).get_parameter_labels()
    ['mu', 'sd', 'amplitude', 'baseline']
    """
    from ..hrf import hrf_model_from_config
    from .base import EncodingModel, HRFEncodingModel
    from .registry import get_model_class

    if not isinstance(spec, dict):
        raise ValueError(f"model spec must be an object, got {type(spec).__name__}")
    name = spec.get("model")
    if not isinstance(name, str):
        raise ValueError(f"model spec needs a string 'model' (registry name), got {name!r}")
    cls = get_model_class(name)
    if not (isinstance(cls, type) and issubclass(cls, EncodingModel)):
        raise TypeError(f"model {name!r} is not a classic encoding model and cannot be loaded "
                        "from JSON; deep models are saved as .keras files")
    accepted = set(inspect.signature(cls.__init__).parameters)
    allowed = {key for key in _SPEC_ARGUMENTS if key in accepted}
    extra = sorted(set(spec) - allowed - {"model"})
    if extra:
        raise ValueError(f"model spec of {name!r} has unexpected keys {extra}; allowed keys "
                         f"are {sorted(allowed | {'model'})}")
    kwargs = {}
    if "hrf_model" in spec:
        hrf = spec["hrf_model"]
        if not isinstance(hrf, dict) or not isinstance(hrf.get("class"), str):
            raise ValueError("model spec: 'hrf_model' must be an object with a string 'class'")
        kwargs["hrf_model"] = hrf_model_from_config(hrf)
    elif issubclass(cls, HRFEncodingModel):
        raise ValueError(f"model spec of {name!r} needs 'hrf_model'")
    if "grid_coordinates" in allowed:
        grid = spec.get("grid_coordinates")
        if not isinstance(grid, dict) or set(grid) != {"x", "y"}:
            raise ValueError(f"model spec of {name!r} needs 'grid_coordinates' as an object "
                             "with keys 'x' and 'y'")
        xy = _numeric([_list(grid["x"], "grid_coordinates x"),
                       _list(grid["y"], "grid_coordinates y")], "grid_coordinates")
        kwargs["grid_coordinates"] = pd.DataFrame(
            {"x": xy[0], "y": xy[1]}, index=pd.RangeIndex(xy.shape[1], name="pixel")
        )
    if "model_stimulus_amplitude" in spec:
        flag = spec["model_stimulus_amplitude"]
        if not isinstance(flag, bool):
            raise ValueError("model spec: 'model_stimulus_amplitude' must be true or false")
        kwargs["model_stimulus_amplitude"] = flag
    if "normalize_rf" in spec:
        if not isinstance(spec["normalize_rf"], bool):
            raise ValueError("model spec: 'normalize_rf' must be true or false")
        kwargs["normalize_rf"] = spec["normalize_rf"]
    if "parameterisation" in spec:
        if not isinstance(spec["parameterisation"], str):
            raise ValueError("model spec: 'parameterisation' must be a string")
        kwargs["parameterisation"] = spec["parameterisation"]
    return cls(**kwargs)


def _spec_of(model):
    """Return the model's config, refusing classes that would load as another class."""
    from .registry import get_model_class

    spec = model.get_config()
    name = spec.get("model")
    try:
        registered = get_model_class(name)
    except ValueError:
        registered = None
    if registered is not type(model):
        raise TypeError(f"{type(model).__name__} is not registered under its own name; "
                        "register it with braincoder.models.register_model to save it")
    return spec


def _omega_frame(model):
    omega = np.asarray(model.omega, dtype=np.float64)
    labels = None
    for candidate in (getattr(model.weights, "columns", None),
                      getattr(model.parameters, "index", None)):
        if candidate is not None and len(candidate) == len(omega):
            labels = candidate
            break
    if labels is None:
        labels = pd.RangeIndex(len(omega), name="voxel")
    return pd.DataFrame(omega, index=labels, columns=labels)


def _document(model, inline, include_values=True, npz_threshold=_NPZ_THRESHOLD):
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": _spec_of(model)}
    frames = {"parameters": model.parameters, "weights": model.weights,
              "omega": None if model.omega is None else _omega_frame(model)}
    for name in _BLOCKS:
        frame = frames[name] if include_values else None
        suffix = ".npz" if frame is not None and frame.size > npz_threshold else ".tsv"
        document[name] = None if frame is None else _encode_block(frame, name, inline, suffix)
    return document, frames


def _model_from_document(document, directory=None):
    if not isinstance(document, dict):
        raise ValueError(f"a model document must be a JSON object, got {type(document).__name__}")
    extra = sorted(set(document) - _DOCUMENT_KEYS)
    if extra:
        raise ValueError(f"model document has unexpected keys {extra}")
    if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a braincoder model document (expected format {FORMAT!r} "
                         f"version {FORMAT_VERSION})")
    model = model_from_config(document.get("spec"))
    blocks = {name: _decode_block(document.get(name), name, directory) for name in _BLOCKS}
    if blocks["parameters"] is not None:
        model.parameters = model._format_parameters(blocks["parameters"])
    if blocks["weights"] is not None:
        model.weights = model._format_weights(blocks["weights"])
    if blocks["omega"] is not None:
        model.omega = blocks["omega"].to_numpy(np.float64)
    return model


def _parse_json(text, what):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} is not valid JSON: {error}") from None


# ---------------------------------------------------------------------- public
class SerializationMixin:
    """Methods that save and load a model (mixed into :class:`~braincoder.models.EncodingModel`).

    Saved: the specification (``get_config()``), ``parameters``, ``weights`` and ``omega``
    with their labels. Not saved: ``paradigm`` and ``data``.
    """

    def to_json(self, include_values=True):
        """Return the model as a JSON document (specification and values inline).

        Parameters
        ----------
        include_values : bool, default True
            Include parameters, weights and omega; False gives the specification only.

        Returns
        -------
        str
            The JSON text.

        Raises
        ------
        TypeError
            If the model's class is not registered under its own name, or a label cannot be
            written as JSON.

        Examples
        --------
        >>> from braincoder.models import EncodingModel, GaussianPRF
        >>> model = GaussianPRF(parameters=[[1.0, 2.0, 3.0, 0.5]])
        >>> EncodingModel.from_json(model.to_json()).parameters.to_numpy().tolist()
        [[1.0, 2.0, 3.0, 0.5]]
        """
        document, _ = _document(self, inline=True, include_values=include_values)
        return json.dumps(document, allow_nan=False)

    @classmethod
    def from_json(cls, text):
        """Rebuild a model from :meth:`to_json` output.

        Parameters
        ----------
        text : str
            The JSON document.

        Returns
        -------
        EncodingModel
            The model, of the registered class named in the document.

        Raises
        ------
        ValueError
            For malformed documents, unknown model or HRF names, extra keys or non-numeric
            values.
        TypeError
            If the document names a model that is not an instance of ``cls``.
        """
        return _check_class(cls, _model_from_document(_parse_json(text, "model JSON")))

    def save(self, path, npz_threshold=_NPZ_THRESHOLD):
        """Save the model to a directory: ``model.json`` plus one file per value block.

        Parameters
        ----------
        path : str or path
            Directory (created if needed). Writes ``model.json`` and, where set,
            ``parameters.tsv``, ``weights.tsv`` and ``omega.tsv``: row labels in the first
            column, column labels in the header, values written in full precision. The
            labels with their names and dtypes are also kept in ``model.json``.
        npz_threshold : int, default 1000000
            Blocks with more values than this are written as ``<block>.npz`` (one array
            named ``values``) instead of TSV.

        Returns
        -------
        Path
            The directory.

        Raises
        ------
        TypeError
            If the model's class is not registered under its own name.
        """
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        document, frames = _document(self, inline=False, npz_threshold=npz_threshold)
        for name in _BLOCKS:
            if document[name] is not None:
                file = directory / document[name]["file"]
                (_write_npz if file.suffix == ".npz" else _write_tsv)(frames[name], file)
        (directory / MODEL_FILE).write_text(json.dumps(document, indent=1, allow_nan=False))
        from .persistence import write_header

        write_header(directory, "classic", FORMAT_VERSION, document["spec"]["model"])
        return directory

    @classmethod
    def load(cls, path):
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        path : str or path
            The directory (or its ``model.json``).

        Returns
        -------
        EncodingModel
            The model with its parameters, weights and omega.

        Raises
        ------
        FileNotFoundError
            If ``model.json`` or a listed TSV file is missing.
        ValueError
            For malformed or tampered files.
        TypeError
            If the saved model is not an instance of ``cls``.
        """
        path = Path(path)
        directory = path.parent if path.is_file() else path
        model_file = directory / MODEL_FILE
        if not model_file.is_file():
            raise FileNotFoundError(f"no {MODEL_FILE} in {str(directory)!r}")
        document = _parse_json(model_file.read_text(), str(model_file))
        return _check_class(cls, _model_from_document(document, directory))


def _check_class(cls, model):
    if not isinstance(model, cls):
        raise TypeError(f"the saved model is a {type(model).__name__}, not a {cls.__name__}")
    return model


def save_model(model, path, npz_threshold=_NPZ_THRESHOLD):
    """Save any registered model or decoder to a folder with a header.

    Encoding models are written as described in :meth:`SerializationMixin.save`; other
    registered objects (Keras models, the VAE-GAN, ridge and image decoders) in their own
    formats (see :mod:`braincoder.models.persistence`). Every folder gets a
    ``braincoder.json`` header naming the format, its version, the registry name and the
    library version.

    Parameters
    ----------
    model : object
        An instance of a registered class.
    path : str or path
        Directory to write.
    npz_threshold : int, default 1000000
        Encoding models only: blocks with more values than this are written as ``.npz``
        instead of TSV.

    Returns
    -------
    Path
        The directory.
    """
    from .base import EncodingModel
    from .persistence import save

    options = {"npz_threshold": npz_threshold} if isinstance(model, EncodingModel) else {}
    return save(model, path, **options)


def load_model(path):
    """Load any model or decoder saved with :func:`save_model` or an object's own ``save``.

    The folder's ``braincoder.json`` header names the format; folders and files saved
    without it (``model.json`` folders, ``.keras`` files, ridge decoder ``.json`` files,
    VAE-GAN folders) are recognised by their files.

    Parameters
    ----------
    path : str or path
        The directory (or one of the files described above).

    Returns
    -------
    object
        The model or decoder.

    Examples
    --------
    >>> import tempfile
    >>> from braincoder.models import GaussianPRF, load_model, save_model
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_model(GaussianPRF(parameters=[[1.0, 2.0, 3.0, 0.5]]), folder)
    >>> type(load_model(folder)).__name__
    'GaussianPRF'
    """
    from .persistence import load

    return load(path)
