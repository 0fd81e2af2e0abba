"""The ``braincoder`` command line: fit, predict, simulate, decode, list models.

Run ``braincoder --help`` (or ``python -m braincoder.cli --help``). Errors are reported as
one line, ``braincoder: error: ...``, with exit code 2; ``--debug`` shows the traceback.

The command line is quiet and quick: arguments, model names and input files are checked
before TensorFlow is imported (``braincoder models`` never imports it), and TensorFlow's C++
start-up messages are silenced unless ``TF_CPP_MIN_LOG_LEVEL`` is set by the caller.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from ._quiet import quiet_tensorflow

PROG = "braincoder"
_LINEAR = ("linear", "linear_baseline", "linear_baseline_hrf")


class CommandLineError(Exception):
    """A usage or input error reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (raised, not printed with usage)."""

    def error(self, message):
        """Raise :class:`CommandLineError` with the message.

        Parameters
        ----------
        message : str
            The argparse message.
        """
        raise CommandLineError(message)


# ---------------------------------------------------------------------- inputs
def _check_files(args, *names):
    """Report a missing input file before anything heavy is imported."""
    for name in names:
        value = getattr(args, name, None)
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if path is not None and not Path(path).exists():
                raise CommandLineError(f"{name.replace('_', '-')} file not found: {path}")


def _read(path, what, mask=None):
    if path is None:
        raise CommandLineError(f"--{what} is required")
    if not Path(path).exists():
        raise CommandLineError(f"{what} file not found: {path}")
    from .utils.io import read_table

    return read_table(path, mask=mask)


def _read_labelled(path, what):
    """Read a voxel-indexed table (parameters, weights, omega) with string voxel labels."""
    frame = _read(path, what)
    frame.index = frame.index.astype(str).rename(frame.index.name)
    return frame


def _hrf(args, model_class):
    from .hrf import SPMHRFModel
    from .models import HRFEncodingModel

    if not issubclass(model_class, HRFEncodingModel):
        return {}
    if args.tr is None:
        raise CommandLineError(f"model {args.model!r} has an HRF: give the repetition time "
                               "with --tr")
    return {"hrf_model": SPMHRFModel(tr=args.tr, unique_hrfs=args.unique_hrf)}


def _build_model(args):
    from .models import EncodingModel, get_model_class

    model_class = get_model_class(args.model)
    if not issubclass(model_class, EncodingModel):
        raise CommandLineError(f"model {args.model!r} is not supported by the command line")
    kwargs = _hrf(args, model_class)
    if model_class.image_stimulus:
        if args.grid_coordinates is None:
            raise CommandLineError(f"model {args.model!r} needs --grid-coordinates (a table "
                                   "with columns x and y, one row per pixel)")
        kwargs["grid_coordinates"] = _read(args.grid_coordinates, "grid-coordinates")
    return model_class(**kwargs)


def _load_spec(path):
    if not Path(path).is_file():
        raise CommandLineError(f"model-spec file not found: {path}")
    quiet_tensorflow()
    from .models.serialization import _model_from_document, _parse_json, model_from_config

    document = _parse_json(Path(path).read_text(), str(path))
    if isinstance(document, dict) and "format" in document:
        return _model_from_document(document)
    return model_from_config(document)


def _progress(args):
    return not args.quiet and sys.stderr.isatty()


# ---------------------------------------------------------------------- fit
def _prf_grid(args, model, paradigm):
    """Grid values per parameter label for :meth:`ParameterFitter.fit_grid`."""
    return model.default_grid(paradigm, size=args.grid_size, n_sd=args.n_sd,
                              sd_range=args.sd_range)


def _check_cluster(args):
    """Check --scheduler / --workers before anything is loaded."""
    if args.scheduler is not None and args.workers is not None:
        raise CommandLineError("give --scheduler or --workers, not both")
    if args.workers is not None and args.workers < 1:
        raise CommandLineError(f"--workers must be >= 1, got {args.workers}")


@contextlib.contextmanager
def _dask_client(args):
    """Yield a Dask client for --scheduler/--workers (None without them)."""
    if args.scheduler is None and args.workers is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CommandLineError('--scheduler and --workers need dask.distributed: pip install '
                               '"braincoder[dask]"') from None
    if args.scheduler is not None:
        with Client(args.scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _fit_prf(args, model, data, paradigm):
    from .optimize import ParameterFitter

    log_dir = args.log_dir if args.log_dir is not None else False
    fitter = ParameterFitter(model, data, paradigm, log_dir=log_dir,
                             client=getattr(args, "client", None))
    start = time.perf_counter()
    grid = fitter.fit_grid(**_prf_grid(args, model, fitter.paradigm))
    grid = fitter.refine_baseline_and_amplitude(grid)
    timings = {"grid search": time.perf_counter() - start}
    start = time.perf_counter()
    parameters = fitter.fit(init_pars=grid, max_n_iterations=args.max_iterations,
                            method=args.method, progressbar=_progress(args),
                            checkpoint_dir=args.checkpoint_dir)
    timings[f"iterative fit ({args.method})"] = time.perf_counter() - start
    if getattr(args, "report", None):
        fitter.report(args.report, timings=timings)
    return parameters, None, fitter.r2, fitter.predictions


def _fit_linear(args, model, data, paradigm):
    import numpy as np
    import pandas as pd

    from .optimize import WeightFitter
    from .optimize.ridge import fit_ridge
    from .utils.formatting import format_data

    data = format_data(data)
    paradigm = model.get_paradigm(paradigm)
    baselines = None
    if "baseline" in model.get_parameter_labels():
        design, _ = model.weight_design(paradigm, None)
        solution = fit_ridge(design, data.to_numpy(np.float64), alphas=args.alpha,
                             fit_intercept=True)
        baselines = pd.DataFrame({"baseline": solution.intercept}, index=data.columns)
        baselines.columns.name = "parameter"
    fitter = WeightFitter(model, baselines, data, paradigm, client=getattr(args, "client", None))
    weights = fitter.fit(alpha=args.alpha)
    return baselines, weights, fitter.r2, fitter.predictions


def _command_fit(args):
    import numpy as np

    from .models.registry import model_info

    model_info(args.model)  # an unknown name is reported before TensorFlow is imported
    _check_files(args, "data", "paradigm", "grid_coordinates", "mask")
    _check_cluster(args)
    if getattr(args, "report", None) and args.model in _LINEAR:
        raise CommandLineError("--report is available for the pRF models, not for "
                               f"{args.model!r}")
    quiet_tensorflow()
    from ._cli_data import load_data, write_maps
    from .utils.io import save_results, write_table

    data, paradigm = load_data(args)  # runs and preprocessing; sets args.tr from the files
    model = _build_model(args)
    run = _fit_linear if args.model in _LINEAR else _fit_prf
    with _dask_client(args) as args.client:
        parameters, weights, r2, predictions = run(args, model, data, paradigm)
    out = Path(args.out)
    save_results(out, parameters=parameters, r2=r2,
                 predictions=predictions if args.save_predictions else None,
                 spec=model.to_json(include_values=False))
    if weights is not None:
        write_table(weights, out / "weights.tsv")
    write_maps(args, out, parameters, r2, model)  # NIfTI/GIfTI/CIFTI input: maps in its space
    logging.getLogger(__name__).info("median R² %.3f; results in %s", float(np.nanmedian(r2)),
                                     out)
    return 0


# ---------------------------------------------------------------------- predict
def _command_predict(args):
    _check_files(args, "model_spec", "parameters", "weights", "paradigm")
    model = _load_spec(args.model_spec)
    from .utils.io import write_table

    parameters = None if args.parameters is None else _read_labelled(args.parameters,
                                                                      "parameters")
    weights = None if args.weights is None else _read_labelled(args.weights, "weights")
    paradigm = _read(args.paradigm, "paradigm")
    predictions = model.predict(paradigm, parameters, weights)
    write_table(predictions, args.out)
    return 0


# ---------------------------------------------------------------------- simulate
def _command_simulate(args):
    import numpy as np

    if args.model != "gaussian_prf_2d_hrf":
        raise CommandLineError(f"simulate supports the model 'gaussian_prf_2d_hrf', got "
                               f"{args.model!r}")
    if args.n_voxels < 1 or args.grid_size < 2 or args.frames_per_sweep < 2:
        raise CommandLineError("--n-voxels must be >= 1, --grid-size and --frames-per-sweep "
                               ">= 2")
    quiet_tensorflow()
    from .datasets import simulate_prf_2d
    from .utils.io import write_table

    experiment = simulate_prf_2d(
        n_voxels=args.n_voxels, tr=args.tr, grid_size=args.grid_size,
        n_sweeps=args.n_sweeps, frames_per_sweep=args.frames_per_sweep,
        noise_ratio=args.noise_ratio, unique_hrfs=args.unique_hrf, seed=args.seed,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(experiment.data, out / "bold.tsv")
    np.save(out / "design.npy", experiment.paradigm.to_numpy(np.float32))
    write_table(experiment.grid_coordinates, out / "grid.tsv")
    write_table(experiment.parameters, out / "true_parameters.tsv")
    return 0


# ---------------------------------------------------------------------- decode
def _command_decode(args):
    import numpy as np

    _check_files(args, "model_spec", "parameters", "data", "omega", "train_data",
                 "train_paradigm")
    model = _load_spec(args.model_spec)
    from .optimize import ResidualFitter
    from .utils.io import write_table

    capabilities = model.capabilities
    if (capabilities.image_stimulus or not capabilities.has_parameters
            or capabilities.stimulus_dimensions != 1):
        raise CommandLineError("decode supports models of a one-dimensional stimulus "
                               "(gaussian_prf, von_mises_prf, log_gaussian_prf and their "
                               "_hrf variants)")
    parameters = _read_labelled(args.parameters, "parameters")
    data = _read(args.data, "data")
    data.columns = data.columns.astype(str)
    if args.omega is not None:
        omega = _read_labelled(args.omega, "omega").to_numpy(np.float64)
    else:
        if args.train_data is None or args.train_paradigm is None:
            raise CommandLineError("give --omega, or --train-data and --train-paradigm to fit "
                                   "the noise covariance")
        train = _read(args.train_data, "train-data")
        train.columns = train.columns.astype(str)
        train_paradigm = _read(args.train_paradigm, "train-paradigm")
        if len(train) != len(train_paradigm):
            raise CommandLineError(f"train-data has {len(train)} time points but "
                                   f"train-paradigm has {len(train_paradigm)}")
        train_paradigm.index = train.index
        if model.capabilities.has_hrf:
            logging.getLogger(__name__).info("residuals include the HRF; decoding uses the "
                                             "HRF-free response")
        fitter = ResidualFitter(model, train, train_paradigm, parameters=parameters)
        omega, _ = fitter.fit(method="gauss", max_n_iterations=args.max_iterations,
                              progressbar=_progress(args))
        omega = omega.to_numpy(np.float64)
    if args.stimulus_range is not None:
        low, high, n = args.stimulus_range
        if not n >= 2 or not high > low:
            raise CommandLineError("--stimulus-range needs MIN < MAX and N >= 2")
        grid = np.linspace(low, high, int(n))
    else:
        grid = None
    pdf = model.get_stimulus_pdf(data, grid, parameters=parameters, omega=omega)
    write_table(pdf, args.out)
    return 0


# ---------------------------------------------------------------------- select
def _command_select(args):
    from .utils.io import write_table
    from .utils.selection import (
        fit_r2_mixture,
        r2_fdr_threshold,
        r2_noise_tail_threshold,
        r2_p_signal_threshold,
    )

    table = _read_labelled(args.r2, "r2")
    if "r2" in table.columns:
        r2 = table["r2"]
    elif table.shape[1] == 1:
        r2 = table.iloc[:, 0]
    else:
        raise CommandLineError(f"r2 table has columns {list(table.columns)}; give one column "
                               "or one named 'r2'")
    mixture = fit_r2_mixture(r2)
    rules = {"fdr": lambda: r2_fdr_threshold(mixture, alpha=args.level),
             "posterior": lambda: r2_p_signal_threshold(mixture, p=args.level),
             "noise-tail": lambda: r2_noise_tail_threshold(mixture, k=args.level)}
    threshold = rules[args.rule]()
    kept = r2[r2 >= threshold].rename("r2").to_frame()
    write_table(kept, args.out)
    sys.stdout.write(
        f"threshold R² {threshold:.4g} ({args.rule} {args.level:g}): kept {len(kept)} of "
        f"{len(r2)} voxels; noise component mean R² {mixture['noise_mean_r2']:.3f} "
        f"(weight {mixture['noise_weight']:.2f}), signal {mixture['signal_mean_r2']:.3f} "
        f"(weight {mixture['signal_weight']:.2f}); {mixture['n_excluded']} values outside "
        "(0, 0.99) not used by the mixture\n"
    )
    return 0


# ---------------------------------------------------------------------- models
def _command_models(args):
    from .models.registry import list_models, model_info

    lines = []
    for name in list_models():
        info = model_info(name)
        if info.kind != "encoding":
            kind = "deep model" if info.kind == "deep" else "decoder"
            lines.append(f"{name}\t({kind}: use the Python API)")
            continue
        labels = ", ".join(info.parameter_labels) or "(no parameters; weights only)"
        extra = " [+ hrf_delay, hrf_dispersion with --unique-hrf]" if info.hrf else ""
        lines.append(f"{name}\t{labels}{extra}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser():
    """Return the argument parser of the ``braincoder`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the sub-commands ``fit``, ``predict``, ``simulate``, ``decode``,
        ``select`` and ``models``.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--quiet", action="store_true", help="no progress bar or log output")

    parser = _Parser(prog=PROG, description="Encoding models for brain data.",
                     parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    fit = commands.add_parser("fit", parents=[common], help="fit a model to data")
    fit.add_argument("--model", required=True, help="registry name (see 'braincoder models')")
    from ._cli_data import add_data_arguments

    add_data_arguments(fit)  # --data (runs), --paradigm, --mask, preprocessing, --maps
    fit.add_argument("--grid-coordinates", help="pixel × (x, y) table (2D models)")
    fit.add_argument("--tr", type=float, help="repetition time in seconds (HRF models)")
    fit.add_argument("--out", required=True, help="output directory (NIfTI, GIfTI and CIFTI "
                     "data: also maps in the data's space, see --maps)")
    fit.add_argument("--save-predictions", action="store_true", help="write predictions.tsv")
    fit.add_argument("--report", metavar="HTML", help="write a self-contained HTML fit report "
                     "(R² and voxel selection, receptive fields, data against prediction, "
                     "convergence) to this file (pRF models)")
    fit.add_argument("--log-dir", help="TensorBoard directory (iterative fits)")
    fit.add_argument("--checkpoint-dir", help="save finished voxel chunks there and resume "
                     "an interrupted fit from them (iterative fits)")
    fit.add_argument("--scheduler", metavar="ADDRESS", help="fit the voxel chunks on the Dask "
                     "cluster of this scheduler, e.g. tcp://host:8786 (needs braincoder[dask])")
    fit.add_argument("--workers", type=int, metavar="N", help="fit the voxel chunks on a local "
                     "Dask cluster of N single-thread worker processes")
    fit.add_argument("--grid-size", type=int, default=10, help="grid points per position axis")
    fit.add_argument("--sd-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                     help="range of the size grid (sd or kappa)")
    fit.add_argument("--n-sd", type=int, default=8, help="size grid points")
    fit.add_argument("--unique-hrf", action="store_true", help="fit per-voxel HRF parameters")
    fit.add_argument("--max-iterations", type=int, default=1000)
    fit.add_argument("--method", choices=("lm", "adam"), default="lm")
    fit.add_argument("--alpha", type=float, default=0.0, help="ridge penalty (linear models)")
    fit.set_defaults(run=_command_fit)

    predict = commands.add_parser("predict", parents=[common], help="predict responses")
    predict.add_argument("--model-spec", required=True, help="model.json written by fit")
    predict.add_argument("--parameters", help="voxel × parameter table")
    predict.add_argument("--weights", help="basis × voxel table (linear models)")
    predict.add_argument("--paradigm", required=True)
    predict.add_argument("--out", required=True, help="output table (.tsv or .csv)")
    predict.set_defaults(run=_command_predict)

    simulate = commands.add_parser("simulate", parents=[common], help="simulate a pRF dataset")
    simulate.add_argument("--model", default="gaussian_prf_2d_hrf")
    simulate.add_argument("--n-voxels", type=int, default=50)
    simulate.add_argument("--tr", type=float, default=1.5)
    simulate.add_argument("--grid-size", type=int, default=20, help="pixels per side")
    simulate.add_argument("--n-sweeps", type=int, default=8)
    simulate.add_argument("--frames-per-sweep", type=int, default=30)
    simulate.add_argument("--noise-ratio", type=float, default=1.0)
    simulate.add_argument("--unique-hrf", action="store_true")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--out", required=True, help="output directory")
    simulate.set_defaults(run=_command_simulate)

    decode = commands.add_parser("decode", parents=[common],
                                 help="posterior over a 1D stimulus grid")
    decode.add_argument("--model-spec", required=True)
    decode.add_argument("--parameters", required=True)
    decode.add_argument("--data", required=True, help="time × voxel responses to decode")
    decode.add_argument("--omega", help="voxel × voxel noise covariance table")
    decode.add_argument("--train-data", help="training data to fit omega (without --omega)")
    decode.add_argument("--train-paradigm", help="paradigm of --train-data")
    decode.add_argument("--stimulus-range", type=float, nargs=3, metavar=("MIN", "MAX", "N"))
    decode.add_argument("--max-iterations", type=int, default=1000)
    decode.add_argument("--out", required=True, help="output table (time × stimulus)")
    decode.set_defaults(run=_command_decode)

    select = commands.add_parser("select", parents=[common],
                                 help="select voxels from an R² mixture model")
    select.add_argument("--r2", required=True, help="voxel × r2 table (r2.tsv written by fit)")
    select.add_argument("--rule", choices=("fdr", "posterior", "noise-tail"), default="fdr",
                        help="fdr: false-discovery rate <= LEVEL; posterior: P(signal) >= "
                        "LEVEL; noise-tail: LEVEL noise SDs above the noise mean")
    select.add_argument("--level", type=float, default=0.05)
    select.add_argument("--out", required=True, help="output table of the kept voxels")
    select.set_defaults(run=_command_select)

    models = commands.add_parser("models", parents=[common], help="list registered models")
    models.set_defaults(run=_command_models)
    return parser


def main(argv=None):
    """Run the ``braincoder`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 on success, 2 on a usage or input error (reported on stderr as one
        line ``braincoder: error: ...``).

    Examples
    --------
    >>> from braincoder.cli import main
    >>> main(["models"])  # doctest: +ELLIPSIS
    dn_prf_2d...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING)
        return args.run(args)
    except (CommandLineError, ValueError, TypeError, OSError, ImportError, KeyError) as error:
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
