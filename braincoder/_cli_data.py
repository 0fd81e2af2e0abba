"""Data options of ``braincoder fit``: runs, surfaces, preprocessing, maps in the input space.

``add_data_arguments`` adds ``--data`` (one or more runs: tables, NIfTI, GIfTI per
hemisphere, CIFTI-2), ``--paradigm``, ``--mask``, the preprocessing options (``--detrend``,
``--high-pass``, ``--psc``/``--zscore``, ``--average-runs``/``--concatenate-runs``,
``--truncate-runs``) and ``--maps``; :func:`load_data` reads and prepares the runs and
:func:`write_maps` writes the fitted maps back in the space of the input. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

_HEMI = re.compile(r"_hemi-[A-Za-z]+(?=[_.])")
_LOG = logging.getLogger("braincoder.cli")


class _DataError(ValueError):
    """A data-option error, reported by the command line as one line."""


def add_data_arguments(parser):
    """Add the data, run-handling and map options to the ``fit`` parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``fit`` sub-command parser.
    """
    group = parser.add_argument_group("data and runs")
    group.add_argument("--data", required=True, action="extend", nargs="+", metavar="FILE",
                       help="time × voxel data: .tsv/.csv/.npy/.npz, NIfTI (.nii.gz, with "
                       "--mask), GIfTI (.func.gii, one file per hemisphere; hemi-L/hemi-R "
                       "files of one run are paired by name) or CIFTI-2 (.dtseries.nii). "
                       "Repeat --data (or list several files) for several runs")
    group.add_argument("--mask", help="NIfTI mask selecting voxels (NIfTI data only)")
    group.add_argument("--paradigm", required=True, action="extend", nargs="+",
                       metavar="FILE", help="time × stimulus-dimension table: one for all "
                       "runs, or one per run")
    group.add_argument("--detrend", type=int, metavar="ORDER",
                       help="remove polynomial drifts up to this order from each run "
                       "(the mean is kept)")
    group.add_argument("--high-pass", type=float, metavar="SECONDS",
                       help="discrete-cosine high-pass filter with this cutoff period per "
                       "run (as SPM; e.g. 128)")
    scale = group.add_mutually_exclusive_group()
    scale.add_argument("--psc", action="store_true", help="percent signal change per run")
    scale.add_argument("--zscore", action="store_true", help="z-score each run")
    combine = group.add_mutually_exclusive_group()
    combine.add_argument("--average-runs", action="store_true",
                         help="average the runs (same paradigm)")
    combine.add_argument("--concatenate-runs", action="store_true",
                         help="concatenate the runs (paradigm repeated, or one per run)")
    group.add_argument("--truncate-runs", action="store_true",
                       help="with --average-runs: cut runs to the shortest")
    group.add_argument("--maps", "--out-format", choices=("split", "statmap", "none"),
                       default="split", help="NIfTI/GIfTI/CIFTI input: write parameter and "
                       "R² maps in the input's space with BIDS-derivative names, one file "
                       "per map (split, default) or one multi-map statmap file; none: "
                       "tables only")
    group.add_argument("--desc", default="prf", help="desc- entity of the map names")




def group_runs(paths):
    """Group the ``--data`` files into runs: GIfTI hemispheres of one run are paired.

    Parameters
    ----------
    paths : list of str
        The ``--data`` values in order.

    Returns
    -------
    kind : str
        ``"table"``, ``"nifti"``, ``"gifti"`` or ``"cifti"``.
    runs : list of list of Path
        The files of each run (GIfTI: one per hemisphere; otherwise one).

    Raises
    ------
    ValueError
        If the files mix formats.
    """
    paths = [Path(path) for path in paths]
    from .utils.bids import file_kind

    kinds = {path.name: file_kind(path) for path in paths}
    if len(set(kinds.values())) > 1:
        raise _DataError(f"--data mixes file types: {kinds}; give the runs of one format")
    kind = next(iter(kinds.values()))
    if kind != "gifti":
        return kind, [[path] for path in paths]
    runs = {}
    for path in paths:
        key = (str(path.parent), _HEMI.sub("", path.name))
        runs.setdefault(key, []).append(path)
    return kind, list(runs.values())


def _read_run(kind, files, mask):
    from .utils.io import read_cifti, read_gifti, read_table

    if mask is not None and kind in ("gifti", "cifti"):
        raise _DataError(f"{files[0].name}: is a surface file; --mask selects voxels of NIfTI "
                         "volumes only")
    if kind == "gifti":
        return read_gifti(files)
    if kind == "cifti":
        return read_cifti(files[0])
    return read_table(files[0], mask=mask)


def _file_tr(kind, frame, files):
    if kind in ("gifti", "cifti"):
        return frame.attrs.get("tr")
    if kind == "nifti":
        from .utils.io import read_tr

        return read_tr(files[0])
    return None


def load_data(args):
    """Read the ``--data`` runs and ``--paradigm`` tables and prepare them for the fit.

    Reads every run (pairing the hemisphere files of GIfTI runs), takes the TR from the
    files when ``--tr`` is not given (``args.tr`` is set), detrends and scales each run,
    then averages or concatenates them with the paradigm matched.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments (see :func:`add_data_arguments`).

    Returns
    -------
    data : DataFrame
        Time × voxel data, columns named ``voxel`` when unnamed.
    paradigm : DataFrame
        The paradigm with the data's time index.

    Raises
    ------
    ValueError
        For several runs without ``--average-runs``/``--concatenate-runs``, mixed file
        types, runs with different voxels or lengths (naming the files), a mask with
        surface data, a high-pass filter without a TR, or a paradigm of the wrong length.
    """
    from .utils.io import read_table
    from .utils.preprocessing import prepare_runs

    kind, groups = group_runs(args.data)
    if len(groups) > 1 and not (args.average_runs or args.concatenate_runs):
        raise _DataError(f"{len(groups)} runs given ({', '.join(g[0].name for g in groups)}); "
                         "choose --average-runs or --concatenate-runs")
    runs = [_read_run(kind, files, args.mask) for files in groups]
    tr = _file_tr(kind, runs[0], groups[0])
    if args.tr is None and tr is not None:
        _LOG.info("repetition time %.4g s from %s", tr, groups[0][0].name)
        args.tr = tr
    elif tr is not None and abs(args.tr - tr) > 1e-6:
        _LOG.warning("--tr %g differs from the repetition time %g s stored in %s; using "
                     "--tr", args.tr, tr, groups[0][0].name)
    if args.high_pass is not None and args.tr is None:
        raise _DataError("--high-pass needs the repetition time: give --tr (the data files "
                         "do not state it)")
    paradigms = [read_table(path) for path in args.paradigm]
    if len(runs) == 1 and len(paradigms) == 1 and len(runs[0]) != len(paradigms[0]):
        raise _DataError(f"data has {len(runs[0])} time points but paradigm has "
                         f"{len(paradigms[0])}; they must describe the same time points")
    scale = "psc" if args.psc else "zscore" if args.zscore else None
    combine = ("average" if args.average_runs else "concatenate" if args.concatenate_runs
               else None)
    if len(runs) == len(paradigms) == 1 and not (args.detrend or args.high_pass is not None
                                                 or scale):
        data, paradigm = runs[0], paradigms[0].set_axis(runs[0].index, axis=0)
    else:
        data, paradigm = prepare_runs(runs, paradigms, order=args.detrend,
                                      high_pass=args.high_pass, tr=args.tr, scale=scale,
                                      combine=combine, truncate=args.truncate_runs)
    if data.columns.name is None and data.columns.nlevels == 1:
        data.columns.name = "voxel"
    return data, paradigm


def _fit_options(args):
    keep = ("model", "tr", "unique_hrf", "grid_size", "n_sd", "sd_range", "max_iterations",
            "method", "alpha", "detrend", "high_pass", "psc", "zscore", "average_runs",
            "concatenate_runs", "truncate_runs")
    return {key: getattr(args, key) for key in keep if hasattr(args, key)}


def write_maps(args, out, parameters, r2, model):
    """Write parameter and R² maps in the space of the ``--data`` files.

    NIfTI input also gets ``parameters.nii.gz`` (one volume per parameter) and
    ``r2.nii.gz``. With ``--maps split`` or ``statmap``, NIfTI, GIfTI and CIFTI-2 inputs get
    BIDS-derivative maps (see :func:`braincoder.utils.io.write_maps`) with JSON sidecars;
    table inputs get no maps.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments.
    out : Path
        Output directory.
    parameters : DataFrame or None
        Voxel × parameter estimates.
    r2 : Series
        R² per voxel.
    model : EncodingModel
        The fitted model (for the sidecars).

    Returns
    -------
    list of Path
        The map files written.
    """
    from .utils.io import maps_metadata, write_nifti
    from .utils.io import write_maps as write_bids_maps

    kind, groups = group_runs(args.data)
    written = []
    if kind == "table":
        return written
    if kind == "nifti":
        # Maps in the space of the BOLD run: one volume per column of parameters.tsv.
        if parameters is not None:
            written.append(write_nifti(parameters, groups[0][0], out / "parameters.nii.gz"))
        written.append(write_nifti(r2, groups[0][0], out / "r2.nii.gz"))
    if args.maps == "none":
        return written
    r2 = r2.rename("r2")
    maps = r2.to_frame() if parameters is None else parameters.join(r2)
    metadata = maps_metadata(model, _fit_options(args))
    written += write_bids_maps(maps, groups[0], out, desc=args.desc, layout=args.maps,
                               sources=[path for files in groups for path in files],
                               metadata=metadata)
    return written
