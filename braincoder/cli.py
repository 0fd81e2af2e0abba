"""The ``braincoder`` command line: fit, predict, simulate, decode, list models.

Run ``braincoder --help`` (or ``python -m braincoder.cli --help``). Errors are reported as
one line, ``braincoder: error: ...``, with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

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
def _read(path, what, mask=None):
    from .utils.io import read_table

    if path is None:
        raise CommandLineError(f"--{what} is required")
    if not Path(path).exists():
        raise CommandLineError(f"{what} file not found: {path}")
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
    import inspect

    from .models import EncodingModel, get_model_class

    model_class = get_model_class(args.model)
    if not issubclass(model_class, EncodingModel):
        raise CommandLineError(f"model {args.model!r} is not supported by the command line")
    kwargs = _hrf(args, model_class)
    if "grid_coordinates" in inspect.signature(model_class.__init__).parameters:
        if args.grid_coordinates is None:
            raise CommandLineError(f"model {args.model!r} needs --grid-coordinates (a table "
                                   "with columns x and y, one row per pixel)")
        kwargs["grid_coordinates"] = _read(args.grid_coordinates, "grid-coordinates")
    return model_class(**kwargs)


def _load_spec(path):
    from .models.serialization import _model_from_document, _parse_json, model_from_config

    if not Path(path).is_file():
        raise CommandLineError(f"model-spec file not found: {path}")
    document = _parse_json(Path(path).read_text(), str(path))
    if isinstance(document, dict) and "format" in document:
        return _model_from_document(document)
    return model_from_config(document)


def _progress(args):
    return not args.quiet and sys.stderr.isatty()


# ---------------------------------------------------------------------- fit
def _span(values):
    low, high = float(np.min(values)), float(np.max(values))
    return low, high, max(high - low, 1e-6)


def _prf_grid(args, model, paradigm):
    """Grid values per parameter label for :meth:`ParameterFitter.fit_grid`."""
    labels = model.get_parameter_labels()
    n, n_sd = args.grid_size, args.n_sd
    grid = {"baseline": [0.0], "amplitude": [1.0]}
    if hasattr(model, "grid_coordinates"):
        coordinates = model.grid_coordinates
        x_low, x_high, x_span = _span(coordinates["x"])
        y_low, y_high, y_span = _span(coordinates["y"])
        grid["x"] = np.linspace(x_low, x_high, n)
        grid["y"] = np.linspace(y_low, y_high, n)
        sd_range = args.sd_range or (max(x_span, y_span) / 20, max(x_span, y_span) / 2)
        grid["sd"] = np.geomspace(*sd_range, n_sd)
    else:
        low, high, span = _span(paradigm.iloc[:, 0])
        if "kappa" in labels:
            grid["mu"] = np.linspace(-np.pi, np.pi, n, endpoint=False)
            grid["kappa"] = np.geomspace(*(args.sd_range or (0.5, 10.0)), n_sd)
        elif model.registry_name.startswith("log_gaussian"):
            grid["mu"] = np.geomspace(low, high, n)
            grid["sd"] = np.geomspace(*(args.sd_range or (0.1, 2.0)), n_sd)
        else:
            grid["mu"] = np.linspace(low, high, n)
            grid["sd"] = np.geomspace(*(args.sd_range or (span / 20, span / 2)), n_sd)
    defaults = {"srf_amplitude": [0.1, 0.5], "srf_size": [2.0, 4.0], "neural_baseline": [1.0],
                "surround_baseline": [1.0], "hrf_delay": [4.5, 5.5, 6.5],
                "hrf_dispersion": [1.0], "hrf_delta": [0.0]}
    for label in labels:
        if label not in grid:
            grid[label] = defaults[label]
    return {label: grid[label] for label in labels}


def _fit_prf(args, model, data, paradigm):
    from .optimize import ParameterFitter

    log_dir = args.log_dir if args.log_dir is not None else False
    fitter = ParameterFitter(model, data, paradigm, log_dir=log_dir)
    grid = fitter.fit_grid(**_prf_grid(args, model, fitter.paradigm))
    grid = fitter.refine_baseline_and_amplitude(grid)
    parameters = fitter.fit(init_pars=grid, max_n_iterations=args.max_iterations,
                            method=args.method, progressbar=_progress(args),
                            checkpoint_dir=args.checkpoint_dir)
    return parameters, None, fitter.r2, fitter.predictions


def _fit_linear(args, model, data, paradigm):
    from .optimize import WeightFitter
    from .optimize.ridge import fit_ridge
    from .utils.formatting import format_data

    data = format_data(data)
    paradigm = model.get_paradigm(paradigm)
    baselines = None
    if "baseline" in model.get_parameter_labels():
        design, _ = model._weight_design(paradigm, None)
        solution = fit_ridge(design, data.to_numpy(np.float64), alphas=args.alpha,
                             fit_intercept=True)
        baselines = pd.DataFrame({"baseline": solution.intercept}, index=data.columns)
        baselines.columns.name = "parameter"
    fitter = WeightFitter(model, baselines, data, paradigm)
    weights = fitter.fit(alpha=args.alpha)
    return baselines, weights, fitter.r2, fitter.predictions


def _command_fit(args):
    from .utils.io import save_results, write_nifti, write_table

    model = _build_model(args)
    data = _read(args.data, "data", mask=args.mask)
    paradigm = _read(args.paradigm, "paradigm")
    if len(data) != len(paradigm):
        raise CommandLineError(f"data has {len(data)} time points but paradigm has "
                               f"{len(paradigm)}; they must describe the same time points")
    paradigm.index = data.index
    if data.columns.name is None:
        data.columns.name = "voxel"
    run = _fit_linear if args.model in _LINEAR else _fit_prf
    parameters, weights, r2, predictions = run(args, model, data, paradigm)
    out = Path(args.out)
    save_results(out, parameters=parameters, r2=r2,
                 predictions=predictions if args.save_predictions else None,
                 spec=model.to_json(include_values=False))
    if weights is not None:
        write_table(weights, out / "weights.tsv")
    if str(args.data).lower().endswith((".nii", ".nii.gz")):
        # Maps in the space of the BOLD run: one volume per column of parameters.tsv.
        if parameters is not None:
            write_nifti(parameters, args.data, out / "parameters.nii.gz")
        write_nifti(r2, args.data, out / "r2.nii.gz")
    logging.getLogger(__name__).info("median R² %.3f; results in %s", float(np.nanmedian(r2)),
                                     out)
    return 0


# ---------------------------------------------------------------------- predict
def _command_predict(args):
    from .utils.io import write_table

    model = _load_spec(args.model_spec)
    parameters = None if args.parameters is None else _read_labelled(args.parameters,
                                                                      "parameters")
    weights = None if args.weights is None else _read_labelled(args.weights, "weights")
    paradigm = _read(args.paradigm, "paradigm")
    predictions = model.predict(paradigm, parameters, weights)
    write_table(predictions, args.out)
    return 0


# ---------------------------------------------------------------------- simulate
def _command_simulate(args):
    from .datasets import simulate_prf_2d
    from .utils.io import write_table

    if args.model != "gaussian_prf_2d_hrf":
        raise CommandLineError(f"simulate supports the model 'gaussian_prf_2d_hrf', got "
                               f"{args.model!r}")
    if args.n_voxels < 1 or args.grid_size < 2 or args.frames_per_sweep < 2:
        raise CommandLineError("--n-voxels must be >= 1, --grid-size and --frames-per-sweep "
                               ">= 2")
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
    from .models.base import HRFEncodingModel
    from .optimize import ResidualFitter
    from .stimuli import ImageStimulus
    from .utils.io import write_table

    model = _load_spec(args.model_spec)
    if isinstance(model.stimulus, ImageStimulus) or model.get_parameter_labels() == [] or (
        getattr(model.stimulus, "n_dimensions", None) != 1
    ):
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
        if isinstance(model, HRFEncodingModel):
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
    from .models import EncodingModel, HRFEncodingModel, get_model_class, list_models

    lines = []
    for name in list_models():
        cls = get_model_class(name)
        if not (isinstance(cls, type) and issubclass(cls, EncodingModel)):
            lines.append(f"{name}\t(deep model: use the Python API)")
            continue
        labels = ", ".join(cls.parameter_labels) or "(no parameters; weights only)"
        extra = " [+ hrf_delay, hrf_dispersion with --unique-hrf]" if issubclass(
            cls, HRFEncodingModel) else ""
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
    fit.add_argument("--data", required=True, help="time × voxel table (.tsv/.csv/.npy/.npz/"
                     ".nii.gz)")
    fit.add_argument("--mask", help="NIfTI mask selecting voxels (NIfTI data only)")
    fit.add_argument("--paradigm", required=True, help="time × stimulus-dimension table")
    fit.add_argument("--grid-coordinates", help="pixel × (x, y) table (2D models)")
    fit.add_argument("--tr", type=float, help="repetition time in seconds (HRF models)")
    fit.add_argument("--out", required=True, help="output directory (NIfTI data: also "
                     "parameters.nii.gz and r2.nii.gz maps)")
    fit.add_argument("--save-predictions", action="store_true", help="write predictions.tsv")
    fit.add_argument("--log-dir", help="TensorBoard directory (iterative fits)")
    fit.add_argument("--checkpoint-dir", help="save finished voxel chunks there and resume "
                     "an interrupted fit from them (iterative fits)")
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
