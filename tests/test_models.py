"""Every encoding model's predict against a plain-numpy implementation of its formula."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    DifferenceOfGaussiansPRF2D,
    DifferenceOfGaussiansPRF2DWithHRF,
    DivisiveNormalizationGaussianPRF2D,
    DivisiveNormalizationGaussianPRF2DWithHRF,
    EncodingModel,
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
    get_model,
    list_models,
)
from braincoder.stimuli import make_grid_coordinates

RNG = np.random.default_rng(42)
TR = 1.5
N_T = 40
GRID = make_grid_coordinates(6, extent=3.0)
GX, GY = GRID["x"].to_numpy()[:, None], GRID["y"].to_numpy()[:, None]


def convolve(neural, kernels):
    """Causal convolution of each column with its kernel column (or one shared kernel)."""
    kernels = np.asarray(kernels)
    if kernels.ndim == 1:
        kernels = np.repeat(kernels[:, None], neural.shape[1], axis=1)
    return np.column_stack([np.convolve(neural[:, v], kernels[:, v])[: len(neural)]
                            for v in range(neural.shape[1])])


def gauss2d(x, y, sd):
    return np.exp(-((GX - x) ** 2 + (GY - y) ** 2) / (2 * sd**2))


def random_2d(n, extra=None):
    values = {"x": RNG.uniform(-2, 2, n), "y": RNG.uniform(-2, 2, n), "sd": RNG.uniform(0.5, 2, n),
              "baseline": RNG.normal(0, 1, n), "amplitude": RNG.uniform(0.5, 2, n)}
    values.update(extra or {})
    return pd.DataFrame(values)


def reference_1d(model_class, x, p):
    mu, width, amplitude, baseline = (p.iloc[:, i].to_numpy()[None, :] for i in range(4))
    if model_class is VonMisesPRF:
        tuning = np.exp(width * (np.cos(x - mu) - 1))
    elif model_class in (LogGaussianPRF, LogGaussianPRFWithHRF):
        tuning = np.exp(-0.5 * ((np.log(x) - np.log(mu)) / width) ** 2)
    else:
        tuning = np.exp(-0.5 * ((x - mu) / width) ** 2)
    return amplitude * tuning, baseline


@pytest.mark.parametrize("model_class", [GaussianPRF, VonMisesPRF, LogGaussianPRF,
                                         GaussianPRFWithHRF, LogGaussianPRFWithHRF])
def test_1d_models_match_numpy(model_class):
    n = 5
    x = RNG.uniform(0.5, 6, N_T)[:, None]
    parameters = pd.DataFrame({model_class.parameter_labels[0]: RNG.uniform(1, 5, n),
                               model_class.parameter_labels[1]: RNG.uniform(0.5, 2, n),
                               "amplitude": RNG.uniform(0.5, 2, n),
                               "baseline": RNG.normal(0, 1, n)})
    neural, baseline = reference_1d(model_class, x, parameters)
    hrf = SPMHRFModel(tr=TR)
    if "WithHRF" in model_class.__name__:
        model = model_class(hrf_model=hrf)
        expected = convolve(neural, hrf.get_hrf()) + baseline
    else:
        model = model_class()
        expected = neural + baseline
    predicted = model.predict(paradigm=x, parameters=parameters)
    np.testing.assert_allclose(predicted.to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_2d_models_match_numpy():
    n = 4
    images = (RNG.random((N_T, len(GRID))) > 0.7).astype(float)
    p = random_2d(n)
    rf = gauss2d(p.x.values, p.y.values, p.sd.values)
    expected = images @ rf * p.amplitude.values + p.baseline.values
    got = GaussianPRF2D(GRID).predict(images, p)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)

    dog = random_2d(n, {"srf_amplitude": RNG.uniform(0.1, 0.5, n),
                        "srf_size": RNG.uniform(1.5, 3, n)})
    rf = gauss2d(dog.x.values, dog.y.values, dog.sd.values) - dog.srf_amplitude.values * gauss2d(
        dog.x.values, dog.y.values, dog.sd.values * dog.srf_size.values)
    expected = images @ rf * dog.amplitude.values + dog.baseline.values
    got = DifferenceOfGaussiansPRF2D(GRID).predict(images, dog)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)

    dn = dog.assign(neural_baseline=RNG.uniform(0.1, 1, n), surround_baseline=RNG.uniform(1, 2, n))
    centre = images @ gauss2d(dn.x.values, dn.y.values, dn.sd.values)
    surround = images @ gauss2d(dn.x.values, dn.y.values, dn.sd.values * dn.srf_size.values)
    neural = ((dn.amplitude.values * centre + dn.neural_baseline.values)
              / (dn.srf_amplitude.values * surround + dn.surround_baseline.values)
              - dn.neural_baseline.values / dn.surround_baseline.values)
    got = DivisiveNormalizationGaussianPRF2D(GRID).predict(images, dn)
    np.testing.assert_allclose(got.to_numpy(), neural + dn.baseline.values, rtol=1e-5, atol=1e-5)

    hrf = SPMHRFModel(tr=TR)
    got = DivisiveNormalizationGaussianPRF2DWithHRF(GRID, hrf_model=hrf).predict(images, dn)
    np.testing.assert_allclose(got.to_numpy(), convolve(neural, hrf.get_hrf()) + dn.baseline.values,
                               rtol=1e-5, atol=1e-5)
    got = DifferenceOfGaussiansPRF2DWithHRF(GRID, hrf_model=hrf).predict(images, dog)
    rf = gauss2d(dog.x.values, dog.y.values, dog.sd.values) - dog.srf_amplitude.values * gauss2d(
        dog.x.values, dog.y.values, dog.sd.values * dog.srf_size.values)
    expected = convolve(images @ rf * dog.amplitude.values, hrf.get_hrf()) + dog.baseline.values
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_2d_hrf_models_shared_and_unique():
    n = 3
    images = (RNG.random((N_T, len(GRID))) > 0.6).astype(float)
    p = random_2d(n)
    neural = images @ gauss2d(p.x.values, p.y.values, p.sd.values) * p.amplitude.values
    shared = SPMHRFModel(tr=TR)
    got = GaussianPRF2DWithHRF(GRID, hrf_model=shared).predict(images, p)
    np.testing.assert_allclose(got.to_numpy(), convolve(neural, shared.get_hrf())
                               + p.baseline.values, rtol=1e-5, atol=1e-5)
    unique = SPMHRFModel(tr=TR, unique_hrfs=True)
    pu = p.assign(hrf_delay=[5.0, 6.0, 6.8], hrf_dispersion=[0.8, 1.0, 1.3])
    t = unique.kernel_times[:, None]
    kernels = stats.gamma.pdf(t, pu.hrf_delay.values / pu.hrf_dispersion.values,
                              scale=pu.hrf_dispersion.values) - 0.167 * stats.gamma.pdf(t, 16.0)
    kernels /= kernels.sum(0)
    got = GaussianPRF2DWithHRF(GRID, hrf_model=unique).predict(images, pu)
    np.testing.assert_allclose(got.to_numpy(), convolve(neural, kernels) + p.baseline.values,
                               rtol=1e-4, atol=1e-4)


def test_3d_image_paradigm_is_flattened_row_major():
    images = RNG.random((5, 6, 6))
    p = random_2d(2)
    model = GaussianPRF2D(GRID)
    np.testing.assert_allclose(model.predict(images, p).to_numpy(),
                               model.predict(images.reshape(5, 36), p).to_numpy())


def test_linear_models_match_numpy():
    paradigm = RNG.normal(size=(N_T, 3))
    weights = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(LinearModel().predict(paradigm, weights=weights).to_numpy(),
                               paradigm @ weights, rtol=1e-5, atol=1e-5)
    baseline = pd.DataFrame({"baseline": RNG.normal(size=4)})
    np.testing.assert_allclose(
        LinearModelWithBaseline().predict(paradigm, baseline, weights).to_numpy(),
        paradigm @ weights + baseline.baseline.values, rtol=1e-5, atol=1e-5)
    hrf = SPMHRFModel(tr=TR)
    got = LinearModelWithBaselineHRF(hrf_model=hrf).predict(paradigm, baseline, weights)
    np.testing.assert_allclose(got.to_numpy(), convolve(paradigm @ weights, hrf.get_hrf())
                               + baseline.baseline.values, rtol=1e-5, atol=1e-5)


def test_basis_functions_mixed_by_weights():
    x = np.linspace(0, 10, N_T)[:, None]
    basis = pd.DataFrame({"mu": [2.0, 5.0, 8.0], "sd": 1.5, "amplitude": 1.0, "baseline": 0.0},
                         index=pd.Index(["b0", "b1", "b2"], name="basis"))
    weights = pd.DataFrame(RNG.normal(size=(3, 2)), index=basis.index,
                           columns=pd.Index(["left", "right"], name="roi"))
    model = GaussianPRF()
    got = model.predict(x, basis, weights)
    expected = model.predict(x, basis).to_numpy() @ weights.to_numpy()
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)
    assert list(got.columns) == ["left", "right"] and got.columns.name == "roi"


def test_labels_preserved_end_to_end():
    time = pd.Index(np.arange(100, 100 + N_T), name="frame")
    paradigm = pd.DataFrame({"numerosity": RNG.uniform(1, 8, N_T)}, index=time)
    voxels = pd.Index(["V1_0001", "V1_0002", "V2_0001"], name="source")
    parameters = pd.DataFrame({"mu": [2.0, 4.0, 6.0], "sd": 1.0, "amplitude": 1.0,
                               "baseline": 0.0}, index=voxels)
    model = GaussianPRF(paradigm=paradigm, parameters=parameters)
    prediction = model.predict()
    assert prediction.index.equals(time) and prediction.columns.equals(voxels)
    simulated = model.simulate(noise=0.1, n_repeats=3, seed=1)
    assert simulated.index.names == ["repeat", "frame"]
    assert len(simulated) == 3 * N_T and simulated.columns.equals(voxels)
    again = model.simulate(noise=0.1, n_repeats=3, seed=1)
    pd.testing.assert_frame_equal(simulated, again)
    # Stored-argument fallbacks: parameters from the constructor, paradigm given here.
    assert model.predict(paradigm=paradigm.iloc[:5]).shape == (5, 3)


def test_simulate_noise_distributions():
    paradigm = np.zeros((4000, 1))
    parameters = pd.DataFrame({"mu": [0.0], "sd": [1.0], "amplitude": [0.0], "baseline": [0.0]})
    model = GaussianPRF()
    gaussian = model.simulate(paradigm, parameters, noise=2.0, seed=0).iloc[:, 0]
    student = model.simulate(paradigm, parameters, noise=2.0, dof=4, seed=0).iloc[:, 0]
    assert abs(gaussian.std() - 2.0) < 0.1
    assert stats.kurtosis(student) > stats.kurtosis(gaussian) + 1
    per_voxel = model.simulate(paradigm, pd.concat([parameters] * 2, ignore_index=True),
                               noise=[0.5, 5.0], seed=0)
    assert per_voxel.std().iloc[1] > 5 * per_voxel.std().iloc[0]


def test_transforms_round_trip():
    unique = SPMHRFModel(tr=TR, unique_hrfs=True)
    for model in (GaussianPRF(), VonMisesPRF(), LogGaussianPRF(),
                  DivisiveNormalizationGaussianPRF2D(GRID),
                  GaussianPRF2DWithHRF(GRID, hrf_model=unique)):
        labels = model.get_parameter_labels()
        natural = pd.DataFrame({label: RNG.uniform(1.2, 2.5, 4) for label in labels})
        if "hrf_delay" in labels:
            natural["hrf_delay"] = RNG.uniform(4, 6, 4)
            natural["hrf_dispersion"] = RNG.uniform(0.5, 1.5, 4)
        unbounded = model.transform_parameters_backward(natural)
        back = model.transform_parameters_forward(unbounded)
        np.testing.assert_allclose(back.to_numpy(), natural.to_numpy(), rtol=1e-6)
        forward = model.transform_parameters_forward(pd.DataFrame(
            RNG.normal(0, 3, (4, len(labels))), columns=labels))
        if "sd" in labels:
            assert (forward["sd"] > 0).all()
        if "hrf_delay" in labels:
            assert forward["hrf_delay"].between(3.0, 7.0).all()


def test_registry():
    names = list_models()
    expected = ["linear", "linear_baseline", "linear_baseline_hrf", "gaussian_prf",
                "gaussian_prf_hrf", "von_mises_prf", "log_gaussian_prf", "log_gaussian_prf_hrf",
                "gaussian_prf_2d", "gaussian_prf_2d_hrf", "dog_prf_2d", "dog_prf_2d_hrf",
                "dn_prf_2d", "dn_prf_2d_hrf"]
    assert set(expected) <= set(names)
    model = get_model("gaussian_prf_2d_hrf", grid_coordinates=GRID,
                      hrf_model=SPMHRFModel(tr=TR))
    assert isinstance(model, GaussianPRF2DWithHRF) and isinstance(model, EncodingModel)
    with pytest.raises(ValueError, match="unknown model 'gausian_prf'.*gaussian_prf_2d"):
        get_model("gausian_prf")
    with pytest.raises(TypeError, match="hrf"):
        get_model("gaussian_prf", hrf=SPMHRFModel(tr=TR))


def test_missing_hrf_model_warns():
    with pytest.warns(UserWarning, match="no hrf_model given"):
        GaussianPRFWithHRF()


@pytest.mark.parametrize("make, error, match", [
    (lambda m: m.predict(np.array([[1.0], [np.nan]]), PARS), ValueError,
     "paradigm: column .* 1 non-finite"),
    (lambda m: m.predict([[1.0]], PARS.assign(sd=-1.0)), ValueError, "'sd' must be > 0.*'a'"),
    (lambda m: m.predict([[1.0]], PARS.drop(columns="sd")), ValueError, "missing 'sd'"),
    (lambda m: m.predict([[1.0]], PARS.assign(width=1.0)), ValueError, "unexpected 'width'"),
    (lambda m: m.predict([[1.0]], PARS.assign(mu=np.inf)), ValueError, "non-finite"),
    (lambda m: GaussianPRF(paradigm=np.ones((5, 1)), data=np.ones((6, 2))), ValueError,
     "paradigm has 5"),
    (lambda m: GaussianPRF(paradigm=pd.DataFrame({"x": [1.0, 2.0]}, index=[0, 1]),
                           data=pd.DataFrame({"v": [1.0, 2.0]}, index=[0, 2])), ValueError,
     "different time indices"),
    (lambda m: GaussianPRF(data=np.array([[1.0, np.inf]])), ValueError, "column 1"),
    (lambda m: GaussianPRF2D(GRID).predict(np.ones((3, 35)), random_2d(1)), ValueError,
     "35 pixels.*36"),
    (lambda m: GaussianPRF2D(None), ValueError, "grid_coordinates"),
    (lambda m: LogGaussianPRF().predict([[0.0]], PARS), ValueError, "> 0"),
    (lambda m: GaussianPRF2DWithHRF(GRID, hrf_model=SPMHRFModel(tr=1.0, unique_hrfs=True))
     .predict(np.ones((3, 36)), random_2d(1).assign(hrf_delay=9.0, hrf_dispersion=1.0)),
     ValueError, "hrf_delay.*within"),
    (lambda m: m.predict([[1.0], [2.0], [3.0]], PARS).pipe(lambda _: m.simulate(
        [[1.0]], PARS, noise=[1.0, 2.0, 3.0])), ValueError, "noise has 3 values"),
])
def test_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make(GaussianPRF())


PARS = pd.DataFrame({"mu": [1.0, 2.0], "sd": [1.0, 1.0], "amplitude": [1.0, 1.0],
                     "baseline": [0.0, 0.0]}, index=pd.Index(["a", "b"], name="voxel"))
