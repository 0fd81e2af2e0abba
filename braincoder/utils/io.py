"""Reading tables (TSV/CSV, ``.npy``, ``.npz``, NIfTI), writing results, labels as JSON.

Nothing here unpickles: ``.npy``/``.npz`` files are read with ``allow_pickle=False`` and
tables are parsed as numbers only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .bids import (  # noqa: F401
    bids_entities,
    common_entities,
    file_kind,
    maps_metadata,
    write_maps,
)
from .cifti_io import read_cifti, write_cifti  # noqa: F401
from .formatting import TIME, VOXEL, to_frame
from .labels import decode_index, encode_index  # noqa: F401 - re-exported
from .surface_io import read_gifti, read_tr, write_gifti  # noqa: F401

__all__ = ["read_table", "write_table", "write_nifti", "save_results", "encode_index",
           "decode_index"]
# Surface readers and writers (surface_io, cifti_io) and BIDS-derivative maps (bids).
__all__ += ["read_gifti", "read_cifti", "read_tr", "write_gifti", "write_cifti", "write_maps",
            "maps_metadata", "bids_entities", "common_entities", "file_kind"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _suffix(path):
    name = Path(path).name.lower()
    for suffix in (".nii.gz", ".tsv.gz", ".csv.gz"):
        if name.endswith(suffix):
            return suffix
    return Path(path).suffix.lower()


def read_table(path, mask=None):
    """Read a time × column table from TSV/CSV, ``.npy``, ``.npz`` or NIfTI.

    Parameters
    ----------
    path : str or path
        File to read:

        - ``.tsv``/``.txt`` (tab-separated) or ``.csv`` (comma-separated), optionally
          gzipped: the header row holds the column labels, the first column the row index
          (e.g. time);
        - ``.npy``: a 1D, 2D or 3D array (3D arrays, e.g. time × height × width images, are
          flattened to time × pixels in row-major order);
        - ``.npz``: a single array, or the array named ``data``;
        - ``.nii``/``.nii.gz``: a 4D image (needs ``nibabel``), voxels selected by ``mask``;
        - ``.gii`` (GIfTI) and CIFTI-2 ``.dtseries.nii``: read with :func:`read_gifti` and
          :func:`read_cifti` (no ``mask``).
    mask : str, path or array-like of bool, optional
        NIfTI only: 3D mask (image file or boolean array) of the voxels to read; all voxels
        when None.

    Returns
    -------
    DataFrame
        Rows × columns. Arrays get a ``time`` row index and ``voxel`` column labels 0 … n−1;
        NIfTI columns are the flat (C-order) positions of the voxels in the volume.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For an unknown extension, non-numeric cells (the message names the column and row),
        an empty table, or a ``.npz`` file with several arrays but none named ``data``.
    ImportError
        For NIfTI files when ``nibabel`` is not installed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from braincoder.utils.io import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.zeros((3, 2)))
    >>> read_table(path).shape
    (3, 2)
    """
    path = Path(path)
    suffix = _suffix(path)
    if path.name.lower().endswith((".gii", ".dtseries.nii", ".dscalar.nii")):
        return _read_surface(path, mask)
    if suffix in _NIFTI_SUFFIXES:
        return _read_nifti(path, mask)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if mask is not None:
        raise ValueError("mask is only used with NIfTI files")
    if suffix in (".tsv", ".txt", ".tsv.gz"):
        return _read_text(path, "\t")
    if suffix in (".csv", ".csv.gz"):
        return _read_text(path, ",")
    if suffix == ".npy":
        return _array_frame(np.load(path, allow_pickle=False), path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if len(names) == 1:
                array = archive[names[0]]
            elif "data" in names:
                array = archive["data"]
            else:
                raise ValueError(f"{path.name}: holds arrays {names}; expected one array or an "
                                 "array named 'data'")
        return _array_frame(array, path)
    raise ValueError(f"{path.name}: unknown file type {suffix!r}; use .tsv, .csv, .npy, .npz, "
                     ".nii or .nii.gz")


def _read_text(path, separator):
    try:
        frame = pd.read_csv(path, sep=separator, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: cannot be read as a table ({str(error).strip()})"
                         ) from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{path.name}: the table is empty (shape {frame.shape}); the first "
                         "column must be the row index followed by value columns")
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(
            frame[column]
        ):
            converted = pd.to_numeric(frame[column], errors="coerce")
            bad = converted.isna() & frame[column].notna()
            row = frame.index[np.flatnonzero(bad.to_numpy())[0]] if bad.any() else None
            raise ValueError(
                f"{path.name}: column {column!r} holds non-numeric values (first at row "
                f"{row!r}: {frame[column].loc[row]!r})" if row is not None else
                f"{path.name}: column {column!r} is not numeric"
            )
    return frame.astype(np.float64)


def _array_frame(array, path):
    array = np.asarray(array)
    if array.dtype.kind not in "iufb":
        raise ValueError(f"{path.name}: expected a numeric array, found dtype {array.dtype}")
    if array.ndim == 3:
        array = array.reshape(array.shape[0], -1)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"{path.name}: expected a non-empty 1D, 2D or 3D array, got shape "
                         f"{array.shape}")
    return to_frame(array.astype(np.float64), path.name, index_name=TIME, columns_name=VOXEL)


def _nibabel(what):
    try:
        import nibabel
    except ImportError:
        raise ImportError(f"{what} NIfTI files needs nibabel: pip install braincoder[nifti]"
                          ) from None
    return nibabel


def _read_nifti(path, mask):
    nibabel = _nibabel("reading")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    image = nibabel.load(path)
    if type(image).__name__ == "Cifti2Image":
        return _read_surface(path, mask)
    volume = np.asarray(image.get_fdata(), dtype=np.float64)
    if volume.ndim != 4:
        raise ValueError(f"{path.name}: expected a 4D image (x, y, z, time), got shape "
                         f"{volume.shape}")
    if mask is None:
        selected = np.ones(volume.shape[:3], bool)
    else:
        if isinstance(mask, str | Path):
            mask = nibabel.load(mask).get_fdata()
        selected = np.asarray(mask) > 0
        if selected.shape != volume.shape[:3]:
            raise ValueError(f"mask has shape {selected.shape} but the image volume has "
                             f"shape {volume.shape[:3]}")
    positions = np.flatnonzero(selected.ravel())
    values = volume.reshape(-1, volume.shape[3])[positions].T
    return pd.DataFrame(values, index=pd.RangeIndex(values.shape[0], name=TIME),
                        columns=pd.Index(positions, name=VOXEL))


def _read_surface(path, mask):
    if mask is not None:
        raise ValueError(f"{path.name}: is a surface file; a mask selects voxels of NIfTI "
                         "volumes only (select vertices by column label instead)")
    return read_gifti(path) if path.name.lower().endswith(".gii") else read_cifti(path)


def write_nifti(frame, reference, path):
    """Write voxel-indexed values (e.g. parameter or R² maps) into a reference image's space.

    Parameters
    ----------
    frame : DataFrame or Series
        Values indexed by voxel, where each voxel label is its flat (C-order) position in
        the reference volume, as in the columns :func:`read_table` returns for NIfTI data.
        A Series or one-column DataFrame gives a 3D image; several columns give a 4D image
        with one volume per column, in column order.
    reference : str or path
        NIfTI image (3D or 4D) whose first three dimensions, affine and header define the
        output space, typically the BOLD run the values were fitted on.
    path : str or path
        Destination ``.nii`` or ``.nii.gz`` file.

    Returns
    -------
    Path
        The written file. Voxels absent from ``frame`` are NaN; values are stored as float32.

    Raises
    ------
    ImportError
        If ``nibabel`` is not installed.
    FileNotFoundError
        If ``reference`` does not exist.
    ValueError
        For a destination that is not NIfTI, voxel labels that are not integer positions
        inside the reference volume or that repeat, or non-numeric values.

    Examples
    --------
    >>> import pandas as pd
    >>> from braincoder.utils.io import write_nifti
    >>> r2 = pd.Series([0.4, 0.7], index=[0, 5], name="r2")
    >>> write_nifti(r2, "bold.nii.gz", "r2.nii.gz")  # doctest: +SKIP
    """
    nibabel = _nibabel("writing")
    path, reference = Path(path), Path(reference)
    if _suffix(path) not in _NIFTI_SUFFIXES:
        raise ValueError(f"{path.name}: write_nifti writes .nii or .nii.gz files")
    if not reference.is_file():
        raise FileNotFoundError(f"no such file: {str(reference)!r}")
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    image = nibabel.load(reference)
    if type(image).__name__ in ("Cifti2Image", "GiftiImage"):
        raise ValueError(f"{reference.name}: the reference is a surface file, not a NIfTI "
                         "volume; use write_gifti, write_cifti or write_maps")
    shape = tuple(image.shape[:3])
    try:
        positions = np.asarray(frame.index, dtype=np.float64)
    except (TypeError, ValueError):
        positions = np.array([np.nan])
    size = int(np.prod(shape))
    if not np.all(np.isfinite(positions)) or np.any(positions != np.round(positions)) \
            or np.any(positions < 0) or np.any(positions >= size):
        raise ValueError(f"voxel labels must be integer positions 0 … {size - 1} in the "
                         f"reference volume of shape {shape}; got e.g. {frame.index[:3].tolist()}")
    positions = positions.astype(np.int64)
    if len(np.unique(positions)) != len(positions):
        raise ValueError("voxel labels repeat: each voxel must appear once")
    try:
        values = frame.to_numpy(dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError("write_nifti needs numeric values") from None
    volume = np.full((size, values.shape[1]), np.nan, dtype=np.float32)
    volume[positions] = values
    volume = volume.reshape(*shape, values.shape[1])
    if values.shape[1] == 1:
        volume = volume[..., 0]
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)
    nibabel.save(nibabel.Nifti1Image(volume, image.affine, header), path)
    return path


def write_table(frame, path):
    """Write a DataFrame or Series as TSV (or CSV for a ``.csv`` path), labels kept.

    Parameters
    ----------
    frame : DataFrame or Series
        Table to write; the index becomes the first column.
    path : str or path
        Destination (``.csv`` → commas, anything else → tabs).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    separator = "," if _suffix(path) in (".csv", ".csv.gz") else "\t"
    frame.to_csv(path, sep=separator)
    return path


def save_results(directory, parameters=None, r2=None, predictions=None, spec=None):
    """Write fit results to a directory as TSV and JSON files.

    Parameters
    ----------
    directory : str or path
        Output directory (created if needed).
    parameters : DataFrame, optional
        Voxel × parameter estimates → ``parameters.tsv``.
    r2 : Series or DataFrame, optional
        R² per voxel → ``r2.tsv``.
    predictions : DataFrame, optional
        Time × voxel predictions → ``predictions.tsv``.
    spec : dict or str, optional
        Model specification (a dict, e.g. ``model.get_config()``, or JSON text such as
        ``model.to_json()``) → ``model.json``.

    Returns
    -------
    dict
        File role → written path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in (("parameters", parameters), ("r2", r2), ("predictions", predictions)):
        if table is not None:
            written[name] = write_table(table, directory / f"{name}.tsv")
    if spec is not None:
        text = spec if isinstance(spec, str) else json.dumps(spec, indent=1, allow_nan=False)
        json.loads(text)  # refuse to write something that is not JSON
        written["spec"] = directory / "model.json"
        written["spec"].write_text(text)
    return written
