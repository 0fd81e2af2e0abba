"""Same numbers as the public braincoder: its formulas, defaults and example scripts.

Expected values are computed here with plain numpy/scipy from the public braincoder's
formulas; the options keeping this library's alternatives are tested beside them. The
second half runs the call sequences of the public braincoder's example scripts
(``examples/00_encodingdecoding``) on small simulated data.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    DifferenceOfGaussiansPRF2D,
    DivisiveNormalizationGaussianPRF2D,
    DivisiveNormalizationGaussianPRF2DWithHRF,
    EncodingModel,
    GaussianPRF,
    GaussianPRF2D,
    GaussianPRF2DWithHRF,
    LogGaussianPRF,
    LogGaussianPRFWithHRF,
    VonMisesPRF,
)
from braincoder.optimize import ParameterFitter, ResidualFitter, StimulusFitter, WeightFitter
from braincoder.optimize._bounds import parameter_bounds
from braincoder.stimuli import make_grid_coordinates
from braincoder.utils import get_rsq

GRID = make_grid_coordinates(7, extent=3.0)  # spacing 1: pixel area 1


# ---------------------------------------------------------------- public formulas (numpy)
def public_rf(x, y, sd, amplitude, pixel_area=1.0, grid=GRID):
    """The public GaussianPRF2D._get_rf: Gaussian · amplitude / (sd·√(2π)/pixel area)."""
    gx, gy = grid["x"].to_numpy()[:, None], grid["y"].to_numpy()[:, None]
    gauss = np.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sd**2)) * amplitude
    return gauss / (sd * np.sqrt(2 * np.pi) / pixel_area)


def public_lognormal_mu_sd(x, mu, sd):
    """The public lognormalpdf_n (normalize=False)."""
    denom = 1 + sd**2 / mu**2
    with np.errstate(divide="ignore"):
        return np.exp(-((np.log(x) - np.log(mu / np.sqrt(denom))) ** 2) / (2 * np.log(denom)))


def public_lognormal_mode_fwhm(x, mode, fwhm):
    """The public lognormal_pdf_mode_fwhm."""
    sigma2 = (np.arcsinh(fwhm / (mode * 2)) / np.sqrt(2 * np.log(2))) ** 2
    return (mode / x) * np.exp(0.5 * sigma2 - 0.5 * (np.log(x / mode) - sigma2) ** 2 / sigma2)


def public_spm_kernel(tr, delay=6.0, dispersion=1.0, time_length=32.0, ratio=0.167):
    """The public SPMHRFModel.get_hrf, step by step (0.1 s grid, shift, interpolation)."""
    t = np.linspace(1e-4, time_length, int(np.rint(time_length / tr))).astype(np.float32)
    dt = 0.1
    n_steps = int(np.ceil((t.max() - t.min()) / dt) + 1)
    t_hr = t.min() + np.arange(n_steps, dtype=np.float32) * np.float32(dt)

    def gamma_with_loc(a, d):
        shifted = t_hr - dt
        pdf = np.where(shifted >= 0, stats.gamma.pdf(np.maximum(shifted, 1e-6), a, scale=d), 0)
        return np.concatenate([[0.0], pdf[:-1]])  # pad one step, drop the last

    high = gamma_with_loc(delay / dispersion + 1.0, dispersion) - ratio * gamma_with_loc(16.0, 1.0)
    high = high / high.sum()
    return np.interp(t, t_hr, high)


# ---------------------------------------------------------------- 2D receptive fields
def test_gaussian_2d_dot_at_the_centre_is_divided_by_sd_sqrt_2pi():
    image = np.zeros((1, len(GRID)))
    image[0, len(GRID) // 2] = 1.0
    value = GaussianPRF2D(GRID).predict(image, [[0.0, 0.0, 1.0, 0.0, 1.0]]).iloc[0, 0]
    assert value == pytest.approx(1 / np.sqrt(2 * np.pi), rel=1e-6)
    assert value == pytest.approx(0.39894, abs=1e-5)
    peak_one = GaussianPRF2D(GRID, normalize_rf=False)
    assert peak_one.predict(image, [[0.0, 0.0, 1.0, 0.0, 1.0]]).iloc[0, 0] == pytest.approx(1.0)


def test_gaussian_2d_and_dog_match_the_public_formulas(rng):
    grid = make_grid_coordinates((6, 9), extent=2.0)  # unequal spacings in x and y
    area = (np.diff(np.unique(grid["x"])).mean() * np.diff(np.unique(grid["y"])).mean())
    n = 4
    p = pd.DataFrame({"x": rng.uniform(-1, 1, n), "y": rng.uniform(-1, 1, n),
                      "sd": rng.uniform(0.3, 1.5, n), "baseline": rng.normal(size=n),
                      "amplitude": rng.uniform(0.5, 2, n),
                      "srf_amplitude": rng.uniform(0.1, 0.5, n),
                      "srf_size": rng.uniform(1.5, 3, n)})
    images = rng.random((10, len(grid)))
    rf = public_rf(p.x.values, p.y.values, p.sd.values, p.amplitude.values, area, grid)
    expected = images @ rf + p.baseline.values
    gauss = GaussianPRF2D(grid)
    got = gauss.predict(images, p[gauss.get_parameter_labels()])
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    # the public DoG: the surround is the normalised Gaussian of width sd·srf_size with
    # amplitude srf_amplitude · amplitude · srf_size
    surround = public_rf(p.x.values, p.y.values, p.sd.values * p.srf_size.values,
                         p.srf_amplitude.values * p.amplitude.values * p.srf_size.values,
                         area, grid)
    expected = images @ (rf - surround) + p.baseline.values
    got = DifferenceOfGaussiansPRF2D(grid).predict(images, p)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-6)


def test_get_rf_returns_units_by_pixels_and_frames():
    pars = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, -1.0], "sd": 1.0, "baseline": 0.0,
                         "amplitude": 1.0}, index=pd.Index(["a", "b"], name="voxel"))
    model = GaussianPRF2D(GRID, parameters=pars)
    rf = model.get_rf()
    assert isinstance(rf, np.ndarray) and rf.shape == (2, len(GRID))
    np.testing.assert_allclose(rf[1], public_rf(1.0, -1.0, 1.0, 1.0)[:, 0], rtol=1e-5)
    frame = model.get_rf(as_frame=True)
    assert frame.shape == (2 * len(GRID), 1)
    assert frame.index.names == ["voxel", "x", "y"]
    np.testing.assert_allclose(frame.loc["b"].to_numpy()[:, 0], rf[1], rtol=1e-6)
    unpacked = model.get_rf(as_frame=True, unpack=True)
    assert unpacked.shape == (2 * 7, 7)  # one image per voxel: y rows × x columns
    assert unpacked.index.get_level_values("y")[0] == GRID["y"].max()  # top row first
    assert model.get_rf_frame().shape == (len(GRID), 2)


def test_divisive_normalisation_has_the_public_parameters_and_formula(rng):
    labels = ["x", "y", "sd", "rf_amplitude", "srf_amplitude", "srf_size", "neural_baseline",
              "surround_baseline"]
    model = DivisiveNormalizationGaussianPRF2D(GRID)
    assert model.get_parameter_labels() == labels
    assert not model.linear_in_amplitude
    n = 3
    p = pd.DataFrame({"x": rng.uniform(-1, 1, n), "y": rng.uniform(-1, 1, n),
                      "sd": rng.uniform(0.5, 1.5, n), "rf_amplitude": rng.uniform(0.5, 2, n),
                      "srf_amplitude": rng.uniform(0.1, 0.5, n), "srf_size": rng.uniform(1.5, 3, n),
                      "neural_baseline": rng.uniform(0.5, 2, n),
                      "surround_baseline": rng.uniform(0.5, 2, n)})
    images = (rng.random((20, len(GRID))) > 0.6).astype(float)
    rf = public_rf(p.x.values, p.y.values, p.sd.values, 1.0)
    srf = public_rf(p.x.values, p.y.values, p.sd.values * p.srf_size.values, 1.0)
    neural = p.rf_amplitude.values * (images @ rf) + p.neural_baseline.values
    normalization = (p.srf_amplitude.values * p.rf_amplitude.values * (images @ srf)
                     + p.surround_baseline.values)
    expected = neural / normalization
    np.testing.assert_allclose(model.predict(images, p).to_numpy(), expected, rtol=1e-5)
    # with an HRF: bold_baseline + h * (DN − neural_baseline / surround_baseline)
    hrf = SPMHRFModel(tr=1.0)
    with_hrf = DivisiveNormalizationGaussianPRF2DWithHRF(GRID, hrf_model=hrf)
    assert with_hrf.get_parameter_labels() == [*labels, "bold_baseline"]
    p_hrf = p.assign(bold_baseline=rng.normal(size=n))
    above = expected - (p.neural_baseline / p.surround_baseline).to_numpy()
    kernel = hrf.get_hrf()
    convolved = np.column_stack([np.convolve(above[:, i], kernel)[:20] for i in range(n)])
    np.testing.assert_allclose(with_hrf.predict(images, p_hrf).to_numpy(),
                               convolved + p_hrf.bold_baseline.to_numpy(), rtol=1e-4, atol=1e-5)
    # decoding compares data with the response without HRF: baseline + DN − n_b / s_b
    view = with_hrf._decoding_view()._predict(images, p_hrf.to_numpy(np.float32)).numpy()
    np.testing.assert_allclose(view, above + p_hrf.bold_baseline.to_numpy(), rtol=1e-4,
                               atol=1e-5)
    flexible = DivisiveNormalizationGaussianPRF2DWithHRF(GRID, hrf_model=hrf,
                                                         flexible_hrf_parameters=True)
    assert flexible.parameter_labels == [*labels, "bold_baseline", "hrf_delay",
                                         "hrf_dispersion"]


def test_normalize_rf_round_trips_through_the_configuration():
    model = GaussianPRF2DWithHRF(GRID, hrf_model=SPMHRFModel(tr=1.0), normalize_rf=False)
    assert model.get_config()["normalize_rf"] is False
    assert "normalize_rf" not in GaussianPRF2D(GRID).get_config()
    loaded = EncodingModel.from_json(model.to_json())
    assert loaded.normalize_rf is False
    with pytest.raises(TypeError, match="normalize_rf must be True or False"):
        GaussianPRF2D(GRID, normalize_rf="yes")


# ---------------------------------------------------------------- 1D tuning
def test_von_mises_is_the_density_and_its_stimulus_is_labelled_radians():
    x = np.linspace(-np.pi, np.pi, 25)
    pars = pd.DataFrame({"mu": [0.0, 1.0], "kappa": [1.0, 20.0], "amplitude": [1.0, 2.0],
                         "baseline": [0.0, 0.5]})
    model = VonMisesPRF(parameters=pars)
    expected = pars.baseline.values + pars.amplitude.values * stats.vonmises.pdf(
        x[:, None], pars.kappa.values, loc=pars.mu.values)
    np.testing.assert_allclose(model.predict(x).to_numpy(), expected, rtol=1e-5, atol=1e-7)
    assert model.predict([0.0]).iloc[0, 0] == pytest.approx(0.34171, abs=1e-5)
    assert list(model.stimulus.dimension_labels) == ["x (radians)"]
    assert list(model.get_paradigm(x).columns) == ["x (radians)"]
    peak_one = VonMisesPRF(parameters=pars, normalize_rf=False)
    np.testing.assert_allclose(
        peak_one.predict(x).to_numpy(),
        pars.baseline.values + pars.amplitude.values * np.exp(
            pars.kappa.values * (np.cos(x[:, None] - pars.mu.values) - 1)), rtol=1e-5)
    loaded = EncodingModel.from_json(peak_one.to_json())
    assert loaded.normalize_rf is False


@pytest.mark.parametrize("parameterisation, labels", [
    ("mu_sd_natural", ["mu", "sd"]), ("mode_fwhm_natural", ["mode", "fwhm"]),
    ("mode_sd_log", ["mu", "sd"])])
def test_log_gaussian_parameterisations(parameterisation, labels):
    x = np.array([0.0, 0.5, 3.0, 10.0, 40.0])
    pars = pd.DataFrame({labels[0]: [10.0, 4.0], labels[1]: [5.0, 0.6], "amplitude": [1.0, 2.0],
                         "baseline": [0.1, -0.2]})
    model = LogGaussianPRF(parameters=pars, parameterisation=parameterisation)
    assert model.get_parameter_labels() == [*labels, "amplitude", "baseline"]
    a, b = pars[labels[0]].to_numpy(), pars[labels[1]].to_numpy()
    positive = x[1:, None]
    if parameterisation == "mu_sd_natural":
        curve = public_lognormal_mu_sd(positive, a, b)
    elif parameterisation == "mode_fwhm_natural":
        curve = public_lognormal_mode_fwhm(positive, a, b)
    else:
        curve = np.exp(-0.5 * ((np.log(positive) - np.log(a)) / b) ** 2)
    expected = pars.baseline.values + pars.amplitude.values * curve
    got = model.predict(x).to_numpy()
    np.testing.assert_allclose(got[1:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], pars.baseline.values, rtol=1e-6)  # stimulus 0
    loaded = EncodingModel.from_json(model.to_json())
    assert loaded.parameterisation == parameterisation
    np.testing.assert_allclose(loaded.predict(x).to_numpy(), got, rtol=1e-6)
    assert ("parameterisation" in model.get_config()) == (parameterisation != "mu_sd_natural")


def test_log_gaussian_default_is_the_public_mean_and_sd():
    model = LogGaussianPRF()
    assert model.parameterisation == "mu_sd_natural"
    value = model.predict([10.0], [[10.0, 5.0, 1.0, 0.0]]).iloc[0, 0]
    assert value == pytest.approx(public_lognormal_mu_sd(10.0, 10.0, 5.0), rel=1e-5)
    assert value == pytest.approx(0.97249, abs=1e-5)
    with_hrf = LogGaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=1.0),
                                     parameterisation="mode_fwhm_natural")
    assert with_hrf.get_parameter_labels()[:2] == ["mode", "fwhm"]
    with pytest.raises(ValueError, match="parameterisation must be one of"):
        LogGaussianPRF(parameterisation="mode")
    with pytest.raises(ValueError, match="paradigm must be >= 0"):
        model.predict([-1.0], [[10.0, 5.0, 1.0, 0.0]])


def test_parameter_labels_attribute_includes_hrf_labels_when_flexible():
    hrf = SPMHRFModel(tr=1.0)
    flexible = GaussianPRF2DWithHRF(GRID, hrf_model=hrf, flexible_hrf_parameters=True)
    assert flexible.parameter_labels == ["x", "y", "sd", "baseline", "amplitude", "hrf_delay",
                                         "hrf_dispersion"]
    assert GaussianPRF2DWithHRF(GRID, hrf_model=hrf).parameter_labels == [
        "x", "y", "sd", "baseline", "amplitude"]
    assert GaussianPRF2DWithHRF.parameter_labels == ["x", "y", "sd", "baseline", "amplitude"]


# ---------------------------------------------------------------- HRF
@pytest.mark.parametrize("tr", [0.8, 1.317025, 2.0])
def test_braincoder_kernel_reproduces_the_public_sampling(tr):
    hrf = SPMHRFModel(tr=tr, kernel="braincoder")
    np.testing.assert_allclose(hrf.get_hrf(), public_spm_kernel(tr), rtol=1e-4, atol=1e-7)
    per_voxel = SPMHRFModel(tr=tr, kernel="braincoder", unique_hrfs=True)
    kernels = per_voxel.get_hrf(np.array([[6.0, 1.0], [5.0, 0.8]], np.float32)).numpy()
    np.testing.assert_allclose(kernels[:, 0], public_spm_kernel(tr), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(kernels[:, 1], public_spm_kernel(tr, 5.0, 0.8), rtol=1e-4,
                               atol=1e-6)
    # the default stays SPM12's kernel, sampled at multiples of TR with unit sum
    assert SPMHRFModel(tr=tr).get_hrf().sum() == pytest.approx(1.0)


def test_braincoder_2024_kernel_and_configuration():
    tr = 1.5
    hrf = SPMHRFModel(tr=tr, kernel="braincoder_2024")
    t = np.linspace(0, 32, int(np.rint(32 / tr)))
    expected = stats.gamma.pdf(t, 6.0) - 0.167 * stats.gamma.pdf(t, 16.0)
    np.testing.assert_allclose(hrf.get_hrf(), expected, rtol=1e-5, atol=1e-8)
    per_voxel = SPMHRFModel(tr=tr, kernel="braincoder_2024", unique_hrfs=True)
    np.testing.assert_allclose(per_voxel.get_hrf([[6.0, 1.0]]).numpy()[:, 0], expected,
                               rtol=1e-4, atol=1e-6)
    model = GaussianPRF2DWithHRF(GRID, hrf_model=hrf)
    loaded = EncodingModel.from_json(model.to_json())
    assert loaded.hrf_model.kernel == "braincoder_2024"
    assert "kernel" not in SPMHRFModel(tr=tr).get_config()
    with pytest.raises(ValueError, match="kernel must be"):
        SPMHRFModel(tr=tr, kernel="spm8")


def test_published_szinte2024_fit_predicts_its_r2_with_the_2024_kernel():
    data_module = pytest.importorskip("braincoder.utils.data")
    try:
        data = data_module.load_szinte2024(best_voxels=150)
    except (FileNotFoundError, OSError):
        pytest.skip("szinte2024 data not installed")
    hrf = SPMHRFModel(tr=data["tr"] if "tr" in data else 1.317025, kernel="braincoder_2024")
    model = GaussianPRF2DWithHRF(data["grid_coordinates"], hrf_model=hrf)
    pars = data["prf_pars"][["x", "y", "sd", "baseline", "amplitude"]]
    # that version added the baseline before the convolution
    pars = pars.assign(baseline=pars["baseline"] * hrf.get_hrf().sum())
    prediction = model.predict(data["paradigm"], pars)
    r2 = get_rsq(data["v1_timeseries"][prediction.columns], prediction)
    published = data["r2"][prediction.columns]
    assert np.abs(r2 - published).max() < 0.01


# ---------------------------------------------------------------- decoding calls
def test_fisher_information_series_name_and_init_pseudowwt_default():
    pars = pd.DataFrame({"mu": [2.0, 5.0, 8.0], "sd": 1.5, "amplitude": 1.0,
                         "baseline": [0.5, 0.0, -0.5]})
    model = GaussianPRF(parameters=pars)
    info = model.get_fisher_information(np.linspace(0, 10, 5), omega=np.eye(3))
    assert info.name == "Fisher information"
    assert "Fisher information" in info.to_frame().columns
    stimulus_range = np.arange(1, 10).astype(np.float32)
    raw = model.init_pseudoWWT(stimulus_range=stimulus_range, parameters=pars)
    w = (np.exp(-0.5 * ((stimulus_range[:, None] - pars.mu.values) / 1.5) ** 2)
         + pars.baseline.values)
    np.testing.assert_allclose(raw.to_numpy(), w.T @ w, rtol=1e-5)
    np.testing.assert_allclose(model.get_pseudoWWT().to_numpy(), w.T @ w, rtol=1e-5)
    w0 = w - pars.baseline.values
    np.testing.assert_allclose(
        model.init_pseudoWWT(stimulus_range, pars, subtract_baseline=True).to_numpy(),
        w0.T @ w0, rtol=1e-5, atol=1e-6)
    weights = np.random.default_rng(0).normal(size=(3, 4))
    with_weights = GaussianPRF(parameters=pars, weights=weights)
    np.testing.assert_allclose(with_weights.get_pseudoWWT().to_numpy(), weights.T @ weights)


def test_posterior_summaries_are_named_as_in_the_public_braincoder():
    from braincoder.utils import get_expected_value, get_sd_posterior

    grid = np.linspace(0, 10, 201)
    pdf = pd.DataFrame([stats.norm.pdf(grid, 4.0, 1.0)], columns=grid)
    mean, sd = get_expected_value(pdf), get_sd_posterior(pdf)
    assert (mean.name, sd.name) == ("E", "sd")
    public_mean = np.trapezoid(pdf.to_numpy() * grid, grid) / np.trapezoid(pdf.to_numpy(), grid)
    np.testing.assert_allclose(mean, public_mean, rtol=1e-4)  # grid weights differ slightly
    np.testing.assert_allclose(sd, 1.0, rtol=1e-3)


def test_residual_fitter_sets_parameters_and_defaults_to_gaussian_noise():
    pars = pd.DataFrame({"mu": np.linspace(0, 10, 6), "sd": 2.0, "amplitude": 1.0,
                         "baseline": 0.0})
    model = GaussianPRF()
    paradigm = np.random.default_rng(1).uniform(0, 10, 200)
    data = model.simulate(paradigm, pars, noise=0.3, seed=2)
    fitter = ResidualFitter(model, data, paradigm, parameters=pars)
    assert model.parameters is not None and model.parameters.equals(fitter.parameters)
    omega, dof = fitter.fit(progressbar=False, max_n_iterations=300)
    assert dof is None
    np.testing.assert_allclose(np.diag(omega), 0.09, rtol=0.3)


def test_one_dimensional_bounds_keep_unconstrained_voxels_in_range():
    paradigm = pd.DataFrame({"x": np.linspace(0, 10, 40)})
    data = pd.DataFrame(np.random.default_rng(3).normal(size=(40, 3)))
    for model in (GaussianPRF(), VonMisesPRF(), LogGaussianPRF(),
                  LogGaussianPRF(parameterisation="mode_sd_log")):
        lower, upper = parameter_bounds(model, paradigm, data)
        labels = model.get_parameter_labels()
        for label in (labels[1], "amplitude", "baseline"):
            assert np.isfinite(upper[labels.index(label)]), (type(model).__name__, label)
    lower, upper = parameter_bounds(GaussianPRF(), paradigm, data)
    assert upper[1] <= 20.0 + 1e-6  # sd at most twice the stimulus span
    # a noise-only fit stays inside them
    fitter = ParameterFitter(GaussianPRF(), data, paradigm)
    start = pd.DataFrame({"mu": 5.0, "sd": 2.0, "amplitude": 0.1, "baseline": 0.0},
                         index=data.columns)
    fitted = fitter.fit(init_pars=start, progressbar=False, max_n_iterations=200)
    assert (fitted["sd"] <= upper[1] + 1e-6).all()
    assert (fitted["amplitude"].abs() <= upper[2] + 1e-6).all()


def test_divisive_normalisation_grid_and_refinement_fit():
    from braincoder.datasets import bar_sweep_paradigm

    paradigm, grid = bar_sweep_paradigm(grid_size=10, n_sweeps=4, frames_per_sweep=10)
    model = DivisiveNormalizationGaussianPRF2DWithHRF(grid, hrf_model=SPMHRFModel(tr=1.5))
    truth = pd.DataFrame({"x": [1.0, -2.0], "y": [0.0, 2.0], "sd": [1.0, 1.5],
                          "rf_amplitude": [10.0, 8.0], "srf_amplitude": [0.2, 0.1],
                          "srf_size": [2.0, 3.0], "neural_baseline": 1.0,
                          "surround_baseline": 1.0, "bold_baseline": [1.0, -1.0]})
    data = model.simulate(paradigm, truth, noise=0.01, seed=4)
    fitter = ParameterFitter(model, data, paradigm)
    values = {"x": np.linspace(-4, 4, 9), "y": np.linspace(-4, 4, 9), "sd": [1.0, 1.5],
              "rf_amplitude": [1.0], "srf_amplitude": [0.1], "srf_size": [2.0, 3.0],
              "neural_baseline": [1.0], "surround_baseline": [1.0], "bold_baseline": [0.0]}
    found = fitter.fit_grid(**values)
    refined = fitter.refine_baseline_and_amplitude(found)
    r2 = fitter.get_rsq(refined)
    assert (r2 > 0.8).all()
    np.testing.assert_allclose(refined["bold_baseline"], truth["bold_baseline"], atol=0.2)
    fitted = fitter.fit(init_pars=refined, max_n_iterations=100, progressbar=False)
    assert (fitter.r2 >= r2 - 1e-6).all() and (fitter.r2 > 0.95).all()
    np.testing.assert_allclose(fitted[["x", "y"]], truth[["x", "y"]], atol=0.3)


# ---------------------------------------------------------------- public example scripts
def test_example_encoding_model():
    parameters = pd.DataFrame([{"mu": 1.0, "sd": 1.0, "amplitude": 1.0, "baseline": 0.0},
                               {"mu": -2.0, "sd": 1.5, "amplitude": 1.0, "baseline": 0.0}],
                              index=["voxel 1", "voxel 2"])
    paradigm = np.linspace(-5, 5, 100)
    model = GaussianPRF(paradigm=paradigm, parameters=parameters)
    predictions = model.predict()
    assert predictions.shape == (100, 2)
    data = model.simulate(noise=0.2)
    optimizer = ParameterFitter(model, data=data, paradigm=paradigm)
    grid_pars = optimizer.fit_grid(np.linspace(-5, 5, 10), np.linspace(0.1, 5, 10), [1.0],
                                   [0.0], use_correlation_cost=True, progressbar=False)
    grid_pars = optimizer.refine_baseline_and_amplitude(grid_pars)
    r2_grid = get_rsq(data, model.predict(parameters=grid_pars))
    gd_pars = optimizer.fit(init_pars=grid_pars, progressbar=False)
    r2_gd = get_rsq(data, model.predict(parameters=gd_pars))
    assert (r2_gd >= r2_grid - 1e-6).all()
    np.testing.assert_allclose(gd_pars["mu"], parameters["mu"], atol=0.2)


def test_example_linear_encoding_model_and_fit_residuals():
    centers = np.linspace(0.0, 2 * np.pi, 6, endpoint=False)
    parameters = pd.DataFrame({"mu": centers, "kappa": 1.0, "amplitude": 1.0, "baseline": 0.0},
                              index=pd.Index([f"Voxel {i + 1}" for i in range(6)], name="voxel"))
    weights = np.array([[1, 0, 1], [1, 0.5, 1], [0, 1, 0], [0, 0.5, 0], [0, 0, 1],
                        [0, 0, 1]]).astype(np.float32)
    model = VonMisesPRF(parameters=parameters, weights=weights)
    orientations = np.linspace(0, np.pi * 2, 100)
    basis = model.basis_predictions(orientations, parameters)
    np.testing.assert_allclose(basis.to_numpy(), stats.vonmises.pdf(
        orientations[:, None], 1.0, loc=centers), rtol=1e-5, atol=1e-7)
    data = model.simulate(paradigm=orientations, noise=0.01, seed=5)
    estimated_weights = WeightFitter(model, parameters, data, orientations).fit(alpha=0.1)
    r2 = get_rsq(data, model.predict(paradigm=orientations, weights=estimated_weights))
    assert (r2 > 0.9).all()
    # fit_residuals.py
    paradigm = np.random.default_rng(6).random(50) * np.pi * 2
    cov = np.array([[0.5, 0.0, 0.0], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]])
    cov = (cov + cov.T) / 2  # the script's matrix is not symmetric; the public code symmetrises
    data = model.simulate(noise=cov, weights=weights, paradigm=paradigm, seed=7)
    fitter = ResidualFitter(model, data, paradigm, parameters, weights)
    omega, dof = fitter.fit(progressbar=False)
    assert dof is None and omega.shape == (3, 3)


def test_example_invert_model_peaks_at_the_true_orientation():
    """With the von Mises density, data equal to scipy's pdf decode to the true angle."""
    orientations = np.linspace(0.0, 2 * np.pi, 200).astype(np.float32)
    parameters = pd.DataFrame([{"mu": 0.5 * np.pi, "kappa": 0.5, "amplitude": 1.0,
                                "baseline": 0.0},
                               {"mu": 1.0 * np.pi, "kappa": 0.5, "amplitude": 1.0,
                                "baseline": 0.0}]).astype(np.float32)
    model = VonMisesPRF(parameters=parameters)
    omega = np.array([[0.05, 0.0], [0.0, 0.05]]).astype(np.float32)
    x = 7.0 / 8.0 * np.pi
    y1 = stats.vonmises(loc=0.5 * np.pi, kappa=0.5).pdf(x)
    y2 = stats.vonmises(loc=1.0 * np.pi, kappa=0.5).pdf(x)
    data = pd.DataFrame([[y1, y2]]).astype(np.float32)
    likelihood = model.likelihood(orientations, data, parameters, None, omega)
    best = float(likelihood.columns.to_numpy(dtype=float)[np.argmax(likelihood.to_numpy()[0])])
    assert best == pytest.approx(x, abs=2 * np.pi / 200 + 1e-3)


def test_example_decode():
    rng = np.random.default_rng(8)
    n, n_trials = 12, 50
    parameters = pd.DataFrame({"mu": rng.random(n) * 100, "sd": rng.random(n) * 45 + 5,
                               "amplitude": rng.random(n) * 5,
                               "baseline": rng.random(n) * 2 - 1})
    paradigm = np.ceil(rng.random(n_trials) * 100)
    model = GaussianPRF(parameters=parameters)
    data = model.simulate(paradigm=paradigm, noise=1.0, seed=9)
    fitter = ParameterFitter(model, data, paradigm)
    grid_pars = fitter.fit_grid(np.arange(0, 100, 5), np.arange(5, 50, 5), [1.0], [0.0],
                                use_correlation_cost=True, progressbar=False)
    grid_pars = fitter.refine_baseline_and_amplitude(grid_pars)
    gd_pars = fitter.fit(init_pars=grid_pars, progressbar=False)
    stimulus_range = np.arange(1, 100).astype(np.float32)
    model.init_pseudoWWT(stimulus_range=stimulus_range, parameters=gd_pars)
    resid_fitter = ResidualFitter(model, data, paradigm, gd_pars)
    omega, dof = resid_fitter.fit(progressbar=False, max_n_iterations=300)
    assert dof is None
    test_paradigm = np.ceil(rng.random(n_trials) * 100)
    test_data = model.simulate(paradigm=test_paradigm, noise=1.0, seed=10)
    posterior = model.get_stimulus_pdf(test_data, stimulus_range, model.parameters,
                                       omega=omega, dof=dof)
    assert posterior.shape == (n_trials, len(stimulus_range))
    stimulus_fitter = StimulusFitter(model=model, data=test_data, omega=omega)
    grid = stimulus_fitter.fit_grid(np.arange(1, 100, 5))
    fitted = stimulus_fitter.fit(init_pars=grid, progressbar=False, max_n_iterations=100)
    assert fitted.shape == (n_trials, 1)


def test_example_fisher_information():
    mus = stats.uniform(0, 10.0).ppf(np.linspace(0.0, 1.0, 10)[1:-1])
    parameters = pd.DataFrame({"mu": mus, "sd": 1.0, "baseline": 0.0, "amplitude": 1.0})[
        ["mu", "sd", "amplitude", "baseline"]]
    paradigm = pd.Series(np.linspace(-2, 12, 100, dtype=np.float32))
    omega = np.identity(len(parameters)).astype(np.float32)
    model = GaussianPRF(parameters=parameters, paradigm=paradigm)
    stimuli = np.linspace(-5, 15, 100).astype(np.float32)
    info = model.get_fisher_information(stimuli=stimuli, omega=omega, dof=None, n=500).to_frame()
    derivative = -(stimuli[:, None] - mus) * np.exp(-0.5 * (stimuli[:, None] - mus) ** 2)
    np.testing.assert_allclose(info["Fisher information"], (derivative**2).sum(1), rtol=1e-4,
                               atol=1e-6)
    # the log-Gaussian part of the script: paradigm from 0, public parameterisation
    parameters = pd.DataFrame({"mu": np.linspace(5, 25, 8), "sd": 25.0, "baseline": 0.0,
                               "amplitude": 1.0})[["mu", "sd", "amplitude", "baseline"]]
    paradigm = np.linspace(0, 100, 100, dtype=np.float32)
    model = LogGaussianPRF(parameters=parameters, paradigm=paradigm)
    y = model.predict(paradigm=paradigm)
    np.testing.assert_allclose(y.to_numpy()[1:], public_lognormal_mu_sd(
        paradigm[1:, None], parameters.mu.values, 25.0), rtol=1e-5, atol=1e-6)
    fisher = model.get_fisher_information(
        stimuli=np.linspace(5, 100, 50).astype(np.float32),
        omega=np.identity(8).astype(np.float32), n=500).to_frame()
    fisher["sqrt(fi)"] = np.sqrt(fisher["Fisher information"])
    assert np.isfinite(fisher["sqrt(fi)"]).all()


def test_example_decode2d():
    rng = np.random.default_rng(11)
    parameters = pd.DataFrame({"mu": np.linspace(0, 2 * np.pi, 8, False), "kappa": 1.0,
                               "amplitude": 1.0, "baseline": 0.0})
    weights = np.identity(8) * 5.0 + rng.random((8, 8))
    model = VonMisesPRF(parameters=parameters, model_stimulus_amplitude=True, weights=weights)
    assert list(model.stimulus.dimension_labels) == ["x (radians)", "amplitude"]
    mapper = pd.DataFrame({"x (radians)": rng.random(100) * 2 * np.pi, "amplitude": 1.0})
    data = model.simulate(paradigm=mapper, noise=0.1, seed=12)
    fitted_weights = WeightFitter(model, parameters, data, mapper).fit(alpha=1.0)
    omega, dof = ResidualFitter(model, data, mapper, parameters, fitted_weights).fit(
        progressbar=False, max_n_iterations=300)
    n = 20
    experiment = pd.DataFrame({"x (radians)": rng.random(n) * 2 * np.pi,
                               "amplitude": np.where(np.arange(n) % 2 == 0, 1.5, 0.5)})
    experimental_data = model.simulate(paradigm=experiment, noise=0.1, seed=13)
    stimuli = pd.MultiIndex.from_product(
        [np.linspace(0, 2 * np.pi, 24, False), np.linspace(0, 3, 13)],
        names=["x (radians)", "amplitude"]).to_frame(index=False)
    ll = model.get_stimulus_pdf(experimental_data, stimuli, omega=omega,
                                include_multidimensional_stimulus_index=True)
    amplitudes = ll.T.groupby(level="amplitude").sum().T
    mean_amplitude = amplitudes.to_numpy() @ amplitudes.columns.to_numpy()
    assert np.corrcoef(mean_amplitude, experiment["amplitude"])[0, 1] > 0.9


def test_example_decode_visual_small():
    from braincoder.datasets import bar_sweep_paradigm

    paradigm, grid = bar_sweep_paradigm(grid_size=10, n_sweeps=4, frames_per_sweep=10)
    x, y = np.meshgrid(np.linspace(-3, 3, 2), np.linspace(-3, 3, 2))
    parameters = pd.DataFrame({"x": x.ravel(), "y": y.ravel(), "sd": 1.5, "baseline": 0.0,
                               "amplitude": 1.0}).astype(np.float32)
    model = GaussianPRF2DWithHRF(grid_coordinates=grid, paradigm=paradigm,
                                 parameters=parameters, hrf_model=SPMHRFModel(tr=1.5))
    rfs = model.get_rf(as_frame=True)
    assert len(list(rfs.groupby(level=0))) == 4
    data = model.simulate(noise=0.01, seed=14)
    par_fitter = ParameterFitter(model, data, paradigm)
    grid_pars = par_fitter.fit_grid(np.linspace(-4, 4, 9), np.linspace(-4, 4, 9),
                                    np.linspace(1, 3, 5), [0.0], [1.0],
                                    use_correlation_cost=True)
    refined = par_fitter.refine_baseline_and_amplitude(grid_pars)
    pars = par_fitter.fit(init_pars=refined, learning_rate=1e-2, max_n_iterations=200,
                          min_n_iterations=10, r2_atol=0.0001, progressbar=False)
    np.testing.assert_allclose(pars[["x", "y", "sd", "amplitude"]].to_numpy(),
                               parameters[["x", "y", "sd", "amplitude"]].to_numpy(), rtol=0.05,
                               atol=0.1)
    resid_fitter = ResidualFitter(model, data, paradigm, parameters=pars)
    omega, dof = resid_fitter.fit(progressbar=False, max_n_iterations=200)
    unseen = model.simulate(noise=0.01, seed=15)
    stim_fitter = StimulusFitter(unseen, model, omega)
    reconstructed = stim_fitter.fit(legacy_adam=True, min_n_iterations=20, max_n_iterations=20,
                                    learning_rate=0.1, progressbar=False)
    assert reconstructed.shape == paradigm.shape


def test_example_fit_prf_sequence_small():
    """fit_prf.py: Gaussian, then per-voxel HRF, then difference of Gaussians."""
    from braincoder.datasets import bar_sweep_paradigm
    from braincoder.models import DifferenceOfGaussiansPRF2DWithHRF

    paradigm, grid = bar_sweep_paradigm(grid_size=10, n_sweeps=4, frames_per_sweep=10)
    hrf_model = SPMHRFModel(tr=1.5)
    truth = pd.DataFrame({"x": [-2.0, 1.5, 2.5], "y": [1.0, -2.0, 2.0], "sd": [1.0, 1.5, 2.0],
                          "baseline": [0.0, 1.0, -1.0], "amplitude": [3.0, 4.0, 5.0]})
    d = GaussianPRF2DWithHRF(grid, hrf_model=hrf_model).simulate(paradigm, truth, noise=0.02,
                                                                 seed=16)
    d.index.name = "frame"
    model_gauss = GaussianPRF2DWithHRF(data=d, paradigm=paradigm, hrf_model=hrf_model,
                                       grid_coordinates=grid)
    par_fitter = ParameterFitter(model=model_gauss, data=d, paradigm=paradigm)
    grid_pars = par_fitter.fit_grid(np.linspace(-4, 4, 9), np.linspace(-4, 4, 9),
                                    np.linspace(0.5, 3, 6), [0.0], [1.0],
                                    use_correlation_cost=True)
    pars_gauss_ols = par_fitter.refine_baseline_and_amplitude(grid_pars)
    pars_gauss_gd = par_fitter.fit(init_pars=pars_gauss_ols, max_n_iterations=30,
                                   progressbar=False)
    r2_gauss_gd = par_fitter.get_rsq(pars_gauss_gd)
    assert (r2_gauss_gd > 0.95).all()
    model_hrf = GaussianPRF2DWithHRF(data=d, paradigm=paradigm, hrf_model=hrf_model,
                                     grid_coordinates=grid, flexible_hrf_parameters=True)
    assert not hrf_model.unique_hrfs  # the model uses a copy
    pars_gauss_gd["hrf_delay"] = 6
    pars_gauss_gd["hrf_dispersion"] = 1
    par_fitter_hrf = ParameterFitter(model=model_hrf, data=d, paradigm=paradigm)
    pars_gauss_hrf = par_fitter_hrf.fit(init_pars=pars_gauss_gd, max_n_iterations=20,
                                        progressbar=False)
    r2_gauss_hrf = par_fitter_hrf.get_rsq(pars_gauss_hrf)
    assert (r2_gauss_hrf >= r2_gauss_gd - 1e-3).all()
    model_dog = DifferenceOfGaussiansPRF2DWithHRF(data=d, paradigm=paradigm,
                                                  hrf_model=hrf_model, grid_coordinates=grid,
                                                  flexible_hrf_parameters=True)
    pars_dog_init = pars_gauss_hrf.copy()
    pars_dog_init["srf_amplitude"] = 0.1
    pars_dog_init["srf_size"] = 2.0
    pars_dog_init = pars_dog_init[model_dog.parameter_labels]
    par_fitter_dog = ParameterFitter(model=model_dog, data=d, paradigm=paradigm)
    pars_dog = par_fitter_dog.fit(init_pars=pars_dog_init, max_n_iterations=20,
                                  fixed_pars=["hrf_delay", "hrf_dispersion"], progressbar=False)
    np.testing.assert_array_equal(pars_dog["hrf_delay"], pars_dog_init["hrf_delay"])
    assert (par_fitter_dog.get_rsq(pars_dog) > 0.95).all()


def test_example_masked_stimulus_decoding_small():
    from braincoder.datasets import bar_sweep_paradigm

    paradigm, grid = bar_sweep_paradigm(grid_size=8, n_sweeps=2, frames_per_sweep=8)
    stimulus = paradigm.to_numpy().reshape(len(paradigm), 8, 8)
    rng = np.random.default_rng(17)
    prf_pars = pd.DataFrame({"x": rng.uniform(-3, 3, 30), "y": rng.uniform(-3, 3, 30),
                             "sd": rng.uniform(1, 2, 30), "baseline": 0.0,
                             "amplitude": rng.uniform(2, 4, 30)})
    model = GaussianPRF2DWithHRF(grid_coordinates=grid, paradigm=stimulus,
                                 parameters=prf_pars, hrf_model=SPMHRFModel(tr=1.5))
    data = model.simulate(noise=0.05, seed=18)
    omega, dof = ResidualFitter(model, data, stimulus, parameters=prf_pars).fit(
        progressbar=False, max_n_iterations=100)
    stim_fitter = StimulusFitter(data, model, omega)
    reconstructed = stim_fitter.fit(legacy_adam=True, min_n_iterations=10,
                                    max_n_iterations=50, learning_rate=0.05,
                                    mask=(stimulus > 0.1), progressbar=False)
    assert (reconstructed.to_numpy()[~(paradigm.to_numpy() > 0.1)] == 0).all()
