"""ParameterFitter: grid search, LM and Adam fits recover simulated parameters."""

import glob
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from braincoder.datasets import simulate_prf_2d
from braincoder.hrf import SPMHRFModel
from braincoder.models import GaussianPRF, GaussianPRF2DWithHRF, VonMisesPRF
from braincoder.optimize import ParameterFitter, _loop

XY = np.linspace(-4.5, 4.5, 10)
SD = np.geomspace(0.4, 4.0, 6)


@pytest.fixture(scope="module")
def experiment():
    # Moderate noise (noise variance 0.3 times the signal's), pRF centres inside the field.
    return simulate_prf_2d(n_voxels=150, grid_size=20, n_sweeps=8, frames_per_sweep=20,
                           noise_ratio=0.3, position_limit=3.5, seed=3)


@pytest.fixture(scope="module")
def fitted(experiment):
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    grid = fitter.refine_baseline_and_amplitude(fitter.fit_grid(x=XY, y=XY, sd=SD))
    fitter.fit(init_pars=grid, progressbar=False)
    return fitter, grid


def test_2d_recovery_at_noise_ceiling(experiment, fitted):
    fitter, grid = fitted
    truth = experiment.parameters
    for label in ("x", "y", "sd"):
        assert np.corrcoef(fitter.estimated_parameters[label], truth[label])[0, 1] > 0.95, label
    assert abs(fitter.r2.median() - experiment.noise_ceiling) < 0.02
    # LM improves on the grid start and reports how it stopped.
    assert fitter.r2.mean() >= fitter.get_rsq(grid).mean()
    assert fitter.stop_reason == "all voxels converged"
    assert fitter.n_converged == len(truth)
    assert 0 < fitter.n_iterations < 1000
    # pandas out: the caller's labels.
    assert fitter.estimated_parameters.index.equals(experiment.data.columns)
    assert list(fitter.estimated_parameters.columns) == experiment.model.get_parameter_labels()
    assert fitter.predictions.index.equals(experiment.data.index)
    # Every voxel stopped by a convergence rule, none by the iteration cap.
    assert fitter.n_at_cap == 0
    assert fitter.voxel_stop_reasons.index.equals(experiment.data.columns)
    assert (fitter.voxel_iterations <= fitter.n_iterations).all()
    assert not fitter.voxel_stop_reasons.str.contains("max_n_iterations").any()


def test_grid_matches_numpy_brute_force(experiment):
    model, data, paradigm = experiment.model, experiment.data.iloc[:, :20], experiment.paradigm
    fitter = ParameterFitter(model, data, paradigm)
    grid = fitter.fit_grid(x=XY[::3], y=XY[::3], sd=SD[::2], positive_amplitude=False)
    points = [(x, y, s) for x in XY[::3] for y in XY[::3] for s in SD[::2]]
    parameters = pd.DataFrame([(x, y, s, 0.0, 1.0) for x, y, s in points],
                              columns=model.get_parameter_labels())
    predictions = model.predict(paradigm, parameters).to_numpy()
    y = data.to_numpy()
    best_sse = np.full(y.shape[1], np.inf)
    best = np.zeros((y.shape[1], 5))
    for g, (x0, y0, s0) in enumerate(points):
        design = np.column_stack([np.ones(len(y)), predictions[:, g]])
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = ((y - design @ coefficients) ** 2).sum(0)
        better = sse < best_sse
        best_sse[better] = sse[better]
        best[better] = np.column_stack([
            np.full(better.sum(), x0), np.full(better.sum(), y0), np.full(better.sum(), s0),
            coefficients[0, better], coefficients[1, better]])
    np.testing.assert_allclose(grid.to_numpy(), best, rtol=1e-3, atol=1e-3)


def test_grid_chunking_does_not_change_results(experiment):
    data = experiment.data.iloc[:, :30]
    large = ParameterFitter(experiment.model, data, experiment.paradigm)
    small = ParameterFitter(experiment.model, data, experiment.paradigm, memory_limit=200_000)
    reference = large.fit_grid(x=XY, y=XY, sd=SD).to_numpy()
    np.testing.assert_allclose(reference, small.fit_grid(x=XY, y=XY, sd=SD).to_numpy(),
                               rtol=1e-4, atol=1e-4)
    # an explicit number of grid points per chunk, with a progress bar
    np.testing.assert_allclose(
        reference, large.fit_grid(x=XY, y=XY, sd=SD, chunk_size=7, progressbar=True).to_numpy(),
        rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        large.fit_grid(x=XY, y=XY, sd=SD, chunk_size=0)


def test_refine_in_voxel_chunks_equals_one_pass(experiment):
    data = experiment.data.iloc[:, :30]
    large = ParameterFitter(experiment.model, data, experiment.paradigm)
    small = ParameterFitter(experiment.model, data, experiment.paradigm, memory_limit=20_000)
    grid = large.fit_grid(x=XY, y=XY, sd=SD)
    assert small._voxel_chunk_size(4 * 8 * len(experiment.paradigm)) < 30
    np.testing.assert_allclose(small.refine_baseline_and_amplitude(grid).to_numpy(),
                               large.refine_baseline_and_amplitude(grid).to_numpy(),
                               rtol=1e-6, atol=1e-6)


def test_refine_from_shared_grid_shapes_equals_the_least_squares_formula(experiment):
    data = experiment.data.iloc[:, :40]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.fit_grid(x=XY[::3], y=XY[::3], sd=SD[::2])  # few shapes, many repeats
    assert len(grid[["x", "y", "sd"]].drop_duplicates()) <= 20
    refined = fitter.refine_baseline_and_amplitude(grid, l2_alpha=0.0)
    shapes = experiment.model.predict(experiment.paradigm,
                                      grid.assign(baseline=0.0, amplitude=1.0)).to_numpy()
    for voxel in range(40):
        design = np.column_stack([np.ones(len(shapes)), shapes[:, voxel]])
        (baseline, gain), *_ = np.linalg.lstsq(design, data.iloc[:, voxel], rcond=None)
        if gain > 0:
            np.testing.assert_allclose(refined.iloc[voxel][["baseline", "amplitude"]],
                                       [baseline, gain], rtol=1e-3, atol=1e-3)


def test_1d_gaussian_recovery():
    rng = np.random.default_rng(0)
    n_voxels = 60
    model = GaussianPRF()
    paradigm = pd.DataFrame({"x": np.tile(np.linspace(0, 10, 40), 3)})
    truth = pd.DataFrame({"mu": rng.uniform(2, 8, n_voxels),
                          "sd": rng.uniform(0.8, 2.5, n_voxels),
                          "amplitude": rng.uniform(1, 3, n_voxels),
                          "baseline": rng.normal(0, 1, n_voxels)})
    signal = model.predict(paradigm, truth)
    noise_sd = signal.std() * 0.5
    data = signal + rng.standard_normal(signal.shape) * noise_sd.to_numpy()
    ceiling = np.mean(signal.var() / (signal.var() + noise_sd**2))
    fitter = ParameterFitter(model, data, paradigm)
    grid = fitter.fit_grid(mu=np.linspace(0, 10, 21), sd=np.geomspace(0.5, 4, 8))
    estimates = fitter.fit(init_pars=grid, progressbar=False)
    for label in ("mu", "sd"):
        assert np.corrcoef(estimates[label], truth[label])[0, 1] > 0.95, label
    assert abs(fitter.r2.mean() - ceiling) < 0.02


def test_fixed_parameters_untouched(experiment, fitted):
    _, grid = fitted
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    for method in ("lm", "adam"):
        estimates = fitter.fit(init_pars=grid, fixed_pars=["sd"], method=method,
                               max_n_iterations=60, min_n_iterations=10, progressbar=False)
        np.testing.assert_allclose(estimates["sd"], grid["sd"], rtol=1e-6)
        assert not np.allclose(estimates["x"], grid["x"])


def test_shared_hrf_delay_recovered():
    experiment = simulate_prf_2d(n_voxels=60, grid_size=16, frames_per_sweep=20,
                                 noise_ratio=0.3, unique_hrfs=True, seed=5)
    truth = experiment.parameters.copy()
    truth["hrf_delay"] = 5.0
    data = experiment.model.predict(experiment.paradigm, truth)
    data += np.random.default_rng(1).standard_normal(data.shape) * 0.3 * data.std().to_numpy()
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    init = truth.copy()
    init["hrf_delay"] = 6.5
    for method in ("lm", "adam"):
        estimates = fitter.fit(init_pars=init, shared_pars=["hrf_delay"], method=method,
                               fixed_pars=["hrf_dispersion"], max_n_iterations=400,
                               min_n_iterations=50, learning_rate=0.02, progressbar=False)
        assert estimates["hrf_delay"].nunique() == 1
        assert abs(estimates["hrf_delay"].iloc[0] - 5.0) < 0.15, method


def test_unique_hrf_delay_recovered():
    experiment = simulate_prf_2d(n_voxels=80, grid_size=16, frames_per_sweep=20,
                                 noise_ratio=0.2, unique_hrfs=True, seed=7)
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    grid = fitter.fit_grid(x=XY, y=XY, sd=SD, hrf_delay=[4.5, 5.5, 6.5, 7.5],
                           hrf_dispersion=[1.0])
    estimates = fitter.fit(init_pars=fitter.refine_baseline_and_amplitude(grid),
                           fixed_pars=["hrf_dispersion"], progressbar=False)
    truth = experiment.parameters
    assert np.corrcoef(estimates["hrf_delay"], truth["hrf_delay"])[0, 1] > 0.8
    assert abs(fitter.r2.median() - experiment.noise_ceiling) < 0.02


def test_adam_early_stopping_and_intermediate(experiment, fitted):
    _, grid = fitted
    data = experiment.data.iloc[:, :20]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    fitter.fit(init_pars=grid.iloc[:20], method="adam", max_n_iterations=3000,
               min_n_iterations=50, lag=50, r2_atol=1e-4, progressbar=False,
               store_intermediate_parameters=True)
    assert fitter.n_iterations < 3000
    assert "r2_atol" in fitter.stop_reason
    steps = fitter.intermediate_parameters
    assert steps.index.name == "step" and len(steps) == fitter.n_iterations
    assert steps.columns.names == ["parameter", "voxel"]


def test_gaussian_noise_model_estimates_sigma2():
    experiment = simulate_prf_2d(n_voxels=40, grid_size=16, frames_per_sweep=25, seed=11)
    rng = np.random.default_rng(2)
    noise_sd = np.exp(rng.uniform(np.log(0.1), np.log(10), 40))  # 100× range in SD
    data = experiment.predictions + rng.standard_normal(experiment.data.shape) * noise_sd
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    fitter.fit(init_pars=experiment.parameters, method="adam", noise_model="gaussian",
               max_n_iterations=300, min_n_iterations=300, progressbar=False)
    ratio = fitter.estimated_sigma2.to_numpy() / noise_sd**2
    assert abs(np.median(ratio) - 1) < 0.1
    assert np.corrcoef(np.log(fitter.estimated_sigma2), np.log(noise_sd**2))[0, 1] > 0.99


def test_tensorboard_events(tmp_path, experiment, fitted):
    _, grid = fitted
    fitter = ParameterFitter(experiment.model, experiment.data.iloc[:, :10], experiment.paradigm,
                             log_dir=tmp_path)
    fitter.fit(init_pars=grid.iloc[:10], method="adam", max_n_iterations=100,
               min_n_iterations=100, progressbar=False)
    files = glob.glob(str(tmp_path / "fit-*" / "events.out.tfevents.*"))
    assert files
    accumulator = EventAccumulator(files[0], size_guidance={"tensors": 0, "histograms": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"]) | set(accumulator.Tags()["scalars"])
    for tag in ("cost", "r2/mean_current", "r2/mean_best", "learning_rate", "voxels_converged"):
        assert tag in tags, tag
    assert any(tag.startswith("parameters/") for tag in tags)


def test_keyboard_interrupt_returns_best_so_far(experiment, fitted, monkeypatch):
    _, grid = fitted
    fitter = ParameterFitter(experiment.model, experiment.data.iloc[:, :20], experiment.paradigm)
    start_r2 = fitter.get_rsq(grid.iloc[:20])
    original = _loop.CompiledLoop.run
    calls = {"n": 0}

    def interrupted(self, n_steps):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, n_steps)

    monkeypatch.setattr(_loop.CompiledLoop, "run", interrupted)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        estimates = fitter.fit(init_pars=grid.iloc[:20], method="adam", max_n_iterations=1000,
                               progressbar=False)
    assert fitter.stop_reason == "interrupted"
    assert estimates.notna().all().all()
    assert (fitter.r2 >= start_r2 - 1e-6).all()


def test_constant_and_diverging_voxels(experiment, fitted):
    _, grid = fitted
    data = experiment.data.iloc[:, :10].copy()
    data.columns = [f"v{i}" for i in range(10)]
    data["v3"] = 2.0  # constant voxel
    data["v5"] = data["v5"] * 1e25  # squares overflow float32: non-finite loss
    init = grid.iloc[:10].set_axis(data.columns)
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    with pytest.warns(RuntimeWarning) as record:
        fitter.fit(init_pars=init, method="adam", max_n_iterations=100, min_n_iterations=100,
                   progressbar=False)
    messages = " ".join(str(w.message) for w in record)
    assert "'v3'" in messages and "zero variance" in messages
    assert "'v5'" in messages and "non-finite" in messages
    assert np.isnan(fitter.r2["v3"])
    good = [c for c in data.columns if c not in ("v3", "v5")]
    assert (fitter.r2[good] > 0.3).all()


def test_confounds_are_projected_out(experiment):
    data = experiment.data.iloc[:, :30]
    drift = np.linspace(-1, 1, len(data))
    drifting = data + 50 * drift[:, None] * data.std().to_numpy()
    confounds = pd.DataFrame({"drift": drift, "constant": 1.0}, index=data.index)
    init = experiment.parameters.iloc[:30]
    with_confounds = ParameterFitter(experiment.model, drifting, experiment.paradigm)
    estimates = with_confounds.fit(init_pars=init, confounds=confounds, progressbar=False)
    for label in ("x", "y"):
        assert np.corrcoef(estimates[label], init[label])[0, 1] > 0.95


@pytest.mark.parametrize("call, error, match", [
    (lambda f, g: f.fit_grid(x=XY, y=XY), ValueError, "'sd'"),
    (lambda f, g: f.fit_grid(x=XY, y=XY, sd=SD, correlation_cost=True), TypeError,
     "correlation_cost"),
    (lambda f, g: f.fit(init_pars=g, fixed_pars=["size"]), ValueError, "'size'"),
    (lambda f, g: f.fit(init_pars=g, shared_pars=["sigma"]), ValueError, "'sigma'"),
    (lambda f, g: f.fit(init_pars=g.drop(columns="sd")), ValueError, "missing 'sd'"),
    (lambda f, g: f.fit(init_pars=g.assign(x=np.nan)), ValueError, "non-finite"),
    (lambda f, g: f.fit(init_pars=g, noise_model="poisson"), ValueError, "noise_model"),
    (lambda f, g: f.fit(init_pars=g, method="adam", betas=0.9), TypeError, "betas"),
    (lambda f, g: f.fit(init_pars=g, fixed_pars=["x"], shared_pars=["x"]), ValueError, "both"),
])
def test_bad_input(experiment, fitted, call, error, match):
    _, grid = fitted
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    with pytest.raises(error, match=match):
        call(fitter, grid)


def test_nan_data_rejected(experiment):
    data = experiment.data.copy()
    data.iloc[4, 2] = np.nan
    with pytest.raises(ValueError, match="column 2 has 1 non-finite value"):
        ParameterFitter(experiment.model, data, experiment.paradigm)


def test_fit_grid_honours_fixed_pars(experiment):
    data = experiment.data.iloc[:, :12]
    fixed = experiment.parameters.iloc[:12][["sd"]]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.fit_grid(x=XY, y=XY, fixed_pars=fixed)
    np.testing.assert_allclose(grid["sd"], fixed["sd"])
    assert np.corrcoef(grid["x"], experiment.parameters["x"].iloc[:12])[0, 1] > 0.9


def test_per_voxel_hrf_grid_reuses_spatial_predictions():
    experiment = simulate_prf_2d(n_voxels=5, grid_size=12, frames_per_sweep=15,
                                 unique_hrfs=True, seed=2)
    model = experiment.model
    fitter = ParameterFitter(model, experiment.data, experiment.paradigm)
    grid = fitter.fit_grid(x=[0.0, 2.0], y=[0.0], sd=[1.0, 2.0], hrf_delay=[5.0, 6.5],
                           hrf_dispersion=[1.0])
    # The grid's chosen rows predict exactly what the model predicts for them.
    np.testing.assert_allclose(fitter.get_predictions(grid).to_numpy(),
                               model.predict(experiment.paradigm, grid).to_numpy(), rtol=1e-4,
                               atol=1e-4)
    assert isinstance(model, GaussianPRF2DWithHRF) and model.hrf_model.unique_hrfs
    assert set(grid["hrf_delay"]) <= {5.0, 6.5}
    assert isinstance(model.hrf_model, SPMHRFModel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitter.get_rsq(grid)


def test_noise_models_reach_the_same_optimum_on_heteroscedastic_voxels():
    experiment = simulate_prf_2d(n_voxels=30, grid_size=16, frames_per_sweep=20,
                                 noise_ratio=0.3, seed=11)
    scale = np.exp(np.random.default_rng(2).uniform(np.log(0.1), np.log(10), 30))
    data = experiment.data * scale  # voxels differ 100× in noise (and signal) scale
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.refine_baseline_and_amplitude(fitter.fit_grid(x=XY, y=XY, sd=SD))
    r2 = {}
    for noise_model in ("ssq", "gaussian"):
        fitter.fit(init_pars=grid, method="adam", noise_model=noise_model,
                   max_n_iterations=400, r2_atol=1e-5, progressbar=False)
        r2[noise_model] = fitter.r2.to_numpy()
    fitter.fit(init_pars=grid, method="lm", progressbar=False)
    np.testing.assert_allclose(r2["ssq"], r2["gaussian"], atol=2e-3)
    np.testing.assert_allclose(r2["gaussian"], fitter.r2.to_numpy(), atol=5e-3)


def test_keyboard_interrupt_during_grid_keeps_finished_chunks(experiment, monkeypatch):
    from braincoder.optimize import _grid as parameters_module

    data = experiment.data.iloc[:, :40]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm, memory_limit=20_000)
    original = parameters_module.search_chunk
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(parameters_module, "search_chunk", interrupted)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        grid = fitter.fit_grid(x=XY, y=XY, sd=SD)
    searched = grid.notna().all(axis=1)
    assert 0 < searched.sum() < len(grid)
    reference = ParameterFitter(experiment.model, data, experiment.paradigm).fit_grid(
        x=XY, y=XY, sd=SD)
    np.testing.assert_allclose(grid[searched], reference[searched], rtol=1e-4, atol=1e-4)


def test_closed_form_jacobian_matches_forward_mode():
    import tensorflow as tf

    from braincoder.optimize._bounds import parameter_bounds
    from braincoder.optimize._lm import LMSolver

    experiment = simulate_prf_2d(n_voxels=7, grid_size=12, frames_per_sweep=10, seed=0)
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    lower, upper = parameter_bounds(experiment.model)
    theta = tf.constant(experiment.parameters.to_numpy(np.float32) + np.float32(
        [0.1, -0.1, 0.2, 0.3, 0.1]))
    for columns in ([0, 1, 2, 3, 4], [0, 2]):
        generic = LMSolver(fitter._predict, columns, lower, upper, None, fitter._linear)
        closed = LMSolver(fitter._predict, columns, lower, upper, None, fitter._linear,
                          experiment.model._rf_jacobian, 3)
        prediction_a, jacobian_a = generic._jacobian(theta)
        prediction_b, jacobian_b = closed._jacobian(theta)
        np.testing.assert_allclose(prediction_a, prediction_b, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(jacobian_a, jacobian_b, rtol=1e-4, atol=1e-4)


def test_any_keras_optimizer_and_default_log_dir(experiment, fitted, tmp_path, monkeypatch):
    import keras

    _, grid = fitted
    monkeypatch.chdir(tmp_path)
    data = experiment.data.iloc[:, :10]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm, log_dir=None)
    start = fitter.get_rsq(grid.iloc[:10]).mean()
    fitter.fit(init_pars=grid.iloc[:10], optimizer=keras.optimizers.SGD(learning_rate=1e-4),
               max_n_iterations=50, min_n_iterations=50, progressbar=False)
    assert fitter.r2.mean() >= start
    assert not glob.glob(str(tmp_path / "**" / "events.out.tfevents.*"), recursive=True)
    with pytest.raises(TypeError, match="optimizer and Adam keywords"):
        fitter.fit(init_pars=grid.iloc[:10], optimizer=keras.optimizers.SGD(), beta_1=0.5)


def test_gaussian_noise_model_converges_faster_with_first_order_steps():
    # Voxels 100× apart in scale: with SSQ one learning rate cannot suit them all, the
    # Gaussian likelihood divides each voxel's gradient by its noise variance. (Adam already
    # normalises each entry's gradient, so there both noise models take the same path.)
    import keras

    experiment = simulate_prf_2d(n_voxels=32, grid_size=16, frames_per_sweep=20,
                                 noise_ratio=0.3, seed=11)
    scale = np.exp(np.random.default_rng(2).uniform(np.log(0.1), np.log(10), 32))
    data = experiment.data * scale
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.refine_baseline_and_amplitude(fitter.fit_grid(x=XY, y=XY, sd=SD))
    fitter.fit(init_pars=grid, progressbar=False)
    optimum = fitter.r2.to_numpy()
    gap = {}
    # Gaussian noise model: 200 steps; SSQ: twice as many, and still further from the optimum.
    for noise_model, steps in (("ssq", 400), ("gaussian", 200)):
        fitter.fit(init_pars=grid, optimizer=keras.optimizers.SGD(learning_rate=1e-3),
                   noise_model=noise_model, max_n_iterations=steps, min_n_iterations=steps,
                   progressbar=False)
        gap[noise_model] = (optimum - fitter.r2.to_numpy()).mean()
    assert gap["gaussian"] < 0.7 * gap["ssq"]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        fitter.fit(init_pars=grid, optimizer=keras.optimizers.SGD(learning_rate=1e-2),
                   noise_model="ssq", max_n_iterations=100, min_n_iterations=100,
                   progressbar=False)
    assert len(fitter.frozen_voxels) > 0
    fitter.fit(init_pars=grid, optimizer=keras.optimizers.SGD(learning_rate=1e-2),
               noise_model="gaussian", max_n_iterations=100, min_n_iterations=100,
               progressbar=False)
    assert len(fitter.frozen_voxels) == 0


def test_checkpoint_dir_resumes_an_interrupted_fit(experiment, fitted, tmp_path, monkeypatch):
    import dataclasses

    from braincoder.optimize import _plan

    _, grid = fitted
    data, init = experiment.data.iloc[:, :30], grid.iloc[:30]
    limit = 10 * 4 * (2 * 6 * (400 + 160) + 4 * 160)  # ten voxels per chunk: three chunks

    def fitter():
        return ParameterFitter(experiment.model, data, experiment.paradigm, memory_limit=limit)

    reference = fitter().fit(init_pars=init, progressbar=False)
    original = _plan.fit_chunk_lm
    calls = {"n": 0, "interrupt_at": 2}

    def counted(*args, **kwargs):
        calls["n"] += 1
        result = original(*args, **kwargs)
        if calls["n"] == calls["interrupt_at"]:
            return dataclasses.replace(result, stop_reason="interrupted")
        return result

    monkeypatch.setattr(_plan, "fit_chunk_lm", counted)
    directory = tmp_path / "checkpoints"
    first = fitter()
    first.fit(init_pars=init, progressbar=False, checkpoint_dir=directory)
    assert "interrupted" in first.stop_reason and calls["n"] == 2
    # Only the finished chunk is on disk; the interrupted one is not.
    assert sorted(p.name for p in directory.glob("chunk-*")) == ["chunk-000000.npz"]

    calls.update(n=0, interrupt_at=None)
    resumed = fitter()
    estimates = resumed.fit(init_pars=init, progressbar=False, checkpoint_dir=directory)
    assert resumed.resumed_chunks == 1 and calls["n"] == 2
    pd.testing.assert_frame_equal(estimates, reference, atol=1e-5)
    pd.testing.assert_series_equal(resumed.r2, fitter().get_rsq(reference), atol=1e-6)

    calls["n"] = 0
    again = fitter()
    pd.testing.assert_frame_equal(
        again.fit(init_pars=init, progressbar=False, checkpoint_dir=directory), estimates)
    assert again.resumed_chunks == 3 and calls["n"] == 0

    with pytest.raises(ValueError, match="holds the chunks of a different fit"):
        fitter().fit(init_pars=init + 0.01, progressbar=False, checkpoint_dir=directory)
    with pytest.raises(ValueError, match="different fit"):
        fitter().fit(init_pars=init, progressbar=False, checkpoint_dir=directory,
                     max_n_iterations=50)


def test_refit_with_other_bounds_reuses_the_compiled_solver(experiment):
    data = experiment.data.iloc[:, :30]
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.refine_baseline_and_amplitude(fitter.fit_grid(x=XY, y=XY, sd=SD))
    fitter.fit(init_pars=grid, progressbar=False)
    # A second start whose values lie outside the first fit's bounds widens them.
    wider = grid.copy()
    wider.iloc[0, wider.columns.get_loc("sd")] = 0.01
    wider.iloc[1, wider.columns.get_loc("x")] = 40.0
    second = fitter.fit(init_pars=wider, progressbar=False)
    fresh = ParameterFitter(experiment.model, data, experiment.paradigm)
    expected = fresh.fit(init_pars=wider, progressbar=False)
    assert len(fitter._solver_cache) == 1
    pd.testing.assert_frame_equal(second, expected, rtol=1e-5, atol=1e-5)


def test_tuning_recovered_when_the_paradigm_carries_stimulus_amplitude():
    rng = np.random.default_rng(3)
    n = 30
    truth = pd.DataFrame({"mu": rng.uniform(-np.pi, np.pi, n), "kappa": rng.uniform(1, 4, n),
                          "amplitude": rng.uniform(1, 2, n), "baseline": rng.normal(0, 0.2, n)})
    # the tuning curve is the von Mises density: amplitudes giving peaks of 1 to 2
    truth["amplitude"] *= 2 * np.pi * special.i0e(truth["kappa"])
    model = VonMisesPRF(model_stimulus_amplitude=True)
    paradigm = pd.DataFrame({"x": rng.uniform(-np.pi, np.pi, 200),
                             "amplitude": rng.choice([0.5, 1.0, 2.0], 200)})
    data = model.simulate(paradigm, truth, noise=0.3, seed=4)
    fitter = ParameterFitter(model, data, paradigm)
    grid = fitter.fit_grid(mu=np.linspace(-np.pi, np.pi, 24, endpoint=False),
                           kappa=np.geomspace(0.5, 8, 10), amplitude=[1.0], baseline=[0.0])
    estimates = fitter.fit(init_pars=fitter.refine_baseline_and_amplitude(grid),
                           progressbar=False)
    for label in ("kappa", "amplitude", "baseline"):
        assert np.corrcoef(estimates[label], truth[label])[0, 1] > 0.95, label
    error = np.angle(np.exp(1j * (estimates["mu"] - truth["mu"])))
    assert np.median(np.abs(error)) < 0.05


def test_fitting_many_models_in_one_process_does_not_warn_of_retracing(caplog):
    experiment = simulate_prf_2d(n_voxels=20, grid_size=10, n_sweeps=4, frames_per_sweep=10,
                                 seed=8)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for method in ["lm", "adam"] * 6:  # TensorFlow warns from the fifth retrace
            fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
            grid = fitter.fit_grid(x=XY[::3], y=XY[::3], sd=SD[::3])
            fitter.fit(init_pars=grid, method=method, progressbar=False, max_n_iterations=20,
                       min_n_iterations=10)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_amplitudes_are_free_in_fit_and_positive_in_the_grid_only_on_request():
    rng = np.random.default_rng(12)
    n_voxels = 30
    model = GaussianPRF()
    paradigm = pd.DataFrame({"x": np.tile(np.linspace(0, 10, 40), 3)})
    truth = pd.DataFrame({"mu": rng.uniform(2, 8, n_voxels), "sd": rng.uniform(0.8, 2, n_voxels),
                          "amplitude": rng.choice([-1, 1], n_voxels) * rng.uniform(1, 2, n_voxels),
                          "baseline": 0.0})
    data = model.simulate(paradigm, truth, noise=0.2, seed=13)
    fitter = ParameterFitter(model, data, paradigm)
    grid_values = {"mu": np.linspace(0, 10, 21), "sd": [0.5, 1.0, 1.5, 2.0, 3.0]}
    assert (fitter.fit_grid(**grid_values)["amplitude"] >= 0).all()
    grid = fitter.fit_grid(**grid_values, positive_amplitude=False)
    estimates = fitter.fit(init_pars=grid, progressbar=False)
    assert (np.sign(estimates["amplitude"]) == np.sign(truth["amplitude"])).all()
    assert np.corrcoef(estimates["amplitude"], truth["amplitude"])[0, 1] > 0.99


def test_lm_voxel_pulled_against_a_bound_stops_at_it():
    # Receptive fields far right of the field: the centre is pulled against its upper bound
    # (1.5 × the field's extent) where the loss keeps falling very slowly.
    experiment = simulate_prf_2d(n_voxels=12, grid_size=12, n_sweeps=8, frames_per_sweep=15,
                                 noise_ratio=0.1, seed=5)
    truth = experiment.parameters.copy()
    truth["x"], truth["sd"] = 14.0, 6.0
    data = experiment.model.predict(experiment.paradigm, truth)
    data = data + np.random.default_rng(0).normal(0, 0.1 * data.std().mean(), data.shape)
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.refine_baseline_and_amplitude(
        fitter.fit_grid(x=XY, y=XY, sd=SD, baseline=[0.0], amplitude=[1.0]))
    estimates = fitter.fit(init_pars=grid, max_n_iterations=1000, progressbar=False)
    assert fitter.n_at_cap == 0 and fitter.n_iterations < 1000
    upper = 1.5 * np.abs(experiment.model.grid_coordinates.to_numpy()).max()
    np.testing.assert_allclose(estimates["x"], upper, rtol=1e-3)
    assert fitter.at_bounds["x"].all() and not fitter.at_bounds["baseline"].any()
    assert (fitter.r2 > 0.5).all()
    # Stopping by R² gain alone lets the same voxels run much longer.
    fitter.fit(init_pars=grid, max_n_iterations=1000, progressbar=False, xtol=0.0,
               stall_r2=0.0)
    slow = fitter.voxel_iterations.sum()
    fitter.fit(init_pars=grid, max_n_iterations=1000, progressbar=False)
    assert fitter.voxel_iterations.sum() <= slow
