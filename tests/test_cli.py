"""The braincoder command line: simulate → fit → predict → decode, errors, exit codes."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from braincoder.cli import main
from braincoder.hrf import SPMHRFModel
from braincoder.models import GaussianPRF, GaussianPRF2DWithHRF, LinearModelWithBaselineHRF
from braincoder.optimize import ParameterFitter
from braincoder.utils import get_rsq
from braincoder.utils.io import read_table, write_table


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    code = main(["simulate", "--n-voxels", "12", "--tr", "1.5", "--grid-size", "8",
                 "--frames-per-sweep", "10", "--seed", "1", "--out", str(folder)])
    assert code == 0
    return folder


def test_simulate_writes_the_dataset(demo):
    assert {p.name for p in demo.iterdir()} >= {"bold.tsv", "design.npy", "grid.tsv",
                                                 "true_parameters.tsv"}
    bold = read_table(demo / "bold.tsv")
    assert bold.shape == (80, 12)
    assert np.load(demo / "design.npy").shape == (80, 64)
    assert list(read_table(demo / "true_parameters.tsv").columns) == [
        "x", "y", "sd", "baseline", "amplitude"]


def test_fit_predict_round_trip_matches_python_api(demo, tmp_path, capsys):
    out = tmp_path / "results"
    code, streams = _run(
        capsys, "fit", "--model", "gaussian_prf_2d_hrf", "--data", demo / "bold.tsv",
        "--paradigm", demo / "design.npy", "--grid-coordinates", demo / "grid.tsv",
        "--tr", "1.5", "--out", out, "--save-predictions", "--grid-size", "5", "--n-sd", "4",
        "--max-iterations", "20", "--log-dir", tmp_path / "tb", "--quiet",
        "--checkpoint-dir", tmp_path / "chunks")
    assert code == 0, streams.err
    assert (tmp_path / "chunks" / "manifest.json").exists()
    assert list((tmp_path / "chunks").glob("chunk-*.npz"))
    assert {p.name for p in out.iterdir()} == {"parameters.tsv", "r2.tsv", "model.json",
                                               "predictions.tsv"}
    r2 = read_table(out / "r2.tsv")["r2"]
    parameters = read_table(out / "parameters.tsv")

    # The same fit through the Python API.
    data = read_table(demo / "bold.tsv")
    grid = read_table(demo / "grid.tsv")
    model = GaussianPRF2DWithHRF(grid, hrf_model=SPMHRFModel(tr=1.5))
    fitter = ParameterFitter(model, data, np.load(demo / "design.npy"))
    span = grid["x"].max() - grid["x"].min()
    start = fitter.fit_grid(x=np.linspace(-5, 5, 5), y=np.linspace(-5, 5, 5),
                            sd=np.geomspace(span / 20, span / 2, 4), baseline=[0.0],
                            amplitude=[1.0])
    start = fitter.refine_baseline_and_amplitude(start)
    fitter.fit(init_pars=start, max_n_iterations=20, progressbar=False)
    np.testing.assert_allclose(r2.to_numpy(), fitter.r2.to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parameters.to_numpy(), fitter.estimated_parameters.to_numpy(),
                               rtol=1e-4, atol=1e-4)
    assert list(parameters.index.astype(str)) == list(data.columns)
    assert np.median(r2) > 0.3

    # predict from the saved spec reproduces the fit's predictions and R².
    code, streams = _run(capsys, "predict", "--model-spec", out / "model.json", "--parameters",
                         out / "parameters.tsv", "--paradigm", demo / "design.npy", "--out",
                         tmp_path / "pred.tsv")
    assert code == 0, streams.err
    predicted = read_table(tmp_path / "pred.tsv")
    saved = read_table(out / "predictions.tsv")
    assert list(predicted.columns) == list(data.columns)
    np.testing.assert_allclose(predicted.to_numpy(), saved.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(get_rsq(data, predicted.to_numpy()), r2, atol=1e-4)

    # TensorBoard events were written.
    events = list(Path(tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events


def test_linear_fit_matches_least_squares(tmp_path, capsys):
    rng = np.random.default_rng(0)
    paradigm = rng.normal(size=(60, 3))
    hrf = SPMHRFModel(tr=2.0)
    weights = rng.normal(size=(3, 4))
    model = LinearModelWithBaselineHRF(hrf_model=hrf)
    voxels = pd.Index([f"v{i}" for i in range(4)], name="voxel")
    data = model.simulate(paradigm, parameters=pd.DataFrame({"baseline": [1.0, 2.0, 0.0, -1]},
                                                            index=voxels),
                          weights=pd.DataFrame(weights, columns=voxels), noise=0.1, seed=0)
    write_table(data, tmp_path / "bold.tsv")
    np.save(tmp_path / "design.npy", paradigm)
    code, streams = _run(capsys, "fit", "--model", "linear_baseline_hrf", "--data",
                         tmp_path / "bold.tsv", "--paradigm", tmp_path / "design.npy", "--tr",
                         "2.0", "--out", tmp_path / "out", "--quiet")
    assert code == 0, streams.err
    fitted = read_table(tmp_path / "out" / "weights.tsv")
    baselines = read_table(tmp_path / "out" / "parameters.tsv")["baseline"]
    design = np.column_stack([hrf.convolution_matrix(60).numpy() @ paradigm, np.ones(60)])
    reference = np.linalg.lstsq(design, data.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fitted.to_numpy(), reference[:3], atol=1e-4)
    np.testing.assert_allclose(baselines.to_numpy(), reference[3], atol=1e-4)
    assert list(fitted.columns) == list(voxels)


def test_fit_on_nifti_writes_maps_in_the_bold_space(tmp_path, capsys):
    nibabel = pytest.importorskip("nibabel")
    rng = np.random.default_rng(1)
    paradigm = rng.normal(size=(40, 2))
    model = LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=2.0))
    data = model.simulate(paradigm, parameters=pd.DataFrame({"baseline": [1.0, -2.0, 0.5]}),
                          weights=pd.DataFrame(rng.normal(size=(2, 3))), noise=0.1, seed=1)
    volume = rng.normal(size=(2, 3, 2, 40))
    mask = np.zeros((2, 3, 2), bool)
    positions = [1, 6, 11]
    for position, voxel in zip(positions, data.columns, strict=True):
        volume[np.unravel_index(position, mask.shape)] = data[voxel]
        mask[np.unravel_index(position, mask.shape)] = True
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(volume, affine), tmp_path / "bold.nii.gz")
    nibabel.save(nibabel.Nifti1Image(mask.astype(np.uint8), affine), tmp_path / "mask.nii.gz")
    write_table(data, tmp_path / "bold.tsv")
    np.save(tmp_path / "design.npy", paradigm)
    for name in ("bold.nii.gz", "bold.tsv"):
        extra = ["--mask", tmp_path / "mask.nii.gz"] if name.endswith("gz") else []
        code, streams = _run(capsys, "fit", "--model", "linear_baseline_hrf", "--data",
                             tmp_path / name, *extra, "--paradigm", tmp_path / "design.npy",
                             "--tr", "2.0", "--out", tmp_path / name.split(".")[0] / name,
                             "--quiet")
        assert code == 0, streams.err
    nifti_out, table_out = tmp_path / "bold" / "bold.nii.gz", tmp_path / "bold" / "bold.tsv"
    assert {p.name for p in nifti_out.iterdir()} >= {"parameters.nii.gz", "r2.nii.gz"}
    assert not (table_out / "r2.nii.gz").exists()
    # The NIfTI fit equals the table fit, voxel labels being the positions in the volume.
    parameters = read_table(nifti_out / "parameters.tsv")
    assert list(parameters.index) == positions
    np.testing.assert_allclose(parameters.to_numpy(),
                               read_table(table_out / "parameters.tsv").to_numpy(), atol=1e-6)
    r2 = read_table(table_out / "r2.tsv")["r2"].to_numpy()
    r2_map = nibabel.load(nifti_out / "r2.nii.gz")
    np.testing.assert_allclose(r2_map.affine, affine)
    r2_map = r2_map.get_fdata()
    np.testing.assert_allclose(r2_map[mask], r2, atol=1e-6)  # C order = position order
    assert np.isnan(r2_map[~mask]).all() and r2.min() > 0.9
    baseline_map = nibabel.load(nifti_out / "parameters.nii.gz").get_fdata()
    np.testing.assert_allclose(baseline_map[mask], parameters["baseline"], atol=1e-6)


def test_decode_1d_recovers_stimuli(tmp_path, capsys):
    rng = np.random.default_rng(2)
    true = pd.DataFrame({"mu": np.linspace(1, 9, 8), "sd": 1.5, "amplitude": 1.0,
                         "baseline": 0.0}, index=pd.Index([f"n{i}" for i in range(8)]))
    model = GaussianPRF(parameters=true)
    train_paradigm = rng.uniform(0, 10, 120)
    test_paradigm = rng.uniform(1, 9, 15)
    noise = 0.15
    write_table(model.simulate(train_paradigm, noise=noise, seed=3), tmp_path / "train.tsv")
    write_table(model.simulate(test_paradigm, noise=noise, seed=4), tmp_path / "test.tsv")
    np.save(tmp_path / "train_paradigm.npy", train_paradigm)
    code, streams = _run(capsys, "fit", "--model", "gaussian_prf", "--data",
                         tmp_path / "train.tsv", "--paradigm", tmp_path / "train_paradigm.npy",
                         "--out", tmp_path / "fit", "--grid-size", "10", "--max-iterations",
                         "50", "--quiet")
    assert code == 0, streams.err
    common = ("decode", "--model-spec", tmp_path / "fit" / "model.json", "--parameters",
              tmp_path / "fit" / "parameters.tsv", "--data", tmp_path / "test.tsv",
              "--stimulus-range", "0", "10", "101", "--quiet")
    code, streams = _run(capsys, *common, "--train-data", tmp_path / "train.tsv",
                         "--train-paradigm", tmp_path / "train_paradigm.npy",
                         "--max-iterations", "300", "--out", tmp_path / "pdf.tsv")
    assert code == 0, streams.err
    pdf = read_table(tmp_path / "pdf.tsv")
    assert pdf.shape == (15, 101)
    decoded = pdf.columns.astype(float)[pdf.to_numpy().argmax(1)]
    assert np.corrcoef(decoded, test_paradigm)[0, 1] > 0.9
    omega = pd.DataFrame(noise**2 * np.eye(8), index=true.index, columns=true.index)
    write_table(omega, tmp_path / "omega.tsv")
    code, streams = _run(capsys, *common, "--omega", tmp_path / "omega.tsv", "--out",
                         tmp_path / "pdf2.tsv")
    assert code == 0, streams.err
    pdf2 = read_table(tmp_path / "pdf2.tsv")
    decoded2 = pdf2.columns.astype(float)[pdf2.to_numpy().argmax(1)]
    assert np.corrcoef(decoded2, test_paradigm)[0, 1] > 0.9


def test_models_lists_labels(capsys):
    code, streams = _run(capsys, "models")
    assert code == 0
    lines = dict(line.split("\t") for line in streams.out.strip().splitlines())
    assert lines["gaussian_prf"] == "mu, sd, amplitude, baseline"
    assert lines["gaussian_prf_2d_hrf"].startswith("x, y, sd, baseline, amplitude")


def _one_line_error(code, streams, match):
    assert code == 2
    lines = streams.err.strip().splitlines()
    assert len(lines) == 1, streams.err
    assert lines[0].startswith("braincoder: error: ")
    assert match in lines[0], lines[0]
    assert "Traceback" not in streams.err


def test_errors_are_one_line_with_exit_code_2(demo, tmp_path, capsys):
    base = ["fit", "--data", demo / "bold.tsv", "--paradigm", demo / "design.npy",
            "--grid-coordinates", demo / "grid.tsv", "--tr", "1.5", "--out", tmp_path / "o"]
    _one_line_error(*_run(capsys, "fit", "--model", "nope", *base[1:]), "unknown model 'nope'")
    missing = list(base)
    missing[2] = tmp_path / "missing.tsv"
    _one_line_error(*_run(capsys, *missing, "--model", "gaussian_prf_2d_hrf"),
                    "data file not found")
    (tmp_path / "bad.tsv").write_text("time\tv1\n0\t1.0\n1\tabc\n")
    bad = list(base)
    bad[2] = tmp_path / "bad.tsv"
    _one_line_error(*_run(capsys, *bad, "--model", "gaussian_prf_2d_hrf"),
                    "column 'v1' holds non-numeric values")
    np.save(tmp_path / "short.npy", np.load(demo / "design.npy")[:50])
    short = list(base)
    short[4] = tmp_path / "short.npy"
    _one_line_error(*_run(capsys, *short, "--model", "gaussian_prf_2d_hrf"),
                    "data has 80 time points but paradigm has 50")
    no_grid = base[:5] + base[7:]
    _one_line_error(*_run(capsys, *no_grid, "--model", "gaussian_prf_2d_hrf"),
                    "needs --grid-coordinates")
    _one_line_error(*_run(capsys, "fitt"), "invalid choice")
    _one_line_error(*_run(capsys, "fit", "--model", "gaussian_prf"), "required")
    _one_line_error(*_run(capsys, "predict", "--model-spec", tmp_path / "none.json",
                          "--paradigm", demo / "design.npy", "--out", tmp_path / "p.tsv"),
                    "model-spec file not found")
    _one_line_error(*_run(capsys, "simulate", "--model", "gaussian_prf", "--out", tmp_path),
                    "simulate supports")


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        main(["fit", "--model", "nope", "--data", "x.tsv", "--paradigm", "y.npy", "--out",
              str(tmp_path), "--debug"])


def test_entry_point_exit_code(tmp_path):
    # The installed console script (pyproject's [project.scripts]), else the module.
    script = Path(sys.executable).with_name("braincoder")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "braincoder.cli"]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [*command, "predict", "--model-spec", str(tmp_path / "missing.json"), "--paradigm",
         "p.npy", "--out", "o.tsv"],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("braincoder: error: model-spec file not found")
    assert "Traceback" not in result.stderr


def test_fit_progress_off_without_tty(demo, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, streams = _run(capsys, "fit", "--model", "gaussian_prf_2d", "--data",
                             demo / "bold.tsv", "--paradigm", demo / "design.npy",
                             "--grid-coordinates", demo / "grid.tsv", "--out", tmp_path / "r",
                             "--grid-size", "3", "--n-sd", "2", "--max-iterations", "2")
    assert code == 0
    assert "it/s" not in streams.err  # stderr is not a terminal: no progress bar


def test_select_keeps_the_voxels_above_the_mixture_threshold(tmp_path, capsys):
    from scipy.special import expit

    from braincoder.utils import fit_r2_mixture, r2_fdr_threshold, r2_noise_tail_threshold

    rng = np.random.default_rng(7)
    r2 = pd.Series(expit(np.r_[rng.normal(-4, 0.8, 900), rng.normal(-0.5, 0.5, 100)]),
                   index=pd.Index([f"vox{i}" for i in range(1000)], name="voxel"), name="r2")
    write_table(r2.to_frame(), tmp_path / "r2.tsv")
    code, out = _run(capsys, "select", "--r2", tmp_path / "r2.tsv", "--out",
                     tmp_path / "kept.tsv")
    assert code == 0, out.err
    threshold = r2_fdr_threshold(fit_r2_mixture(r2), alpha=0.05)
    kept = read_table(tmp_path / "kept.tsv")
    assert set(kept.index.astype(str)) == set(r2.index[r2 >= threshold])
    assert f"kept {len(kept)} of 1000 voxels" in out.out
    code, out = _run(capsys, "select", "--r2", tmp_path / "r2.tsv", "--rule", "noise-tail",
                     "--level", "3", "--out", tmp_path / "tail.tsv")
    tail = r2_noise_tail_threshold(fit_r2_mixture(r2), k=3.0)
    assert code == 0
    assert set(read_table(tmp_path / "tail.tsv").index.astype(str)) == set(r2.index[r2 >= tail])
    write_table(r2.to_frame().assign(other=1.0), tmp_path / "two.tsv")
    code, out = _run(capsys, "select", "--r2", tmp_path / "two.tsv", "--out",
                     tmp_path / "x.tsv")
    assert code == 0  # the 'r2' column is picked
    write_table(pd.DataFrame({"a": r2, "b": r2}), tmp_path / "ambiguous.tsv")
    code, out = _run(capsys, "select", "--r2", tmp_path / "ambiguous.tsv", "--out",
                     tmp_path / "y.tsv")
    assert code == 2 and "give one column or one named 'r2'" in out.err


def _quiet_subprocess(code):
    """Run Python code in a fresh interpreter with TensorFlow's log level left unset."""
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=300, check=False)


def _main_then_modules(*argv):
    return ("import sys\n"
            "from braincoder.cli import main\n"
            f"code = main({[str(a) for a in argv]!r})\n"
            "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")


def test_models_is_quiet_and_does_not_import_tensorflow():
    result = _quiet_subprocess(_main_then_modules("models"))
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "0 False False"
    listed = [line.split("\t")[0] for line in lines[:-1]]
    assert {"ridge_image_decoder", "prf_inversion_decoder", "gaussian_prf_2d_hrf"} <= set(
        listed)


@pytest.mark.parametrize("argv, message", [
    (["fit", "--model", "no_such_model", "--data", "x.tsv", "--paradigm", "p.npy",
      "--out", "o"], "braincoder: error: unknown model 'no_such_model'; known models: "),
    (["fit", "--model", "gaussian_prf", "--data", "missing.tsv", "--paradigm", "p.npy",
      "--out", "o"], "braincoder: error: data file not found: missing.tsv"),
    (["predict", "--model-spec", "missing.json", "--paradigm", "p.npy", "--out", "o.tsv"],
     "braincoder: error: model-spec file not found: missing.json"),
])
def test_argument_errors_are_one_line_before_tensorflow(argv, message, tmp_path):
    result = _quiet_subprocess(_main_then_modules(*argv))
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(message)
    assert result.stdout.strip() == "2 False False"


def test_a_command_using_tensorflow_prints_no_start_up_lines(tmp_path):
    # simulate imports TensorFlow and runs it on the CPU: no absl, oneDNN or CUDA lines.
    result = _quiet_subprocess(_main_then_modules(
        "simulate", "--n-voxels", "3", "--grid-size", "6", "--n-sweeps", "2",
        "--frames-per-sweep", "8", "--out", tmp_path / "sim"))
    assert result.stdout.strip() == "0 True True"
    assert result.stderr == "", result.stderr
    assert (tmp_path / "sim" / "bold.tsv").exists()


def test_quiet_tensorflow_keeps_messages_that_are_not_start_up_noise():
    from braincoder._quiet import _is_start_up_noise

    preamble = ("WARNING: All log messages before absl::InitializeLog() is called are "
                "written to STDERR")
    info = "I0000 00:00:1796651482.806227    9346 port.cc:153] oneDNN custom operations are on."
    cuda = ("E0000 00:00:1796651499.041096    9635 cuda_platform.cc:52] failed call to "
            "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
    warning = "/x/site-packages/y.py:3: DeprecationWarning: old API"
    assert [_is_start_up_noise(line, 3) for line in (preamble, info, cuda, warning)] == [
        True, True, True, False]
    # A level chosen by the caller is respected: 1 drops information lines only.
    assert [_is_start_up_noise(line, 1) for line in (preamble, info, cuda, warning)] == [
        True, True, False, False]
    assert not any(_is_start_up_noise(line, 0) for line in (preamble, info, cuda))
