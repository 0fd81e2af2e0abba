"""CIFTI-2 dense files (``.dtseries.nii``, ``.dscalar.nii``), read and written.

Grayordinate labels are described in :mod:`braincoder.utils.surface_io`: ``L_000123`` and
``R_000045`` for cortical vertices, ``THALAMUS_LEFT_012_034_005`` for voxels, or a
``(structure, vertex, i, j, k)`` MultiIndex.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .formatting import TIME, VOXEL
from .surface_io import _as_frame, _check_style, _load, _nibabel, _positions, _values

__all__ = ["read_cifti", "write_cifti"]


def _is_cifti(image):
    return type(image).__name__ == "Cifti2Image"


def _brain_models(path, image):
    from nibabel.cifti2 import cifti2_axes

    axes = [image.header.get_axis(i) for i in range(image.ndim)]
    if len(axes) != 2 or not isinstance(axes[1], cifti2_axes.BrainModelAxis):
        kinds = [type(axis).__name__ for axis in axes]
        raise ValueError(f"{path.name}: expected a dense CIFTI-2 file (rows × brain models), "
                         f"found axes {kinds}")
    return axes


def _cifti_columns(axis, labels):
    short = np.array([name.replace("CIFTI_STRUCTURE_", "") for name in axis.name],
                     dtype=object)
    short[short == "CORTEX_LEFT"] = "L"
    short[short == "CORTEX_RIGHT"] = "R"
    vertex = np.asarray(axis.vertex, dtype=np.int64)
    voxel = np.asarray(axis.voxel, dtype=np.int64)
    if labels == "multiindex":
        return pd.MultiIndex.from_arrays(
            [short, vertex, voxel[:, 0], voxel[:, 1], voxel[:, 2]],
            names=["structure", "vertex", "i", "j", "k"])
    surface = np.asarray(axis.surface_mask)
    return pd.Index(
        [f"{s}_{v:06d}" if on_surface else f"{s}_{i:03d}_{j:03d}_{k:03d}"
         for s, v, (i, j, k), on_surface in zip(short, vertex, voxel, surface, strict=True)],
        name=VOXEL)


def read_cifti(path, labels="string"):
    """Read a CIFTI-2 dense file (``.dtseries.nii`` or ``.dscalar.nii``) as a table.

    Parameters
    ----------
    path : str or path
        Dense time series (e.g. fMRIPrep's ``..._space-fsLR_den-91k_bold.dtseries.nii``)
        or dense scalar maps.
    labels : {"string", "multiindex"}, default "string"
        Grayordinate labels built from the brain-model structure and vertex or voxel
        indices: ``L_000123``, ``THALAMUS_LEFT_012_034_005``, or a ``(structure, vertex,
        i, j, k)`` MultiIndex (see the module notes).

    Returns
    -------
    DataFrame, shape (n_rows, n_grayordinates)
        Rows are ``time`` 0 … n−1 for a series (``attrs["tr"]``: the series step in
        seconds) or the map names (``map``) for scalar files; ``attrs["source"]`` holds the
        file name.

    Raises
    ------
    ValueError
        Naming the file: not a CIFTI-2 file (e.g. a NIfTI volume), or not a dense file.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> from braincoder.utils.io import read_cifti
    >>> bold = read_cifti("sub-01_space-fsLR_den-91k_bold.dtseries.nii")  # doctest: +SKIP
    >>> bold.shape  # doctest: +SKIP
    (240, 91282)
    """
    from nibabel.cifti2 import cifti2_axes

    _check_style(labels)
    path = Path(path)
    image = _load(path, "reading")
    if not _is_cifti(image):
        raise ValueError(f"{path.name}: not a CIFTI-2 file ({type(image).__name__}); NIfTI "
                         "volumes are read with read_table(path, mask=...), GIfTI files "
                         "with read_gifti")
    rows, models = _brain_models(path, image)
    values = np.asarray(image.get_fdata(dtype=np.float64))
    tr = None
    if isinstance(rows, cifti2_axes.SeriesAxis):
        index = pd.RangeIndex(values.shape[0], name=TIME)
        tr = float(rows.step) if rows.unit == "SECOND" else None
    elif isinstance(rows, cifti2_axes.ScalarAxis):
        index = pd.Index([str(name) for name in rows.name], name="map")
    else:
        raise ValueError(f"{path.name}: rows are {type(rows).__name__}; expected a series "
                         "(.dtseries.nii) or scalar maps (.dscalar.nii)")
    frame = pd.DataFrame(values, index=index, columns=_cifti_columns(models, labels))
    frame.attrs["tr"] = tr
    frame.attrs["source"] = [path.name]
    return frame


def write_cifti(frame, reference, path):
    """Write grayordinate maps to a CIFTI-2 ``.dscalar.nii`` file, one map per column.

    Parameters
    ----------
    frame : DataFrame or Series
        Values indexed by grayordinate label as :func:`read_cifti` gives them; columns
        become the named maps of a scalar axis.
    reference : str or path
        Dense CIFTI-2 file (the fitted ``.dtseries.nii``) whose brain models define the
        grayordinates.
    path : str or path
        Destination ending in ``.dscalar.nii``.

    Returns
    -------
    Path
        The written file: float32 maps, NaN at grayordinates absent from ``frame``.

    Raises
    ------
    ValueError
        Naming the file: a reference that is not a dense CIFTI-2 file (e.g. a NIfTI volume
        or GIfTI), a destination not ending in ``.dscalar.nii``, labels not in the
        reference.

    Examples
    --------
    >>> from braincoder.utils.io import write_cifti
    >>> write_cifti(parameters, "sub-01_space-fsLR_den-91k_bold.dtseries.nii",
    ...             "sub-01_space-fsLR_den-91k_desc-prf_statmap.dscalar.nii")  # doctest: +SKIP
    """
    from nibabel.cifti2 import Cifti2Header, Cifti2Image, cifti2_axes

    nibabel = _nibabel("writing CIFTI-2 files")
    path, reference = Path(path), Path(reference)
    if not path.name.lower().endswith(".dscalar.nii"):
        raise ValueError(f"{path.name}: write_cifti writes .dscalar.nii files")
    image = _load(reference, "writing")
    if not _is_cifti(image):
        raise ValueError(f"{reference.name}: the reference is not a CIFTI-2 file "
                         f"({type(image).__name__}); maps of volumes are written with "
                         "write_nifti, of GIfTI files with write_gifti")
    models = _brain_models(reference, image)[1]
    frame = _as_frame(frame)
    style = "multiindex" if isinstance(frame.index, pd.MultiIndex) else "string"
    labels = _cifti_columns(models, style)
    if style == "string":
        frame = frame.set_axis(frame.index.astype(str), axis=0)
    positions = _positions(frame, labels, f"{path.name} ({reference.name})")
    values = np.full((frame.shape[1], len(models)), np.nan, dtype=np.float32)
    values[:, positions] = _values(frame, path.name).T
    scalars = cifti2_axes.ScalarAxis([str(column) for column in frame.columns])
    output = Cifti2Image(values, Cifti2Header.from_axes((scalars, models)))
    output.nifti_header.set_intent("ConnDenseScalar")
    nibabel.save(output, path)
    return path
