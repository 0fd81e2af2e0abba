"""Maps back where the data came from: BIDS-derivative names, JSON sidecars, one writer.

:func:`write_maps` writes a voxel × map table (fitted parameters and R²) into the space of
the input files — GIfTI per hemisphere, CIFTI-2 ``dscalar`` or NIfTI — with names that
follow the BIDS derivatives convention, built from the entities of the input names:

- ``layout="split"`` (the default): one file per map, the map name as the suffix,
  ``sub-01_ses-1_task-prf_hemi-L_space-fsnative_desc-prf_x.func.gii``,
  ``sub-01_space-fsLR_den-91k_desc-prf_r2.dscalar.nii``;
- ``layout="statmap"``: one multi-map file with the map names stored in the file (GIfTI
  ``Name`` metadata, CIFTI scalar-axis names; NIfTI volumes in column order), e.g.
  ``sub-01_hemi-L_space-fsnative_desc-prf_statmap.func.gii``.

Every data file gets a JSON sidecar with the same stem (map names, sources, model
specification, HRF, fit options and the library version).
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["bids_entities", "common_entities", "file_kind", "maps_metadata", "write_maps"]

# Entity order of BIDS file names (raw and derivatives); others follow in input order.
_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "part",
          "hemi", "space", "cohort", "res", "den", "label", "desc")
_EXTENSIONS = {"gifti": ".func.gii", "cifti": ".dscalar.nii", "nifti": ".nii.gz"}
_ENTITY = re.compile(r"^([a-zA-Z0-9]+)-([a-zA-Z0-9]+)$")


def bids_entities(path):
    """Split a BIDS file name into its entities, suffix and extension.

    Parameters
    ----------
    path : str or path
        File name or path, e.g.
        ``sub-01_ses-1_task-prf_run-1_hemi-L_space-fsnative_bold.func.gii``.

    Returns
    -------
    dict
        Entities in file-name order (``{"sub": "01", "ses": "1", "task": "prf", "run": "1",
        "hemi": "L", "space": "fsnative"}``) plus ``"suffix"`` (``"bold"``, or None) and
        ``"extension"`` (``".func.gii"``). Parts that are not ``key-value`` pairs and not
        the final suffix are ignored.

    Examples
    --------
    >>> from braincoder.utils.io import bids_entities
    >>> bids_entities("sub-01_space-fsLR_den-91k_bold.dtseries.nii")
    {'sub': '01', 'space': 'fsLR', 'den': '91k', 'suffix': 'bold', 'extension': '.dtseries.nii'}
    """
    name = Path(path).name
    stem, dot, rest = name.partition(".")
    entities = {}
    parts = stem.split("_")
    suffix = None
    for i, part in enumerate(parts):
        match = _ENTITY.match(part)
        if match:
            entities.setdefault(match.group(1), match.group(2))
        elif i == len(parts) - 1 and part.isalnum():
            suffix = part
    entities["suffix"] = suffix
    entities["extension"] = dot + rest
    return entities


def common_entities(paths, drop=("desc",)):
    """Entities shared, with the same value, by every file name.

    Parameters
    ----------
    paths : sequence of str or path
        Input files (e.g. the runs of a fit).
    drop : sequence of str, default ("desc",)
        Entities never kept.

    Returns
    -------
    dict
        Entity → value, in BIDS order; entities that differ between files (``run`` of
        several runs, ``hemi`` of two hemispheres) are left out.

    Examples
    --------
    >>> from braincoder.utils.io import common_entities
    >>> common_entities(["sub-01_run-1_bold.nii.gz", "sub-01_run-2_bold.nii.gz"])
    {'sub': '01'}
    """
    found = [bids_entities(path) for path in paths]
    if not found:
        return {}
    keys = [key for key in found[0] if key not in ("suffix", "extension", *drop)]
    shared = {key: found[0][key] for key in keys
              if all(entry.get(key) == found[0][key] for entry in found[1:])}
    return _ordered(shared)


def _label(name):
    """Return the BIDS suffix of a map name, camelCase (``hrf_delay`` → ``hrfDelay``)."""
    words = [word for word in re.split(r"[^0-9a-zA-Z]+", str(name)) if word]
    if not words:
        raise ValueError(f"map name {name!r} has no letters or digits to build a file name")
    return words[0] + "".join(word[:1].upper() + word[1:] for word in words[1:])


def _prefix(entities, desc):
    parts = [f"{key}-{value}" for key, value in entities.items() if key != "desc"]
    if desc:
        if not str(desc).isalnum():
            raise ValueError(f"desc must be alphanumeric (a BIDS label), got {desc!r}")
        parts.append(f"desc-{desc}")
    return "_".join(parts)


def _ordered(entities):
    ranked = [key for key in _ORDER if key in entities]
    return {key: entities[key] for key in ranked + [k for k in entities if k not in ranked]}


def _call_with_reference(write, reference, values, path):
    return write(values, reference, path)


def file_kind(path, open_file=False):
    """Tell the format of a data file from its name: GIfTI, CIFTI-2, NIfTI or a table.

    Parameters
    ----------
    path : str or path
        File name.
    open_file : bool, default False
        Open a ``.nii``/``.nii.gz`` file whose name does not say CIFTI to tell a CIFTI-2
        file from a NIfTI one (nibabel); otherwise the name alone decides.

    Returns
    -------
    str
        ``"gifti"``, ``"cifti"``, ``"nifti"`` or ``"table"``.
    """
    name = Path(path).name.lower()
    if name.endswith(".gii"):
        return "gifti"
    if name.endswith((".dtseries.nii", ".dscalar.nii")):
        return "cifti"
    if name.endswith((".nii", ".nii.gz")):
        if not open_file:
            return "nifti"
        from .cifti_io import _is_cifti
        from .surface_io import _load

        return "cifti" if _is_cifti(_load(path, "reading")) else "nifti"
    return "table"


def _kind(path):
    kind = file_kind(path, open_file=True)
    if kind == "table":
        raise ValueError(f"{Path(path).name}: maps are written in the space of NIfTI, GIfTI "
                         "or CIFTI-2 inputs; this file is a table")
    return kind


def maps_metadata(model=None, fit_options=None, **extra):
    """Sidecar metadata for fitted maps: model specification, HRF, fit options, version.

    Parameters
    ----------
    model : EncodingModel, optional
        The fitted model; its specification (without fitted values) and HRF are recorded.
    fit_options : dict, optional
        Options of the fit (grid, iterations, preprocessing), recorded as ``FitOptions``.
    **extra
        Further JSON-serialisable entries.

    Returns
    -------
    dict
        ``Model``, ``ModelSpec``, ``HRF``, ``FitOptions``, ``BraincoderVersion`` and the
        extra entries.

    Examples
    --------
    >>> from braincoder.utils.io import maps_metadata
    >>> maps_metadata(fit_options={"method": "lm"})["FitOptions"]
    {'method': 'lm'}
    """
    from .. import __version__

    metadata = {"BraincoderVersion": __version__}
    if model is not None:
        spec = json.loads(model.to_json(include_values=False))
        spec = spec.get("spec", spec) if isinstance(spec, dict) else spec
        metadata["Model"] = spec.get("model") if isinstance(spec, dict) else None
        metadata["ModelSpec"] = spec
        metadata["HRF"] = spec.get("hrf_model") if isinstance(spec, dict) else None
    metadata["FitOptions"] = dict(fit_options or {})
    metadata.update(extra)
    return metadata


def write_maps(maps, reference, directory, desc="prf", layout="split", sources=None,
               metadata=None):
    """Write voxel × map values in the space of the input files, with BIDS names and sidecars.

    Parameters
    ----------
    maps : DataFrame or Series
        Values indexed by the voxel labels of the readers (:func:`read_gifti`,
        :func:`read_cifti`, NIfTI positions of :func:`read_table`), one column per map,
        e.g. ``parameters.join(r2)``.
    reference : str, path or list of paths
        The fitted input files that define the space: GIfTI files (one per hemisphere), a
        CIFTI-2 dense file, or a NIfTI image.
    directory : str or path
        Output directory (created if needed).
    desc : str, default "prf"
        The ``desc-`` entity of the written names.
    layout : {"split", "statmap"}, default "split"
        One file per map, or one multi-map ``statmap`` file per hemisphere or space.
    sources : list of str or path, optional
        All input files (e.g. every run); the names keep the entities they share (so
        ``run`` disappears when several runs were averaged). Default: ``reference``.
    metadata : dict, optional
        Extra sidecar entries, e.g. from :func:`maps_metadata`.

    Returns
    -------
    list of Path
        The written data files (each with a ``.json`` sidecar of the same stem).

    Raises
    ------
    ValueError
        For an unknown layout, a reference that is a table or mixes formats, maps whose
        labels do not belong to the reference (the message names the file), or map names
        that give the same file name.

    Examples
    --------
    >>> from braincoder.utils.io import write_maps
    >>> write_maps(parameters.join(r2), ["sub-01_hemi-L_space-fsnative_bold.func.gii",
    ...            "sub-01_hemi-R_space-fsnative_bold.func.gii"], "prf")  # doctest: +SKIP
    [PosixPath('prf/sub-01_hemi-L_space-fsnative_desc-prf_x.func.gii'), ...]
    """
    from .cifti_io import write_cifti
    from .io import write_nifti
    from .surface_io import _gifti_reference, _hemi_rows, _write_gifti

    if layout not in ("split", "statmap"):
        raise ValueError(f"layout must be 'split' or 'statmap', got {layout!r}")
    references = [Path(reference)] if isinstance(reference, str | Path) else [
        Path(path) for path in reference]
    if not references:
        raise ValueError("write_maps needs a reference file")
    kinds = {path.name: _kind(path) for path in references}
    kind = next(iter(kinds.values()))
    if len(set(kinds.values())) > 1:
        raise ValueError(f"reference files mix formats: {kinds}")
    if kind != "gifti" and len(references) > 1:
        raise ValueError(f"one {kind} reference expected, got {[p.name for p in references]}")
    maps = maps.to_frame() if isinstance(maps, pd.Series) else maps
    names = [_label(column) for column in maps.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"map names {list(maps.columns)} give the same file names {names}")
    shared = common_entities(sources if sources is not None else references,
                             drop=("desc", "hemi"))
    outputs = []  # (reference, entities, writer)
    if kind == "gifti":
        covered = np.zeros(len(maps), bool)
        for path in references:
            hemi, n_vertices = _gifti_reference(path)
            rows = _hemi_rows(maps.index, hemi)
            covered |= rows
            if rows.any():
                outputs.append((path, _ordered({**shared, "hemi": hemi}), partial(
                    _write_gifti, hemi=hemi, n_vertices=n_vertices,
                    reference_name=path.name)))
        if not covered.all():
            raise ValueError(f"GIfTI reference(s) {[p.name for p in references]} do not "
                             f"cover {int((~covered).sum())} map rows, e.g. "
                             f"{maps.index[~covered][:5].tolist()}")
    else:
        write = write_cifti if kind == "cifti" else write_nifti
        outputs.append((references[0], shared,
                        partial(_call_with_reference, write, references[0])))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sidecar = {"MapNames": [str(column) for column in maps.columns],
               "Sources": sorted({Path(p).name for p in (sources or references)}),
               **(metadata or {})}
    targets = []
    for _, entities, write in outputs:
        prefix = _prefix(entities, desc)
        pieces = [(maps, "statmap")] if layout == "statmap" else [
            (maps[[column]], name) for column, name in zip(maps.columns, names, strict=True)]
        for values, suffix in pieces:
            stem = f"{prefix}_{suffix}" if prefix else suffix
            targets.append((values, write, directory / f"{stem}{_EXTENSIONS[kind]}", stem))
    written = []
    for values, write, target, stem in targets:
        written.append(Path(write(values, path=target)))
        entry = dict(sidecar, MapNames=[str(column) for column in values.columns])
        (directory / f"{stem}.json").write_text(json.dumps(entry, indent=1, default=str))
    return written
