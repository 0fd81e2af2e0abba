"""Surface data: GIfTI time series (one file per hemisphere) read and written; vertex labels.

Vertex labels
-------------
Readers label every vertex (and CIFTI voxel) so that results can be written back to the
right place. The default, ``labels="string"``, gives plain strings that survive a TSV round
trip and the command line:

=========================  ==============================  ============================
element                    string label                    MultiIndex row
=========================  ==============================  ============================
left-cortex vertex 123     ``L_000123``                    ``("L", 123)``
right-cortex vertex 45     ``R_000045``                    ``("R", 45)``
other surface vertex       ``CEREBELLUM_000007``           ``("CEREBELLUM", 7, -1, -1, -1)``
CIFTI voxel (i, j, k)      ``THALAMUS_LEFT_012_034_005``   ``("THALAMUS_LEFT", -1, 12, 34, 5)``
=========================  ==============================  ============================

``labels="multiindex"`` gives a MultiIndex instead: levels ``(hemi, vertex)`` for GIfTI and
``(structure, vertex, i, j, k)`` for CIFTI (−1 where a level does not apply, as in nibabel's
``BrainModelAxis``). Cortex structures are called ``L`` and ``R`` in both formats, so an
fsLR GIfTI pair and an fsLR CIFTI file give the same cortical labels.

GIfTI files from FreeSurfer and fMRIPrep store the repetition time as the ``TimeStep``
metadata of each data array, in milliseconds; readers put it, in seconds, in
``frame.attrs["tr"]`` (also see :func:`read_tr`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .formatting import TIME, VOXEL

__all__ = ["read_gifti", "write_gifti", "read_tr"]

_HEMI_STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}
_STRUCTURE_HEMIS = {"cortexleft": "L", "cortexright": "R", "cortex_left": "L",
                    "cortex_right": "R", "left": "L", "right": "R"}
_VALUE_INTENTS = ("NIFTI_INTENT_TIME_SERIES", "NIFTI_INTENT_NONE", "NIFTI_INTENT_SHAPE",
                  "NIFTI_INTENT_ESTIMATE")
_HEMI_ENTITY = re.compile(r"(?:^|_)hemi-([A-Za-z]+)(?:_|\.|$)")
_MS_THRESHOLD = 50.0  # TimeStep values >= this are milliseconds (FreeSurfer convention)


def _nibabel(what):
    try:
        import nibabel
    except ImportError:
        raise ImportError(f"{what} needs nibabel: pip install braincoder[nifti]") from None
    return nibabel


def _check_style(labels):
    if labels not in ("string", "multiindex"):
        raise ValueError(f"labels must be 'string' or 'multiindex', got {labels!r}")


def _load(path, what):
    nibabel = _nibabel(f"{what} surface files")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        return nibabel.load(path)
    except Exception as error:  # nibabel raises many types for unreadable files
        raise ValueError(f"{path.name}: cannot be read by nibabel ({error})") from None


# ---------------------------------------------------------------------- GIfTI
def _is_gifti(image):
    return type(image).__name__ == "GiftiImage"


def _intent(array):
    from nibabel.nifti1 import intent_codes

    return intent_codes.niistring[array.intent]


def _gifti_hemi(path, image, given=None):
    """Hemisphere of a GIfTI file: given, from the ``hemi-`` entity, or from its metadata."""
    match = _HEMI_ENTITY.search(path.name)
    from_name = match.group(1).upper()[:1] if match else None
    structure = str(image.meta.get("AnatomicalStructurePrimary", "")).lower()
    from_meta = _STRUCTURE_HEMIS.get(structure)
    found = [h for h in (given, from_name, from_meta) if h is not None]
    if not found:
        raise ValueError(f"{path.name}: cannot tell the hemisphere; name the file with "
                         "hemi-L or hemi-R, set its AnatomicalStructurePrimary metadata, or "
                         "pass {'L': path}")
    if any(h not in ("L", "R") for h in found) or len(set(found)) > 1:
        raise ValueError(f"{path.name}: conflicting hemispheres (given {given!r}, file name "
                         f"{from_name!r}, metadata {structure or None!r})")
    return found[0]


def _time_step(array, path):
    value = array.meta.get("TimeStep")
    if value is None:
        return None
    try:
        step = float(value)
    except ValueError:
        raise ValueError(f"{path.name}: TimeStep metadata {value!r} is not a number") from None
    if not np.isfinite(step) or step <= 0:
        return None
    return step / 1000.0 if step >= _MS_THRESHOLD else step


def _gifti_values(path, image):
    """(n_arrays, n_vertices) values, TR and map names of a GIfTI file's data arrays."""
    intents = [_intent(array) for array in image.darrays]
    keep = [i for i, name in enumerate(intents) if name == "NIFTI_INTENT_TIME_SERIES"]
    if not keep:
        keep = [i for i, name in enumerate(intents) if name in _VALUE_INTENTS]
    if not keep:
        found = sorted({name.replace("NIFTI_INTENT_", "") for name in intents}) or ["none"]
        raise ValueError(f"{path.name}: holds no time-series data arrays (intents found: "
                         f"{', '.join(found)}); surface meshes (.surf.gii) and label files "
                         "are not data")
    arrays = [image.darrays[i] for i in keep]
    if len(arrays) == 1 and np.ndim(arrays[0].data) == 2:
        values = np.asarray(arrays[0].data, dtype=np.float64).T  # vertices × time stored
        names = None
    else:
        shapes = {np.shape(array.data) for array in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"{path.name}: data arrays must all be 1D with one value per "
                             f"vertex, found shapes {sorted(shapes)}")
        values = np.stack([np.asarray(array.data, dtype=np.float64) for array in arrays])
        names = [array.meta.get("Name") for array in arrays]
        is_series = any(intents[i] == "NIFTI_INTENT_TIME_SERIES" for i in keep)
        names = None if is_series or None in names else names
    return values, _time_step(arrays[0], path), names


def _gifti_columns(hemi, vertices, labels):
    if labels == "multiindex":
        return pd.MultiIndex.from_arrays([np.full(len(vertices), hemi), vertices],
                                         names=["hemi", "vertex"])
    return pd.Index([f"{hemi}_{v:06d}" for v in vertices], name=VOXEL)


def read_gifti(paths, labels="string"):
    """Read a GIfTI time series (one file per hemisphere) as a time × vertex table.

    Parameters
    ----------
    paths : str, path, list of paths, or dict
        One ``.func.gii`` file, or one per hemisphere (e.g. fMRIPrep's
        ``..._hemi-L_space-fsnative_bold.func.gii`` and its ``hemi-R`` partner). The
        hemisphere of each file comes from the ``hemi-`` entity of its name or its
        ``AnatomicalStructurePrimary`` metadata; a dict ``{"L": path, "R": path}`` states it.
    labels : {"string", "multiindex"}, default "string"
        Vertex labels ``L_000123`` or a ``(hemi, vertex)`` MultiIndex (see the module notes).

    Returns
    -------
    DataFrame, shape (n_timepoints, n_vertices)
        Left hemisphere first. Rows are ``time`` 0 … n−1 (or the data arrays' ``Name``
        metadata for map files that are not time series). ``attrs["tr"]`` holds the
        repetition time in seconds from the ``TimeStep`` metadata (None if absent) and
        ``attrs["source"]`` the file names.

    Raises
    ------
    ValueError
        Naming the file: not a GIfTI file, no data arrays (e.g. a surface mesh), unknown or
        repeated hemispheres, hemispheres with different numbers of time points or TRs.
    FileNotFoundError
        If a file does not exist.

    Examples
    --------
    >>> from braincoder.utils.io import read_gifti
    >>> bold = read_gifti(["sub-01_hemi-L_bold.func.gii",
    ...                    "sub-01_hemi-R_bold.func.gii"])  # doctest: +SKIP
    >>> bold.columns[:2].tolist(), bold.attrs["tr"]  # doctest: +SKIP
    (['L_000000', 'L_000001'], 1.5)
    """
    _check_style(labels)
    if isinstance(paths, dict):
        items = [(str(hemi).upper(), Path(path)) for hemi, path in paths.items()]
    elif isinstance(paths, str | Path):
        items = [(None, Path(paths))]
    else:
        items = [(None, Path(path)) for path in paths]
    if not items:
        raise ValueError("read_gifti needs at least one file")
    parts = {}
    for given, path in items:
        image = _load(path, "reading")
        if not _is_gifti(image):
            raise ValueError(f"{path.name}: not a GIfTI file ({type(image).__name__}); "
                             "volumes are read with read_table, CIFTI-2 files with read_cifti")
        hemi = _gifti_hemi(path, image, given)
        if hemi in parts:
            raise ValueError(f"{path.name}: hemisphere {hemi} given twice (also "
                             f"{parts[hemi][0].name})")
        parts[hemi] = (path, *_gifti_values(path, image))
    ordered = [parts[h] for h in ("L", "R") if h in parts]
    first = ordered[0]
    for other in ordered[1:]:
        if other[1].shape[0] != first[1].shape[0]:
            raise ValueError(f"{other[0].name}: has {other[1].shape[0]} time points but "
                             f"{first[0].name} has {first[1].shape[0]}")
        if (other[2] is None) != (first[2] is None) or (
                other[2] is not None and not np.isclose(other[2], first[2])):
            raise ValueError(f"{other[0].name}: TR {other[2]} differs from {first[0].name} "
                             f"({first[2]})")
    columns = [_gifti_columns(h, np.arange(parts[h][1].shape[1]), labels)
               for h in ("L", "R") if h in parts]
    columns = columns[0].append(columns[1:]) if len(columns) > 1 else columns[0]
    names = first[3] if all(part[3] == first[3] for part in ordered) else None
    index = (pd.Index(names, name="map") if names is not None
             else pd.RangeIndex(first[1].shape[0], name=TIME))
    frame = pd.DataFrame(np.concatenate([part[1] for part in ordered], axis=1), index=index,
                         columns=columns)
    frame.attrs["tr"] = first[2]
    frame.attrs["source"] = [part[0].name for part in ordered]
    return frame


def read_tr(path):
    """Return the repetition time in seconds stored in a GIfTI, CIFTI-2 or NIfTI file.

    Parameters
    ----------
    path : str or path
        GIfTI (``TimeStep`` metadata of the first data array; values of 50 or more are
        milliseconds, as FreeSurfer writes them), CIFTI-2 (step of the series axis) or 4D
        NIfTI (fourth voxel size, when the header states its time unit).

    Returns
    -------
    float or None
        The TR, or None when the file does not state it.

    Examples
    --------
    >>> from braincoder.utils.io import read_tr
    >>> read_tr("sub-01_hemi-L_bold.func.gii")  # doctest: +SKIP
    1.5
    """
    from .cifti_io import _is_cifti

    path = Path(path)
    image = _load(path, "reading")
    if _is_gifti(image):
        return _gifti_values(path, image)[1]
    if _is_cifti(image):
        rows = image.header.get_axis(0)
        return float(rows.step) if getattr(rows, "unit", None) == "SECOND" else None
    header = getattr(image, "header", None)
    if header is None or len(image.shape) != 4:
        return None
    step = float(header.get_zooms()[3])
    scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(header.get_xyzt_units()[1])
    return step * scale if scale is not None and step > 0 else None


# ---------------------------------------------------------------------- writers
def _positions(frame, reference_labels, what):
    """Rows of ``reference_labels`` for every row of ``frame`` (error on unknown labels)."""
    positions = reference_labels.get_indexer(frame.index)
    if np.any(positions < 0):
        unknown = frame.index[positions < 0]
        raise ValueError(f"{what}: {len(unknown)} labels are not in the reference, e.g. "
                         f"{unknown[:5].tolist()} (reference labels look like "
                         f"{reference_labels[:2].tolist()})")
    if len(np.unique(positions)) != len(positions):
        raise ValueError(f"{what}: labels repeat; each vertex must appear once")
    return positions


def _values(frame, what):
    try:
        return frame.to_numpy(dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: values must be numeric") from None


def _as_frame(frame):
    return frame.to_frame() if isinstance(frame, pd.Series) else frame


def _hemi_rows(index, hemi):
    """Boolean mask of the rows of ``index`` that belong to hemisphere ``hemi``."""
    if isinstance(index, pd.MultiIndex):
        return np.asarray(index.get_level_values(0) == hemi)
    return np.asarray(index.astype(str).str.startswith(f"{hemi}_"))


def write_gifti(frame, reference, path):
    """Write vertex maps of one hemisphere to a GIfTI ``.func.gii`` file, one array per column.

    Parameters
    ----------
    frame : DataFrame or Series
        Values indexed by vertex label as :func:`read_gifti` gives them (``L_000123`` or a
        ``(hemi, vertex)`` MultiIndex), e.g. a parameter table; columns become data arrays
        named by their label (``Name`` metadata). Rows of the other hemisphere are skipped.
    reference : str or path
        GIfTI file of the hemisphere (the fitted ``.func.gii`` run or a ``.surf.gii``
        mesh) that gives the hemisphere and the number of vertices.
    path : str or path
        Destination ending in ``.gii`` (e.g. ``..._desc-prf_x.func.gii``).

    Returns
    -------
    Path
        The written file: float32 values, NaN at vertices absent from ``frame``.

    Raises
    ------
    ValueError
        Naming the file: a reference that is not GIfTI (e.g. a NIfTI volume), a destination
        not ending in ``.gii``, labels outside the reference surface, no vertex of the
        reference's hemisphere.

    Examples
    --------
    >>> from braincoder.utils.io import write_gifti
    >>> write_gifti(parameters, "sub-01_hemi-L_bold.func.gii",
    ...             "sub-01_hemi-L_desc-prf_statmap.func.gii")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.name.lower().endswith(".gii"):
        raise ValueError(f"{path.name}: write_gifti writes .gii files")
    hemi, n_vertices = _gifti_reference(reference)
    return _write_gifti(frame, hemi, n_vertices, path, Path(reference).name)


def _gifti_reference(reference):
    """Hemisphere and vertex count of a GIfTI reference file."""
    reference = Path(reference)
    image = _load(reference, "writing")
    if not _is_gifti(image):
        raise ValueError(f"{reference.name}: the reference is not a GIfTI file "
                         f"({type(image).__name__}); maps of volumes are written with "
                         "write_nifti, of CIFTI-2 files with write_cifti")
    if not image.darrays:
        raise ValueError(f"{reference.name}: holds no data arrays to take the vertex count from")
    return _gifti_hemi(reference, image), int(np.shape(image.darrays[0].data)[0])


def _write_gifti(frame, hemi, n_vertices, path, reference_name):
    from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiMetaData

    nibabel = _nibabel("writing GIfTI files")
    frame = _as_frame(frame)
    rows = _hemi_rows(frame.index, hemi)
    if not rows.any():
        raise ValueError(f"{path.name}: the maps hold no vertex of hemisphere {hemi} (the "
                         f"hemisphere of {reference_name}); labels look like "
                         f"{frame.index[:2].tolist()}")
    style = "multiindex" if isinstance(frame.index, pd.MultiIndex) else "string"
    labels = _gifti_columns(hemi, np.arange(n_vertices), style)
    part = frame.iloc[np.flatnonzero(rows)]
    if style == "string":
        part = part.set_axis(part.index.astype(str), axis=0)
    positions = _positions(part, labels, f"{path.name} ({reference_name}: {n_vertices} "
                                         f"vertices)")
    values = np.full((n_vertices, part.shape[1]), np.nan, dtype=np.float32)
    values[positions] = _values(part, path.name)
    arrays = [GiftiDataArray(np.ascontiguousarray(values[:, i]), intent="NIFTI_INTENT_ESTIMATE",
                             datatype="NIFTI_TYPE_FLOAT32",
                             meta=GiftiMetaData({"Name": str(column)}))
              for i, column in enumerate(part.columns)]
    meta = GiftiMetaData({"AnatomicalStructurePrimary": _HEMI_STRUCTURES[hemi]})
    nibabel.save(GiftiImage(darrays=arrays, meta=meta), path)
    return path
