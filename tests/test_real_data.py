"""Example V1 data (Szinte et al. 2024), per-voxel HRF fits and LM stopping on real-like data."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from braincoder.datasets import load_szinte2024, simulate_prf_2d
from braincoder.hrf import SPMHRFModel, convolve_per_voxel, hrf_kernel_jacobian
from braincoder.models import GaussianPRF2DWithHRF, GaussianPRFWithHRF
from braincoder.optimize import ParameterFitter
from braincoder.optimize._jacobians import PerVoxelHRFJacobian, forward_mode_jacobian


@pytest.fixture(scope="module")
def v1():
    return load_szinte2024(resize_factor=4.0, best_voxels=40)


def test_loader_keys_shapes_and_order():
    data = load_szinte2024(best_voxels=5)
    assert {"stimulus", "paradigm", "grid_coordinates", "v1_timeseries", "prf_pars", "r2",
            "tr"} <= set(data)
    assert data["stimulus"].shape == (150, 80, 45)
    assert data["paradigm"].shape == (150, 3600)
    assert data["grid_coordinates"].shape == (3600, 2)
    assert data["v1_timeseries"].shape == (150, 5)
    assert data["tr"] == pytest.approx(1.317025)
    # Best voxels first, labels shared by the time series, the table and R².
    assert data["r2"].is_monotonic_decreasing
    assert list(data["v1_timeseries"].columns) == list(data["prf_pars"].index)
    assert list(data["prf_pars"].columns) == ["x", "y", "sd", "baseline", "amplitude"]
    # The paradigm is the stimulus flattened in grid_coordinates' (C) order.
    np.testing.assert_array_equal(data["paradigm"].to_numpy()[7],
                                  data["stimulus"][7].ravel())
    x = data["grid_coordinates"]["x"].to_numpy().reshape(80, 45)
    assert np.all(np.diff(x[:, 0]) > 0) and np.all(x == x[:, :1])


def test_loader_resize_keeps_the_field(v1):
    full = load_szinte2024(best_voxels=1)
    assert v1["stimulus"].shape == (150, 20, 11)
    assert v1["paradigm"].shape == (150, 220) and len(v1["grid_coordinates"]) == 220
    for column in ("x", "y"):
        small, big = v1["grid_coordinates"][column], full["grid_coordinates"][column]
        assert small.min() == pytest.approx(big.min(), abs=1e-4)
        assert small.max() == pytest.approx(big.max(), abs=1e-4)
    # The same frames show the bar, with about the same mean intensity.
    shown = v1["paradigm"].sum(axis=1) > 0
    assert (shown == (full["paradigm"].sum(axis=1) > 0)).all()
    assert v1["stimulus"].mean() == pytest.approx(full["stimulus"].mean(), rel=0.1)
    with pytest.raises(ValueError, match="resize_factor"):
        load_szinte2024(resize_factor=0)


def test_v1_fit_recovers_published_centres(v1):
    model = GaussianPRF2DWithHRF(grid_coordinates=v1["grid_coordinates"],
                                 hrf_model=SPMHRFModel(tr=v1["tr"]))
    fitter = ParameterFitter(model, v1["v1_timeseries"], v1["paradigm"])
    grid = fitter.fit_grid(x=np.linspace(-8, 8, 9), y=np.linspace(-5, 5, 6),
                           sd=np.geomspace(0.5, 6, 6), baseline=[0.0], amplitude=[1.0])
    fitter.fit(init_pars=fitter.refine_baseline_and_amplitude(grid), progressbar=False)
    assert fitter.n_at_cap == 0 and fitter.stop_reason == "all voxels converged"
    assert fitter.voxel_stop_reasons.index.equals(v1["v1_timeseries"].columns)
    assert (fitter.voxel_iterations > 0).all()
    # The best published voxels: our centres agree with the published ones.
    published = v1["prf_pars"]
    for label in ("x", "y"):
        error = (fitter.estimated_parameters[label] - published[label]).abs().median()
        assert error < 0.5, label
    assert fitter.r2.median() > 0.9 * v1["r2"].median()


def _hrf_experiment(n_voxels=30, seed=0, model_class="2d"):
    rng = np.random.default_rng(seed)
    if model_class == "2d":
        experiment = simulate_prf_2d(n_voxels=n_voxels, grid_size=12, n_sweeps=8,
                                     frames_per_sweep=20, noise_ratio=0.05, unique_hrfs=True,
                                     position_limit=3.0, seed=seed)
        return experiment.model, experiment.paradigm, experiment.parameters, experiment.data
    hrf = SPMHRFModel(tr=1.0, unique_hrfs=True)
    paradigm = pd.DataFrame({"x": np.tile(np.r_[np.linspace(-3, 3, 15), np.zeros(10)], 8)})
    model = GaussianPRFWithHRF(hrf_model=hrf)
    truth = pd.DataFrame({"mu": rng.uniform(-2, 2, n_voxels), "sd": rng.uniform(0.5, 1.5, n_voxels),
                          "amplitude": rng.uniform(1, 2, n_voxels), "baseline": 0.0,
                          "hrf_delay": rng.uniform(4.5, 6.5, n_voxels),
                          "hrf_dispersion": rng.uniform(0.7, 1.3, n_voxels)})
    signal = model.predict(paradigm, truth)
    noise = rng.normal(0, 0.05 * signal.std().to_numpy(), signal.shape)
    return model, paradigm, truth, signal + noise


@pytest.mark.parametrize("kind", ["2d", "1d"])
def test_per_voxel_hrf_path_matches_general_path(kind):
    model, paradigm, truth, _ = _hrf_experiment(n_voxels=6, model_class=kind)
    theta = tf.constant(truth.to_numpy(np.float32))
    columns = list(range(theta.shape[1]))
    tensor = tf.constant(model.get_paradigm(paradigm).to_numpy(np.float32))
    provider = PerVoxelHRFJacobian(model, tensor, columns)

    def general(values):
        return model._predict(tensor, values)

    expected, expected_jacobian = forward_mode_jacobian(general, theta, columns)
    prediction, jacobian = provider(theta)
    scale = float(tf.reduce_max(tf.abs(expected)))
    np.testing.assert_allclose(prediction, expected, atol=1e-5 * scale)
    np.testing.assert_allclose(provider.predict(theta), expected, atol=1e-5 * scale)
    for column in columns:  # per column: derivatives differ in scale across parameters
        block = slice(column * 6, (column + 1) * 6)
        reference = expected_jacobian[:, block]
        tolerance = 1e-4 * float(tf.reduce_max(tf.abs(reference))) + 1e-7
        np.testing.assert_allclose(jacobian[:, block], reference, atol=tolerance)


def test_kernel_jacobian_matches_finite_differences():
    hrf = SPMHRFModel(tr=0.8, unique_hrfs=True)
    parameters = np.array([[5.0, 0.9], [6.2, 1.3]])
    kernels, derivatives = hrf_kernel_jacobian(hrf, parameters)
    step = 1e-3
    for column, derivative in enumerate(derivatives):
        shifted = parameters.copy()
        shifted[:, column] += step
        up = hrf.get_hrf(shifted.astype(np.float32)).numpy().astype(np.float64)
        shifted[:, column] -= 2 * step
        down = hrf.get_hrf(shifted.astype(np.float32)).numpy().astype(np.float64)
        np.testing.assert_allclose(derivative, (up - down) / (2 * step), atol=2e-3)
    signals = np.random.default_rng(0).standard_normal((40, 2)).astype(np.float32)
    reference = np.stack([np.convolve(signals[:, k], kernels.numpy()[:, k])[:40]
                          for k in range(2)], axis=1)
    np.testing.assert_allclose(convolve_per_voxel(signals, kernels), reference, atol=1e-5)


@pytest.mark.parametrize("kind", ["2d", "1d"])
def test_per_voxel_hrf_recovery(kind):
    model, paradigm, truth, data = _hrf_experiment(n_voxels=30, seed=1, model_class=kind)
    fitter = ParameterFitter(model, data, paradigm)
    init = truth.copy()
    init["hrf_delay"], init["hrf_dispersion"] = 6.0, 1.0
    for label in [c for c in truth.columns if not c.startswith("hrf")]:
        init[label] = truth[label] * 1.05 + 0.05  # start near, not at, the truth
    estimates = fitter.fit(init_pars=init, progressbar=False, max_n_iterations=300)
    assert fitter.n_at_cap == 0
    error = (estimates["hrf_delay"] - truth["hrf_delay"]).abs()
    assert error.median() < 0.1
    assert np.corrcoef(estimates["hrf_delay"], truth["hrf_delay"])[0, 1] > 0.95
    assert fitter.r2.median() > 0.9


def test_non_finite_data_names_the_voxel(v1):
    data = v1["v1_timeseries"].copy()
    data.iloc[3, 2] = np.nan
    model = GaussianPRF2DWithHRF(grid_coordinates=v1["grid_coordinates"],
                                 hrf_model=SPMHRFModel(tr=v1["tr"]))
    with pytest.raises(ValueError, match=str(data.columns[2])):
        ParameterFitter(model, data, v1["paradigm"])


@pytest.mark.parametrize("source", ["szinte2024", "simulated"])
def test_separable_gaussian_path_matches_full_path(source, v1):
    from braincoder.optimize._jacobians import LinearJacobian
    from braincoder.optimize._separable import separable_provider

    if source == "szinte2024":  # grid x-major (x outer, y inner)
        model = GaussianPRF2DWithHRF(grid_coordinates=v1["grid_coordinates"],
                                     hrf_model=SPMHRFModel(tr=v1["tr"]))
        paradigm, theta = v1["paradigm"], v1["prf_pars"].iloc[:8]
    else:  # image grid (y rows outer, x inner)
        experiment = simulate_prf_2d(n_voxels=8, grid_size=10, n_sweeps=4, frames_per_sweep=12,
                                     seed=2)
        model, paradigm, theta = experiment.model, experiment.paradigm, experiment.parameters
    fitter = ParameterFitter(model, pd.DataFrame(np.ones((len(paradigm), 1))), paradigm)
    theta = tf.constant(theta.to_numpy(np.float32) + np.float32([0.2, -0.1, 0.3, 0.1, 0.2]))
    columns = [0, 1, 2, 3, 4]
    separable = separable_provider(model, fitter._paradigm_tensor, columns)
    assert separable is not None
    full = LinearJacobian(fitter._linear, columns, model._rf_jacobian, 3, 4)
    expected, expected_jacobian = full(theta)
    prediction, jacobian = separable(theta)
    scale = float(tf.reduce_max(tf.abs(expected)))
    np.testing.assert_allclose(prediction, expected, atol=1e-5 * scale)
    np.testing.assert_allclose(separable.predict(theta), expected, atol=1e-5 * scale)
    for column in columns:
        block = slice(column * 8, (column + 1) * 8)
        tolerance = 1e-5 * float(tf.reduce_max(tf.abs(expected_jacobian[:, block]))) + 1e-7
        np.testing.assert_allclose(jacobian[:, block], expected_jacobian[:, block],
                                   atol=tolerance)
