"""Every encoding model's predict against a plain-numpy implementation of its formula.

Also: labels kept end to end, simulate, stored-argument fallbacks, parameter transforms
and the errors raised for bad input.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import special, stats

from braincoder.hrf import CustomHRFModel, SPMHRFDerivativeModel, SPMHRFModel
from braincoder.models import (
    DifferenceOfGaussiansPRF2D,
    DifferenceOfGaussiansPRF2DWithHRF,
    DivisiveNormalizationGaussianPRF2D,
    DivisiveNormalizationGaussianPRF2DWithHRF,
    GaussianPRF,
    GaussianPRF2D,
    GaussianPRF2DWithHRF,
    GaussianPRFWithHRF,
    LinearModel,
    LinearModelWithBaseline,
    LinearModelWithBaselineHRF,
    LogGaussianPRF,
    LogGaussianPRFWithHRF,
    VonMisesPRF,
)
from braincoder.stimuli import make_grid_coordinates
from braincoder.utils.math import Bounded, Softplus

TR = 1.5
N_T = 30
N_UNITS = 3
N_VOXELS = 4
GRID = make_grid_coordinates(5, extent=2.0)
GX = GRID["x"].to_numpy()[:, None]
GY = GRID["y"].to_numpy()[:, None]
PIXEL_AREA = np.diff(np.unique(GX)).mean() * np.diff(np.unique(GY)).mean()

LINEAR = (LinearModel, LinearModelWithBaseline, LinearModelWithBaselineHRF)
PRF_2D = (GaussianPRF2D, DifferenceOfGaussiansPRF2D, DivisiveNormalizationGaussianPRF2D,
          GaussianPRF2DWithHRF, DifferenceOfGaussiansPRF2DWithHRF,
          DivisiveNormalizationGaussianPRF2DWithHRF)
RANGES = {
    "x": (-1.5, 1.5), "y": (-1.5, 1.5), "sd": (0.5, 1.5), "amplitude": (0.5, 2.0),
    "baseline": (-1.0, 1.0), "srf_amplitude": (0.1, 0.6), "srf_size": (1.5, 3.0),
    "neural_baseline": (0.2, 1.0), "surround_baseline": (0.5, 2.0), "kappa": (0.5, 3.0),
    "rf_amplitude": (0.5, 2.0), "bold_baseline": (-1.0, 1.0),
    "hrf_delay": (4.5, 6.5), "hrf_dispersion": (0.7, 1.3), "hrf_delta": (-0.5, 0.5),
}


# ---------------------------------------------------------------------------- reference
def gauss2d(x, y, sd):
    """Peak-one isotropic Gaussian at every pixel, shape (n_pixels, n_units)."""
    return np.exp(-((GX - x) ** 2 + (GY - y) ** 2) / (2 * sd**2))


def norm2d(x, y, sd):
    """Gaussian divided by sd·√(2π)/pixel area (the default ``normalize_rf=True``)."""
    return gauss2d(x, y, sd) * PIXEL_AREA / (sd * np.sqrt(2 * np.pi))


def spm_kernels(tr, n_units, delay=None, dispersion=None):
    """SPM kernels at t = k·TR, unit sum, (n_kernel, n_units), with scipy."""
    t = np.arange(int(32 / tr) + 1)[:, None] * tr
    delay = np.full(n_units, 6.0) if delay is None else delay
    dispersion = np.full(n_units, 1.0) if dispersion is None else dispersion
    kernels = (stats.gamma.pdf(t, delay / dispersion, scale=dispersion)
               - 0.167 * stats.gamma.pdf(t, 16.0))
    return kernels / kernels.sum(axis=0)


def convolve_columns(signal, kernels):
    return np.column_stack([np.convolve(signal[:, v], kernels[:, v])[: len(signal)]
                            for v in range(signal.shape[1])])


def reference_predict(model_class, paradigm, parameters, weights=None, hrf=None):
    """Plain numpy (float64) prediction of every model, written from its documented formula."""
    p = {label: parameters[label].to_numpy(np.float64) for label in parameters.columns}
    s = np.asarray(paradigm, dtype=np.float64)
    if model_class in LINEAR:
        neural = s @ weights
        weights = None
    elif model_class in (GaussianPRF, GaussianPRFWithHRF):
        neural = p["amplitude"] * np.exp(-0.5 * ((s - p["mu"]) / p["sd"]) ** 2)
    elif model_class is VonMisesPRF:  # the von Mises density
        neural = p["amplitude"] * np.exp(p["kappa"] * np.cos(s - p["mu"])) / (
            2 * np.pi * special.i0(p["kappa"]))
    elif model_class in (LogGaussianPRF, LogGaussianPRFWithHRF):  # mean and SD, natural units
        s2 = np.log(1 + p["sd"] ** 2 / p["mu"] ** 2)
        neural = p["amplitude"] * np.exp(
            -((np.log(s) - np.log(p["mu"] / np.sqrt(1 + p["sd"] ** 2 / p["mu"] ** 2))) ** 2)
            / (2 * s2))
    elif model_class in (GaussianPRF2D, GaussianPRF2DWithHRF):
        neural = s @ norm2d(p["x"], p["y"], p["sd"]) * p["amplitude"]
    elif model_class in (DifferenceOfGaussiansPRF2D, DifferenceOfGaussiansPRF2DWithHRF):
        rf = (gauss2d(p["x"], p["y"], p["sd"])
              - p["srf_amplitude"] * gauss2d(p["x"], p["y"], p["sd"] * p["srf_size"]))
        neural = s @ rf * p["amplitude"] * PIXEL_AREA / (p["sd"] * np.sqrt(2 * np.pi))
    else:  # divisive normalisation
        centre = s @ norm2d(p["x"], p["y"], p["sd"])
        surround = s @ norm2d(p["x"], p["y"], p["sd"] * p["srf_size"])
        neural = ((p["rf_amplitude"] * centre + p["neural_baseline"])
                  / (p["srf_amplitude"] * p["rf_amplitude"] * surround
                     + p["surround_baseline"]))
        if hrf is not None:
            neural = neural - p["neural_baseline"] / p["surround_baseline"]
    if hrf == "shared":
        neural = convolve_columns(neural, spm_kernels(TR, neural.shape[1]))
    elif hrf == "unique":
        neural = convolve_columns(neural, spm_kernels(TR, neural.shape[1], p["hrf_delay"],
                                                      p["hrf_dispersion"]))
    response = neural + p["baseline"] if "baseline" in p else neural
    if "bold_baseline" in p:
        response = response + p["bold_baseline"]
    return response if weights is None else response @ weights


def build(model_class, hrf=None, **kwargs):
    """Instantiate a model with the test grid and the requested HRF."""
    if hrf is not None:
        kwargs["hrf_model"] = SPMHRFModel(tr=TR, unique_hrfs=hrf == "unique")
    if model_class in PRF_2D:
        return model_class(GRID, **kwargs)
    return model_class(**kwargs)


def random_parameters(model, n, rng, index=None):
    """Random natural parameters for ``model``, in its label order."""
    values = {}
    for label in model.get_parameter_labels():
        low, high = RANGES.get(label, (1.0, 5.0))  # mu of the 1D models
        if label == "mu" and isinstance(model, VonMisesPRF):
            low, high = -np.pi, np.pi
        values[label] = rng.uniform(low, high, n)
    return pd.DataFrame(values, index=index)


def random_paradigm(model, rng, n_t=N_T):
    if isinstance(model, PRF_2D):
        return (rng.random((n_t, len(GRID))) > 0.7).astype(float)
    if isinstance(model, LINEAR):
        return rng.normal(size=(n_t, 3))
    if isinstance(model, VonMisesPRF):
        return rng.uniform(-np.pi, np.pi, (n_t, 1))
    return rng.uniform(0.5, 6.0, (n_t, 1))


CASES = [(LinearModel, None), (LinearModelWithBaseline, None),
         (LinearModelWithBaselineHRF, "shared"), (LinearModelWithBaselineHRF, "unique"),
         (GaussianPRF, None), (VonMisesPRF, None), (LogGaussianPRF, None),
         (GaussianPRF2D, None), (DifferenceOfGaussiansPRF2D, None),
         (DivisiveNormalizationGaussianPRF2D, None)]
CASES += [(cls, hrf) for cls in (GaussianPRFWithHRF, LogGaussianPRFWithHRF, GaussianPRF2DWithHRF,
                                 DifferenceOfGaussiansPRF2DWithHRF,
                                 DivisiveNormalizationGaussianPRF2DWithHRF)
          for hrf in ("shared", "unique")]


# Linear models always take weights (feature × voxel); the others with and without.
CASES = [(cls, hrf, with_weights) for cls, hrf in CASES
         for with_weights in ((True,) if cls in LINEAR else (False, True))]


@pytest.mark.parametrize("model_class, hrf, with_weights", CASES, ids=[
    f"{cls.__name__}-{hrf or 'nohrf'}-{'weights' if w else 'units'}" for cls, hrf, w in CASES])
def test_predict_matches_numpy(model_class, hrf, with_weights):
    rng = np.random.default_rng(len(CASES))
    model = build(model_class, hrf)
    paradigm = random_paradigm(model, rng)
    if model_class in LINEAR:
        weights = rng.normal(size=(3, N_VOXELS))
        parameters = random_parameters(model, N_VOXELS, rng)
    else:
        parameters = random_parameters(model, N_UNITS, rng)
        weights = rng.normal(size=(N_UNITS, N_VOXELS)) if with_weights else None
    got = model.predict(paradigm, parameters if len(parameters.columns) else None, weights)
    expected = reference_predict(model_class, paradigm, parameters, weights, hrf)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class", [GaussianPRF2D, DifferenceOfGaussiansPRF2D,
                                         DivisiveNormalizationGaussianPRF2D, VonMisesPRF])
def test_peak_one_option_drops_the_normalisation(rng, model_class):
    """``normalize_rf=False``: the default prediction without the density factor."""
    model = build(model_class, normalize_rf=False)
    parameters = random_parameters(model, N_UNITS, rng)
    paradigm = random_paradigm(model, rng)
    got = model.predict(paradigm, parameters).to_numpy()
    p = {label: parameters[label].to_numpy(np.float64) for label in parameters.columns}
    s = np.asarray(paradigm, dtype=np.float64)
    if model_class is VonMisesPRF:
        expected = p["baseline"] + p["amplitude"] * np.exp(p["kappa"] * (np.cos(s - p["mu"]) - 1))
    elif model_class is GaussianPRF2D:
        expected = p["baseline"] + s @ gauss2d(p["x"], p["y"], p["sd"]) * p["amplitude"]
    elif model_class is DifferenceOfGaussiansPRF2D:
        rf = (gauss2d(p["x"], p["y"], p["sd"])
              - p["srf_amplitude"] * gauss2d(p["x"], p["y"], p["sd"] * p["srf_size"]))
        expected = p["baseline"] + s @ rf * p["amplitude"]
    else:
        centre = s @ gauss2d(p["x"], p["y"], p["sd"])
        surround = s @ gauss2d(p["x"], p["y"], p["sd"] * p["srf_size"])
        expected = ((p["rf_amplitude"] * centre + p["neural_baseline"])
                    / (p["srf_amplitude"] * p["rf_amplitude"] * surround
                       + p["surround_baseline"]))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_log_gaussian_mode_parameterisation_is_a_gaussian_on_the_log_axis(rng):
    model = LogGaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=TR), parameterisation="mode_sd_log")
    parameters = random_parameters(model, N_UNITS, rng)
    paradigm = random_paradigm(model, rng)
    p = {label: parameters[label].to_numpy(np.float64) for label in parameters.columns}
    neural = p["amplitude"] * np.exp(
        -0.5 * ((np.log(paradigm) - np.log(p["mu"])) / p["sd"]) ** 2)
    expected = convolve_columns(neural, spm_kernels(TR, N_UNITS)) + p["baseline"]
    np.testing.assert_allclose(model.predict(paradigm, parameters).to_numpy(), expected,
                               rtol=1e-5, atol=1e-5)


def test_basis_functions_mixed_by_weights_equal_weighted_sum(rng):
    model = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=TR))
    x = np.linspace(0, 10, N_T)
    basis = pd.DataFrame({"mu": [2.0, 5.0, 8.0], "sd": 1.5, "amplitude": 1.0, "baseline": 0.1},
                         index=pd.Index(["b0", "b1", "b2"], name="basis"))
    weights = pd.DataFrame(rng.normal(size=(3, 2)), index=basis.index,
                           columns=pd.Index(["left", "right"], name="roi"))
    got = model.predict(x, basis, weights)
    np.testing.assert_allclose(got.to_numpy(), model.predict(x, basis).to_numpy()
                               @ weights.to_numpy(), rtol=1e-5, atol=1e-6)
    assert got.columns.equals(weights.columns) and got.columns.name == "roi"


def test_get_rf_matches_numpy(rng):
    model = DifferenceOfGaussiansPRF2D(GRID)
    parameters = random_parameters(model, 3, rng, index=pd.Index(["a", "b", "c"], name="unit"))
    p = parameters
    expected = (gauss2d(p.x.values, p.y.values, p.sd.values) - p.srf_amplitude.values
                * gauss2d(p.x.values, p.y.values, p.sd.values * p.srf_size.values)
                ) * p.amplitude.values * PIXEL_AREA / (p.sd.values * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(model.get_rf(parameters=parameters), expected.T, rtol=1e-5,
                               atol=1e-6)  # array: units × pixels
    rf = model.get_rf_frame(parameters)
    np.testing.assert_allclose(rf.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert rf.index.equals(GRID.index) and rf.columns.equals(parameters.index)


@pytest.mark.parametrize("normalize_rf", [True, False])
def test_gaussian_2d_closed_form_jacobian_equals_autodiff(rng, normalize_rf):
    model = GaussianPRF2D(GRID, normalize_rf=normalize_rf)
    parameters = tf.constant(random_parameters(model, 3, rng).to_numpy(np.float32))
    field, derivatives = model._rf_jacobian(parameters)
    np.testing.assert_allclose(field.numpy(), model._rf(parameters).numpy(), rtol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(parameters)
        weighted = tf.reduce_sum(model._rf(parameters), axis=1)
    autodiff = [tape.jacobian(weighted, parameters).numpy()]
    for column, derivative in enumerate(derivatives):
        # d rf[p, u] / d parameters[u, column] summed over units = per-pixel column of the tape
        expected = autodiff[0][:, :, column]  # (n_pixels, n_units)
        got = np.zeros_like(expected) if derivative is None else derivative.numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_3d_image_paradigm_is_flattened_row_major(rng):
    images = rng.random((6, 5, 5))
    model = GaussianPRF2D(GRID)
    parameters = random_parameters(model, 2, rng)
    np.testing.assert_allclose(model.predict(images, parameters).to_numpy(),
                               model.predict(images.reshape(6, 25), parameters).to_numpy())
    # Pixel (row 0, column 4) is the top-right corner of the grid.
    assert tuple(GRID.iloc[4]) == (2.0, 2.0)


def test_custom_and_derivative_hrfs_in_a_model(rng):
    x = rng.uniform(0, 6, N_T)
    parameters = pd.DataFrame({"mu": [2.0, 4.0], "sd": 1.0, "amplitude": 1.0,
                               "baseline": [0.0, 1.0]})
    kernel = np.array([0.0, 0.6, 0.3, 0.1])
    neural = GaussianPRF().predict(x, parameters.assign(baseline=0.0)).to_numpy()
    got = GaussianPRFWithHRF(hrf_model=CustomHRFModel(kernel)).predict(x, parameters)
    np.testing.assert_allclose(got.to_numpy(), convolve_columns(neural, np.tile(kernel[:, None], 2))
                               + [0.0, 1.0], rtol=1e-5, atol=1e-6)
    derivative = SPMHRFDerivativeModel(tr=TR, unique_hrfs=True)
    model = GaussianPRFWithHRF(hrf_model=derivative)
    assert model.get_parameter_labels() == ["mu", "sd", "amplitude", "baseline", "hrf_delta"]
    got = model.predict(x, parameters.assign(hrf_delta=[0.0, 0.8]))
    kernels = np.column_stack([SPMHRFDerivativeModel(tr=TR, delta=d).get_hrf() for d in (0, 0.8)])
    np.testing.assert_allclose(got.to_numpy(), convolve_columns(neural, kernels) + [0.0, 1.0],
                               rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- labels
def test_labels_preserved_end_to_end(rng):
    time = pd.Index(np.arange(100, 100 + N_T), name="frame")
    paradigm = pd.DataFrame({"numerosity": rng.uniform(1, 8, N_T)}, index=time)
    voxels = pd.Index(["V1_0001", "V1_0002", "V2_0001"], name="source")
    parameters = pd.DataFrame({"baseline": 0.0, "amplitude": 1.0, "mu": [2.0, 4.0, 6.0],
                               "sd": 1.0}, index=voxels)  # columns in another order
    parameters.columns.name = "parameter"
    model = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=TR))
    prediction = model.predict(paradigm, parameters)
    assert prediction.index.equals(time) and prediction.index.name == "frame"
    assert prediction.columns.equals(voxels) and prediction.columns.name == "source"
    simulated = model.simulate(paradigm, parameters, noise=0.1, n_repeats=3, seed=1)
    assert isinstance(simulated.index, pd.MultiIndex)
    assert simulated.index.names == ["repeat", "frame"]
    assert simulated.index.get_level_values("repeat").unique().tolist() == [0, 1, 2]
    assert simulated.columns.equals(voxels) and len(simulated) == 3 * N_T
    for repeat in range(3):
        block = simulated.xs(repeat, level="repeat")
        assert block.index.equals(time)
        assert 0.05 < (block - prediction).to_numpy().std() < 0.15
    pd.testing.assert_frame_equal(
        simulated, model.simulate(paradigm, parameters, noise=0.1, n_repeats=3, seed=1))
    other = model.simulate(paradigm, parameters, noise=0.1, n_repeats=3, seed=2)
    assert not np.allclose(other.to_numpy(), simulated.to_numpy())
    # The caller's frames are never modified.
    assert list(parameters.columns) == ["baseline", "amplitude", "mu", "sd"]


def test_2d_labels_and_linear_model_labels(rng):
    time = pd.Index([f"t{i:02d}" for i in range(8)], name="frame")
    images = pd.DataFrame((rng.random((8, 25)) > 0.5).astype(float), index=time)
    voxels = pd.Index(["lh.1", "rh.7"], name="unit")
    parameters = random_parameters(GaussianPRF2D(GRID), 2, rng, index=voxels)
    got = GaussianPRF2D(GRID).predict(images, parameters)
    assert got.index.equals(time) and got.columns.equals(voxels)
    features = pd.DataFrame(rng.normal(size=(8, 2)), index=time, columns=["faces", "houses"])
    weights = pd.DataFrame(rng.normal(size=(2, 2)), index=features.columns, columns=voxels)
    got = LinearModel().predict(features, weights=weights)
    assert got.index.equals(time) and got.columns.equals(voxels)


def test_array_inputs_get_default_labels(rng):
    got = GaussianPRF().predict(rng.uniform(0, 5, 6), [[1.0, 1.0, 1.0, 0.0], [2.0, 1, 1, 0]])
    assert got.index.equals(pd.RangeIndex(6, name="time"))
    assert got.columns.equals(pd.RangeIndex(2, name="voxel"))


# ---------------------------------------------------------------------------- simulate
def test_simulate_student_t_noise_has_heavier_tails():
    paradigm = np.zeros((20000, 1))
    parameters = pd.DataFrame({"mu": [0.0], "sd": [1.0], "amplitude": [0.0], "baseline": [3.0]})
    model = GaussianPRF()
    gaussian = model.simulate(paradigm, parameters, noise=2.0, seed=0).iloc[:, 0]
    student = model.simulate(paradigm, parameters, noise=2.0, dof=5, seed=0).iloc[:, 0]
    assert abs(gaussian.mean() - 3.0) < 0.05 and abs(gaussian.std() - 2.0) < 0.05
    assert abs(stats.kurtosis(gaussian)) < 0.2
    assert stats.kurtosis(student) > 2.0  # excess kurtosis of t(5) is 6
    # noise is the scale of a standard Student-t draw
    expected = 3.0 + 2.0 * np.random.default_rng(0).standard_t(5, (20000, 1))[:, 0]
    np.testing.assert_allclose(student.to_numpy(), expected, rtol=1e-6)


def test_simulate_noise_per_voxel_array_and_series():
    paradigm = np.zeros((3000, 1))
    parameters = pd.DataFrame({"mu": 0.0, "sd": 1.0, "amplitude": 0.0, "baseline": [0.0, 0.0]},
                              index=pd.Index(["a", "b"], name="voxel"))
    model = GaussianPRF()
    by_array = model.simulate(paradigm, parameters, noise=[0.5, 5.0], seed=0).std()
    np.testing.assert_allclose(by_array.to_numpy(), [0.5, 5.0], rtol=0.05)
    by_label = model.simulate(paradigm, parameters, noise=pd.Series({"b": 0.5, "a": 5.0}),
                              seed=0).std()
    np.testing.assert_allclose(by_label[["a", "b"]].to_numpy(), [5.0, 0.5], rtol=0.05)


def test_simulate_noise_covariance_matrix_and_frame():
    paradigm = np.zeros((20000, 1))
    voxels = pd.Index(["a", "b", "c"], name="voxel")
    parameters = pd.DataFrame({"mu": 0.0, "sd": 1.0, "amplitude": 0.0, "baseline": [1.0, 2, 3]},
                              index=voxels)
    covariance = np.array([[1.0, 0.6, 0.0], [0.6, 2.0, -0.5], [0.0, -0.5, 0.5]])
    model = GaussianPRF()
    data = model.simulate(paradigm, parameters, noise=covariance, seed=0)
    assert data.columns.equals(voxels)
    np.testing.assert_allclose(data.mean().to_numpy(), [1.0, 2.0, 3.0], atol=0.03)
    np.testing.assert_allclose(np.cov(data.to_numpy().T), covariance, atol=0.05)
    # a DataFrame is matched to the voxels by label
    shuffled = pd.DataFrame(covariance, index=voxels, columns=voxels).loc[["c", "a", "b"],
                                                                          ["b", "c", "a"]]
    by_label = model.simulate(paradigm, parameters, noise=shuffled, seed=0)
    np.testing.assert_allclose(by_label.to_numpy(), data.to_numpy())
    # multivariate Student-t: shape ``covariance``, covariance dof / (dof - 2) times it
    student = model.simulate(paradigm, parameters, noise=covariance, dof=6, seed=1)
    np.testing.assert_allclose(np.cov(student.to_numpy().T), covariance * 6 / 4, atol=0.12)
    assert stats.kurtosis(student["a"]) > 1.0  # excess kurtosis of t(6) is 3


@pytest.mark.parametrize("kwargs, match", [
    ({"noise": np.array([[1.0, 0.5], [0.0, 1.0]])}, "noise covariance is not symmetric"),
    ({"noise": np.eye(3)}, "noise covariance is 3 × 3 but there are 2 voxels"),
    ({"noise": [1.0, 2.0, 3.0]}, "noise has 3 values but there are 2 voxels"),
    ({"noise": -1.0}, "noise must be finite and >= 0"),
    ({"noise": np.inf}, "noise must be finite and >= 0"),
    ({"noise": pd.Series({"a": 1.0})}, "noise has no value for voxels 'b'"),
    ({"dof": 0.0}, "dof must be > 0"),
    ({"n_repeats": 0}, "n_repeats must be >= 1"),
])
def test_simulate_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianPRF().simulate([[1.0], [2.0]], PARS, **kwargs)


# ---------------------------------------------------------------------------- fallbacks
def test_stored_arguments_are_used_when_methods_get_none(rng):
    x = rng.uniform(0, 8, N_T)
    basis = pd.DataFrame({"mu": [2.0, 5.0], "sd": 1.0, "amplitude": 1.0, "baseline": 0.0})
    weights = rng.normal(size=(2, 3))
    explicit = GaussianPRF().predict(x, basis, weights)
    model = GaussianPRF(paradigm=x, parameters=basis, weights=weights)
    pd.testing.assert_frame_equal(model.predict(), explicit)
    pd.testing.assert_frame_equal(model.predict(paradigm=x[:5]), explicit.iloc[:5])
    pd.testing.assert_frame_equal(
        model.predict(parameters=basis.assign(mu=[3.0, 4.0])),
        GaussianPRF().predict(x, basis.assign(mu=[3.0, 4.0]), weights))
    pd.testing.assert_frame_equal(model.simulate(noise=0.0), explicit, check_dtype=False)
    pd.testing.assert_frame_equal(model.simulate(noise=0.5, seed=3),
                                  GaussianPRF().simulate(x, basis, weights, noise=0.5, seed=3))

    features = rng.normal(size=(N_T, 2))
    baseline = pd.DataFrame({"baseline": [1.0, -1.0, 0.5]})
    lin_weights = rng.normal(size=(2, 3))
    model = LinearModelWithBaselineHRF(paradigm=features, parameters=baseline,
                                       weights=lin_weights, hrf_model=SPMHRFModel(tr=TR))
    pd.testing.assert_frame_equal(
        model.predict(), LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=TR)).predict(
            features, baseline, lin_weights))
    grid_model = GaussianPRF2D(GRID, paradigm=np.eye(25), parameters=random_parameters(
        GaussianPRF2D(GRID), 2, rng))
    assert grid_model.predict().shape == (25, 2)


def test_baselines_of_a_single_label_model_as_a_1d_array(rng):
    features = rng.normal(size=(10, 2))
    weights = rng.normal(size=(2, 3))
    model = LinearModelWithBaseline()
    got = model.predict(features, np.array([1.0, 2.0, 3.0]), weights)
    np.testing.assert_allclose(got.to_numpy(), features @ weights + [1.0, 2.0, 3.0], rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------------------- transforms
TRANSFORM_MODELS = [
    lambda: LinearModelWithBaseline(), lambda: GaussianPRF(), lambda: VonMisesPRF(),
    lambda: LogGaussianPRF(), lambda: GaussianPRF2D(GRID), lambda: DifferenceOfGaussiansPRF2D(GRID),
    lambda: DivisiveNormalizationGaussianPRF2D(GRID),
    lambda: GaussianPRF2DWithHRF(GRID, hrf_model=SPMHRFModel(tr=TR, unique_hrfs=True)),
    lambda: DivisiveNormalizationGaussianPRF2DWithHRF(
        GRID, hrf_model=SPMHRFModel(tr=TR, unique_hrfs=True)),
    lambda: LogGaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=TR, unique_hrfs=True)),
    lambda: LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=TR, unique_hrfs=True)),
    lambda: GaussianPRFWithHRF(hrf_model=SPMHRFDerivativeModel(tr=TR, unique_hrfs=True)),
]
EXPECTED_BOUNDS = {"sd": (0, np.inf), "kappa": (0, np.inf), "srf_amplitude": (0, np.inf),
                   "srf_size": (1, np.inf), "neural_baseline": (0, np.inf),
                   "surround_baseline": (0, np.inf), "hrf_delay": (3, 7),
                   "hrf_dispersion": (0.3, 2)}


@pytest.mark.parametrize("make", TRANSFORM_MODELS)
def test_transforms_round_trip(make, rng):
    model = make()
    labels = model.get_parameter_labels()
    natural = random_parameters(model, 6, rng, index=pd.Index(list("abcdef"), name="voxel"))
    unbounded = model.transform_parameters_backward(natural)
    assert unbounded.index.equals(natural.index) and list(unbounded.columns) == labels
    assert np.isfinite(unbounded.to_numpy()).all()
    back = model.transform_parameters_forward(unbounded)
    np.testing.assert_allclose(back.to_numpy(), natural.to_numpy(), rtol=1e-9, atol=1e-12)
    # Any unbounded value maps into the parameter's range.
    raw = rng.normal(0, 5, (50, len(labels)))
    forward = model.transform_parameters_forward(raw)  # arrays: columns in label order
    for label, (low, high) in EXPECTED_BOUNDS.items():
        if label in labels:
            assert ((forward[label] > low) & (forward[label] < high)).all(), label
    for label in ("x", "y", "baseline", "mu", "hrf_delta"):
        if label in labels and not (label == "mu" and isinstance(model, LogGaussianPRF)):
            np.testing.assert_array_equal(forward[label], raw[:, labels.index(label)])
    # The tensor version used by the fitters agrees with the numpy one.
    tensor = model._transform_forward(tf.constant(raw, tf.float32)).numpy()
    np.testing.assert_allclose(tensor, forward.to_numpy(), rtol=1e-5, atol=1e-5)
    # Columns are matched by name.
    shuffled = unbounded[labels[::-1]]
    pd.testing.assert_frame_equal(model.transform_parameters_forward(shuffled), back)


def test_transforms_are_stable_for_extreme_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for transform in (Softplus(), Softplus(1.0), Bounded(3.0, 7.0)):
            natural = transform.forward_numpy([-1000.0, -30.0, 0.0, 30.0, 1000.0])
            assert np.isfinite(natural).all() and np.all(np.diff(natural) >= 0)
            assert (natural >= transform.lower).all() and (natural <= transform.upper).all()
            tensor = transform.forward(tf.constant([-1000.0, 0.0, 1000.0])).numpy()
            np.testing.assert_allclose(tensor, natural[[0, 2, 4]], rtol=1e-6)
            inside = transform.clip_numpy(natural)
            assert not transform.invalid(inside).any()
            np.testing.assert_allclose(transform.forward_numpy(transform.backward_numpy(inside)),
                                       inside, rtol=1e-9)


def test_transform_errors_name_the_offender():
    model = GaussianPRF()
    with pytest.raises(ValueError, match="missing 'sd'"):
        model.transform_parameters_forward(pd.DataFrame({"mu": [0.0], "amplitude": 1.0,
                                                         "baseline": 0.0}))
    with pytest.raises(ValueError, match="'sd' must be > 0.*'b'"):
        model.transform_parameters_backward(PARS.assign(sd=[1.0, 0.0]))


# ---------------------------------------------------------------------------- bad input
PARS = pd.DataFrame({"mu": [1.0, 2.0], "sd": [1.0, 1.0], "amplitude": [1.0, 1.0],
                     "baseline": [0.0, 0.0]}, index=pd.Index(["a", "b"], name="voxel"))
TIMED = pd.Index([5, 9, 17, 21], name="time")


def nan_paradigm():
    return pd.DataFrame({"x": [1.0, 2.0, np.nan, 3.0]}, index=TIMED)


def unique_2d():
    return GaussianPRF2DWithHRF(GRID, hrf_model=SPMHRFModel(tr=1.0, unique_hrfs=True))


def pars_2d(**extra):
    return pd.DataFrame({"x": [0.0], "y": 0.0, "sd": 1.0, "baseline": 0.0, "amplitude": 1.0,
                         **extra}, index=pd.Index(["v7"], name="voxel"))


BAD_INPUT = [
    (lambda: GaussianPRF().predict(nan_paradigm(), PARS), ValueError,
     r"paradigm: column 'x' has 1 non-finite value \(first at time 17\)"),
    (lambda: GaussianPRF().predict([[1.0]], PARS.assign(mu=[1.0, np.inf])), ValueError,
     r"parameters: column 'mu' has 1 non-finite value \(first at voxel 'b'\)"),
    (lambda: GaussianPRF(data=pd.DataFrame({"V1_0042": [1.0, 2.0, np.nan, np.inf]}, index=TIMED)),
     ValueError, r"data: column 'V1_0042' has 2 non-finite values \(first at time 17\)"),
    (lambda: GaussianPRF(paradigm=np.ones((5, 1)), data=np.ones((6, 2))), ValueError,
     "data has 6 time points but paradigm has 5"),
    (lambda: GaussianPRF(paradigm=pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([0, 1],
                                                                                    name="t")),
                         data=pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index([0, 2], name="t"))),
     ValueError, "different time indices: at position 1 data has 2 but paradigm has 1"),
    (lambda: GaussianPRF().predict([[1.0]], PARS.drop(columns="sd")), ValueError,
     r"parameters columns do not match .*missing 'sd'"),
    (lambda: GaussianPRF().predict([[1.0]], PARS.assign(width=1.0)), ValueError,
     "unexpected 'width'"),
    (lambda: GaussianPRF().predict([[1.0]], PARS.drop(columns="sd").assign(width=1.0)),
     ValueError, "missing 'sd'; unexpected 'width'"),
    (lambda: GaussianPRF().predict([[1.0]], np.ones((2, 3))), ValueError,
     "one column per parameter label"),
    (lambda: GaussianPRF().predict(np.ones((3, 2)), PARS), ValueError,
     "paradigm has 2 columns but this stimulus space has 1 dimension"),
    (lambda: GaussianPRF2D(GRID).predict(np.ones((3, 24)), pars_2d()), ValueError,
     "paradigm has 24 pixels per image but grid_coordinates has 25 pixels"),
    (lambda: GaussianPRF2D(GRID).predict(np.ones((3, 4, 4)), pars_2d()), ValueError,
     "16 pixels .* 25 pixels"),
    (lambda: GaussianPRF2D(GRID).predict(pd.DataFrame(np.ones((3, 26))), pars_2d()), ValueError,
     "26 pixel columns but grid_coordinates has 25"),
    (lambda: GaussianPRF2D(None), ValueError, "need grid_coordinates"),
    (lambda: GaussianPRF().predict([[1.0]], PARS.assign(sd=[1.0, -0.5])), ValueError,
     r"parameter 'sd' must be > 0, but 1 voxel \('b'\) have values such as -0.5"),
    (lambda: GaussianPRF2D(GRID).predict(np.ones((2, 25)), pars_2d(sd=-1.0)), ValueError,
     r"'sd' must be > 0.*\('v7'\)"),
    (lambda: VonMisesPRF().predict([[1.0]], PARS.rename(columns={"sd": "kappa"})
                                   .assign(kappa=[-1.0, 1.0])), ValueError,
     r"'kappa' must be > 0.*\('a'\)"),
    (lambda: DifferenceOfGaussiansPRF2D(GRID).predict(
        np.ones((2, 25)), pars_2d(srf_amplitude=0.5, srf_size=0.8)), ValueError,
     "'srf_size' must be > 1"),
    (lambda: unique_2d().predict(np.ones((3, 25)), pars_2d(hrf_delay=9.0, hrf_dispersion=1.0)),
     ValueError, r"'hrf_delay' must be within \(3, 7\).*'v7'.*9"),
    (lambda: unique_2d().predict(np.ones((3, 25)), pars_2d(hrf_delay=5.0, hrf_dispersion=0.1)),
     ValueError, r"'hrf_dispersion' must be within \(0.3, 2\)"),
    (lambda: unique_2d().predict(np.ones((3, 25)), pars_2d()), ValueError,
     "missing 'hrf_delay', 'hrf_dispersion'"),
    (lambda: LogGaussianPRF().predict(pd.DataFrame({"x": [1.0, -2.0, 0.0, -1.0]}, index=TIMED),
                                      PARS), ValueError,
     r"paradigm must be >= 0 for log-Gaussian tuning; 2 time points are not \(first at time 9\)"),
    (lambda: LogGaussianPRF().predict([[1.0]], PARS.assign(mu=[0.0, 1.0])), ValueError,
     r"'mu' must be > 0.*\('a'\)"),
    (lambda: GaussianPRF().predict([[1.0]], PARS, np.ones((3, 2))), ValueError,
     "weights have 3 rows but there are 2 basis functions"),
    (lambda: GaussianPRF().predict([[1.0]], PARS, [[1.0], [np.nan]]), ValueError,
     "weights: column 0 has 1 non-finite value"),
    (lambda: LinearModel().predict(np.ones((4, 2))), ValueError, "needs weights"),
    (lambda: LinearModel().predict(np.ones((4, 2)), weights=np.ones((3, 1))), ValueError,
     "weights have 3 rows but the paradigm has 2 columns"),
    (lambda: LinearModelWithBaseline().predict(np.ones((4, 2)), [[0.0]] * 3, np.ones((2, 2))),
     ValueError, "parameters have 3 rows but weights have 2 voxel columns"),
    (lambda: GaussianPRF().predict(parameters=PARS), ValueError, "no paradigm given"),
    (lambda: GaussianPRF().predict([[1.0]]), ValueError, "no parameters given"),
    (lambda: GaussianPRFWithHRF(hrf_model="spm"), TypeError, "hrf_model must be an HRFModel"),
    (lambda: GaussianPRF().predict(pd.DataFrame({"x": ["a", "b"]}), PARS), TypeError,
     "paradigm must be numeric"),
]


@pytest.mark.parametrize("make, error, match", BAD_INPUT)
def test_bad_input_raises_naming_the_offender(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_missing_hrf_model_warns():
    with pytest.warns(UserWarning, match="no hrf_model given"):
        model = GaussianPRFWithHRF()
    assert model.hrf_model.tr == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=2.0))


@pytest.mark.parametrize("make", [
    lambda: GaussianPRFWithHRF(hrf=SPMHRFModel(tr=1.0)),
    lambda: GaussianPRF2DWithHRF(GRID, hrf=SPMHRFModel(tr=1.0)),
    lambda: LinearModelWithBaselineHRF(hrf=SPMHRFModel(tr=1.0)),
])
def test_unknown_constructor_keyword_is_a_type_error(make):
    with pytest.raises(TypeError, match="unexpected keyword argument 'hrf"):
        make()


def test_weights_and_baselines_are_matched_by_label():
    x = np.linspace(0, 10, 20)[:, None]
    basis = pd.DataFrame({"mu": [2.0, 5.0, 8.0], "sd": 1.5, "amplitude": 1.0, "baseline": 0.0},
                         index=pd.Index(["b0", "b1", "b2"], name="basis"))
    weights = pd.DataFrame(np.arange(6.0).reshape(3, 2), index=basis.index, columns=["v1", "v2"])
    model = GaussianPRF()
    expected = model.predict(x, basis, weights)
    shuffled = model.predict(x, basis, weights.iloc[[2, 0, 1]])
    pd.testing.assert_frame_equal(shuffled, expected)
    with pytest.raises(ValueError, match="no weights for 'b2'"):
        model.predict(x, basis, weights.rename(index={"b2": "other"}))
    paradigm = np.eye(3)
    baselines = pd.DataFrame({"baseline": [1.0, 2.0]}, index=["v1", "v2"])
    linear = LinearModelWithBaseline()
    expected = linear.predict(paradigm, baselines, weights.set_axis([0, 1, 2]))
    reordered = linear.predict(paradigm, baselines.iloc[::-1], weights.set_axis([0, 1, 2]))
    pd.testing.assert_frame_equal(reordered, expected)


def test_predict_in_voxel_chunks_equals_one_pass(monkeypatch):
    from braincoder.datasets import simulate_prf_2d
    from braincoder.models import base

    experiment = simulate_prf_2d(n_voxels=700, grid_size=10, n_sweeps=2, frames_per_sweep=10,
                                 seed=0)
    parameters = experiment.parameters.rename(index=lambda v: f"vox{v}")
    one_pass = experiment.model.predict(experiment.paradigm, parameters)
    # 256 voxels per chunk: three chunks, the last one partial.
    monkeypatch.setattr(base, "PREDICT_CHUNK_BYTES", 1)
    chunked = experiment.model.predict(experiment.paradigm, parameters)
    assert base._voxel_chunk(experiment.paradigm.shape) == 256
    pd.testing.assert_frame_equal(chunked, one_pass, rtol=1e-6, atol=1e-6)
    assert list(chunked.columns) == list(parameters.index)


# ---------------------------------------------------------------------------- basis functions
def test_basis_predictions_are_what_the_weights_combine(rng):
    units = pd.Index([f"u{i}" for i in range(6)], name="unit")
    basis = pd.DataFrame({"mu": np.linspace(0, 2 * np.pi, 6, endpoint=False), "kappa": 1.0,
                          "amplitude": 1.0, "baseline": 0.0}, index=units)
    weights = pd.DataFrame(rng.uniform(0, 1, (6, 3)), index=units,
                           columns=pd.Index(["a", "b", "c"], name="voxel"))
    model = VonMisesPRF(parameters=basis, weights=weights)
    orientations = pd.DataFrame({"x": np.linspace(0, 2 * np.pi, 25)},
                                index=pd.Index(np.arange(25) * 2, name="trial"))
    responses = model.basis_predictions(orientations)
    assert responses.index.equals(orientations.index) and responses.columns.equals(units)
    np.testing.assert_allclose(responses.to_numpy() @ weights.to_numpy(),
                               model.predict(orientations).to_numpy(), rtol=1e-5, atol=1e-6)
    # without weights, the basis functions are the voxels
    pd.testing.assert_frame_equal(VonMisesPRF(parameters=basis).predict(orientations),
                                  responses)


def test_linear_basis_predictions_are_the_regressors_convolved_with_the_hrf():
    events = np.zeros((40, 2))
    events[[3, 20], 0] = 1.0
    events[10, 1] = 1.0
    plain = LinearModel().basis_predictions(events)
    np.testing.assert_array_equal(plain.to_numpy(), events)
    hrf = SPMHRFModel(tr=1.0)
    model = LinearModelWithBaselineHRF(hrf_model=hrf)
    convolved = model.basis_predictions(events).to_numpy()
    kernel = np.asarray(hrf.get_hrf(), dtype=np.float64).ravel()
    expected = np.column_stack([np.convolve(events[:, j], kernel)[:40] for j in range(2)])
    np.testing.assert_allclose(convolved, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- stimulus amplitude
def test_stimulus_amplitude_scales_the_driven_response_and_round_trips(tmp_path):
    from braincoder.models import EncodingModel
    from braincoder.stimuli import StimulusWithAmplitude

    pars = pd.DataFrame({"mu": [0.5, 2.0], "kappa": [1.0, 3.0], "amplitude": [2.0, 1.0],
                         "baseline": [0.5, -1.0]}, index=pd.Index(["v1", "v2"], name="voxel"))
    model = VonMisesPRF(parameters=pars, model_stimulus_amplitude=True)
    assert isinstance(model.stimulus, StimulusWithAmplitude)
    assert list(model.stimulus.dimension_labels) == ["x (radians)", "amplitude"]
    paradigm = pd.DataFrame({"x": np.linspace(0, 6, 13), "amplitude": np.linspace(0, 3, 13)})
    got = model.predict(paradigm).to_numpy()
    x, a = paradigm["x"].to_numpy()[:, None], paradigm["amplitude"].to_numpy()[:, None]
    kappa = pars["kappa"].to_numpy()
    expected = pars["baseline"].to_numpy() + pars["amplitude"].to_numpy() * a * np.exp(
        kappa * np.cos(x - pars["mu"].to_numpy())) / (2 * np.pi * special.i0(kappa))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # JSON and directory round trips keep the option
    for loaded in (EncodingModel.from_json(model.to_json()),
                   EncodingModel.load(model.save(tmp_path / "m"))):
        assert loaded.model_stimulus_amplitude
        np.testing.assert_allclose(loaded.predict(paradigm).to_numpy(), got, rtol=1e-6)
    assert "model_stimulus_amplitude" not in VonMisesPRF().get_config()
    # the HRF variant convolves the scaled response
    hrf = SPMHRFModel(tr=1.0)
    with_hrf = GaussianPRFWithHRF(hrf_model=hrf, model_stimulus_amplitude=True,
                                  parameters=[[5.0, 1.0, 1.0, 0.0]])
    steady = with_hrf.predict(pd.DataFrame({"x": 5.0, "amplitude": [2.0] * 40}))
    half = with_hrf.predict(pd.DataFrame({"x": 5.0, "amplitude": [1.0] * 40}))
    np.testing.assert_allclose(steady.to_numpy(), 2 * half.to_numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="paradigm has 1 columns but this stimulus space has 2"):
        model.predict(np.ones(5))
    with pytest.raises(ValueError, match="paradigm must be >= 0"):
        LogGaussianPRF(model_stimulus_amplitude=True, parameters=[[5.0, 0.5, 1.0, 0.0]]).predict(
            pd.DataFrame({"x": [-1.0], "amplitude": [1.0]}))
    with pytest.raises(TypeError, match="model_stimulus_amplitude must be True or False"):
        VonMisesPRF(model_stimulus_amplitude="yes")


def test_flexible_hrf_parameters_sets_per_voxel_hrfs_on_a_copy():
    grid = make_grid_coordinates(6)
    shared = SPMHRFModel(tr=1.5)
    flexible = GaussianPRF2DWithHRF(grid, hrf_model=shared, flexible_hrf_parameters=True)
    assert flexible.get_parameter_labels()[-2:] == ["hrf_delay", "hrf_dispersion"]
    assert not shared.unique_hrfs and flexible.hrf_model is not shared
    reference = GaussianPRF2DWithHRF(grid, hrf_model=SPMHRFModel(tr=1.5, unique_hrfs=True))
    pars = pd.DataFrame({"x": [0.5, -1.0], "y": [0.0, 1.0], "sd": [1.0, 2.0],
                         "baseline": [0.0, 1.0], "amplitude": [1.0, 2.0],
                         "hrf_delay": [5.0, 6.5], "hrf_dispersion": [0.8, 1.2]})
    paradigm = np.random.default_rng(5).uniform(0, 1, (30, len(grid)))
    pd.testing.assert_frame_equal(flexible.predict(paradigm, pars),
                                  reference.predict(paradigm, pars))
    one_hrf = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=1.0, unique_hrfs=True),
                                 flexible_hrf_parameters=False)
    assert one_hrf.get_parameter_labels() == ["mu", "sd", "amplitude", "baseline"]
    with pytest.raises(ValueError, match="CustomHRFModel has no per-voxel HRF parameters"):
        GaussianPRFWithHRF(hrf_model=CustomHRFModel([0.0, 1.0, 0.5]),
                           flexible_hrf_parameters=True)


# ---------------------------------------------------------------------------- apply_mask
def test_apply_mask_keeps_the_selected_voxels(rng):
    voxels = pd.Index([f"v{i}" for i in range(5)], name="voxel")
    pars = pd.DataFrame({"mu": np.arange(5.0), "sd": 1.0, "amplitude": 1.0, "baseline": 0.0},
                        index=voxels)
    paradigm = rng.uniform(0, 5, 12)
    full = GaussianPRF(paradigm=paradigm, parameters=pars)
    data = full.simulate(noise=0.1, seed=0)
    omega = np.diag(np.arange(1.0, 6.0))
    model = GaussianPRF(paradigm=paradigm, parameters=pars, data=data, omega=omega)
    keep = pd.Series([True, False, True, True, False], index=voxels[::-1])  # by label
    model.apply_mask(keep)
    assert list(model.parameters.index) == ["v1", "v2", "v4"]
    assert list(model.data.columns) == ["v1", "v2", "v4"]
    np.testing.assert_array_equal(np.diag(model.omega), [2.0, 3.0, 5.0])
    pd.testing.assert_frame_equal(model.predict(), full.predict()[["v1", "v2", "v4"]])
    # with weights, the weights' voxel columns are subset, not the basis functions
    weights = pd.DataFrame(rng.normal(size=(5, 4)), index=voxels,
                           columns=pd.Index(list("abcd"), name="voxel"))
    weighted = GaussianPRF(paradigm=paradigm, parameters=pars, weights=weights)
    expected = weighted.predict()[["d", "a"]]
    weighted.apply_mask(["d", "a"])
    assert len(weighted.parameters) == 5
    pd.testing.assert_frame_equal(weighted.predict(), expected)
    # a linear model with a baseline per voxel subsets both
    linear = LinearModelWithBaseline(weights=weights.iloc[:2],
                                     parameters=pd.DataFrame({"baseline": [1.0, 2, 3, 4]},
                                                             index=weights.columns))
    linear.apply_mask(np.array([False, True, False, True]))
    assert list(linear.parameters.index) == ["b", "d"]
    with pytest.raises(ValueError, match="mask has 3 values but there are 2 voxels"):
        linear.apply_mask(np.array([True, False, True]))
    with pytest.raises(ValueError, match="unknown voxels 'zz'"):
        linear.apply_mask(["zz"])
    with pytest.raises(ValueError, match="keeps no voxels"):
        linear.apply_mask(np.array([False, False]))
