import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy import special, stats

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    GaussianPRF,
    GaussianPRF2D,
    GaussianPRFWithHRF,
    LinearModel,
    LogGaussianPRF,
    VonMisesPRF,
)
from braincoder.optimize import ResidualFitter, StimulusFitter
from braincoder.optimize.residuals import make_omega
from braincoder.optimize.stimulus import make_bar_stimulus_fn
from braincoder.stimuli import make_grid_coordinates
from braincoder.utils import (
    get_expected_value,
    get_map,
    get_sd_posterior,
    in_credible_interval,
)

CIRCLE = np.linspace(-np.pi, np.pi, 120, endpoint=False)
#: Amplitude giving a von Mises density with kappa 1 a peak of 1.
VON_MISES_PEAK_ONE = 2 * np.pi * special.i0e(1.0)


def circular_correlation(a, b):
    """Fisher–Lee circular correlation (well defined for stimuli spread over the circle)."""
    da = np.sin(np.subtract.outer(a, a))
    db = np.sin(np.subtract.outer(b, b))
    return (da * db).sum() / np.sqrt((da**2).sum() * (db**2).sum())


def simulate(model, stimuli, omega, seed):
    rng = np.random.default_rng(seed)
    prediction = model.predict(paradigm=stimuli)
    noise = rng.multivariate_normal(np.zeros(len(omega)), omega, size=len(stimuli))
    return prediction + noise


# ---------------------------------------------------------------- orientation population
@pytest.fixture(scope="module")
def orientation():
    rng = np.random.default_rng(0)
    n = 60
    parameters = pd.DataFrame(
        {
            "mu": np.linspace(-np.pi, np.pi, n, endpoint=False),
            "kappa": rng.uniform(1.0, 3.0, n),
            "amplitude": rng.uniform(0.8, 1.2, n),
            "baseline": rng.normal(0, 0.1, n),
        },
        index=pd.Index([f"v{i:02d}" for i in range(n)], name="voxel"),
    )
    # The tuning curve is the von Mises density: scale the amplitude to peaks of 0.8–1.2.
    parameters["amplitude"] *= 2 * np.pi * special.i0e(parameters["kappa"])
    model = VonMisesPRF(parameters=parameters)
    truth = {"tau": rng.uniform(0.15, 0.3, n), "rho": 0.3, "sigma2": 0.025}
    omega = make_omega(truth["tau"], truth["rho"], truth["sigma2"],
                       model.get_rf_overlap().to_numpy())
    train = rng.uniform(-np.pi, np.pi, 1000)
    data = simulate(model, train, omega, seed=1)
    fitter = ResidualFitter(model, data, train)
    fitted, dof = fitter.fit(method="gauss", progressbar=False, max_n_iterations=2000)
    return {"model": model, "omega": omega, "truth": truth, "fitter": fitter,
            "fitted": fitted, "dof": dof, "data": data}


def test_residual_fitter_recovers_noise_model(orientation):
    fitter, truth = orientation["fitter"], orientation["truth"]
    estimates = fitter.fitted_omega_parameters
    assert orientation["dof"] is None
    assert estimates["rho"] == pytest.approx(truth["rho"], rel=0.15)
    assert estimates["sigma2"] == pytest.approx(truth["sigma2"], rel=0.15)
    np.testing.assert_allclose(estimates["tau"].to_numpy(), truth["tau"], rtol=0.15)
    omega = orientation["fitted"]
    assert omega.index.equals(orientation["data"].columns)
    assert omega.columns.equals(orientation["data"].columns)
    np.testing.assert_array_equal(omega.to_numpy(), omega.to_numpy().T)
    assert np.linalg.eigvalsh(omega.to_numpy()).min() > 0
    assert fitter.costs[-1] < fitter.costs[0]


def test_orientation_decoding_and_calibration(orientation):
    model, omega = orientation["model"], orientation["omega"]
    rng = np.random.default_rng(2)
    truth = rng.uniform(-np.pi, np.pi, 300)
    data = simulate(model, truth, omega, seed=3)
    pdf = model.get_stimulus_pdf(data, CIRCLE, omega=orientation["fitted"])
    assert pdf.shape == (300, len(CIRCLE))
    assert pdf.index.equals(data.index)
    # densities: sum × grid step = 1
    np.testing.assert_allclose(pdf.sum(axis=1) * (CIRCLE[1] - CIRCLE[0]), 1.0, rtol=1e-9)
    decoded_map = get_map(pdf).to_numpy(dtype=float)
    decoded_mean = get_expected_value(pdf).to_numpy()
    assert circular_correlation(decoded_map, truth) > 0.9
    assert circular_correlation(decoded_mean, truth) > 0.9
    assert np.abs(np.angle(np.exp(1j * (decoded_mean - truth)))).mean() < 0.3
    coverage = in_credible_interval(pdf, truth, 0.95).mean()
    assert 0.90 <= coverage <= 0.99


def test_stimulus_fitter_orientation_wraps_and_improves(orientation):
    model, omega = orientation["model"], orientation["fitted"]
    rng = np.random.default_rng(4)
    truth = rng.uniform(-np.pi, np.pi, 40)
    data = simulate(model, truth, orientation["omega"], seed=5)
    fitter = StimulusFitter(data, model, omega)
    fitted = fitter.fit(progressbar=False)
    values = fitted["x (radians)"].to_numpy()
    assert ((values >= -np.pi) & (values < np.pi)).all()
    assert circular_correlation(values, truth) > 0.9
    # never worse than the grid start; checked through the public likelihood
    grid_start = get_map(model.get_stimulus_pdf(data, omega=omega)).to_numpy(dtype=float)

    def log_posterior(stimuli):
        frame = model.likelihood(stimuli, data, omega=omega, logp=True, normalize=False)
        return np.diag(frame.to_numpy())

    assert (log_posterior(values) >= log_posterior(grid_start) - 1e-6).all()
    assert (log_posterior(values) > log_posterior(grid_start) + 1e-6).mean() > 0.5


def test_fisher_information_analytical_matches_sampled_and_reference(orientation):
    model, omega = orientation["model"], orientation["fitted"]
    stimuli = np.linspace(-np.pi, np.pi, 12, endpoint=False)
    analytical = model.get_fisher_information(stimuli, omega=omega)
    assert analytical.index.tolist() == pytest.approx(stimuli.tolist())
    sampled = model.get_fisher_information(stimuli, omega=omega, analytical=False, n=4000)
    np.testing.assert_allclose(sampled, analytical, rtol=0.10)
    # independent reference: central finite differences and a numpy solve
    h = 1e-3
    derivative = (model.predict(paradigm=stimuli + h).to_numpy()
                  - model.predict(paradigm=stimuli - h).to_numpy()) / (2 * h)
    reference = np.einsum("gi,ij,gj->g", derivative, np.linalg.inv(omega.to_numpy()), derivative)
    np.testing.assert_allclose(analytical, reference, rtol=1e-3)
    # Student-t noise: (dof + n) / (dof + n + 2) scaling, and Monte Carlo agreement
    t_analytical = model.get_fisher_information(stimuli, omega=omega, dof=4.0)
    n = omega.shape[0]
    np.testing.assert_allclose(t_analytical, analytical * (4 + n) / (4 + n + 2), rtol=1e-9)
    t_sampled = model.get_fisher_information(stimuli, omega=omega, dof=4.0, analytical=False,
                                             n=4000, seed=1)
    np.testing.assert_allclose(t_sampled, t_analytical, rtol=0.10)


# ---------------------------------------------------------------- numerosity population
@pytest.fixture(scope="module")
def numerosity():
    rng = np.random.default_rng(10)
    n = 40
    parameters = pd.DataFrame({
        "mu": rng.uniform(0, 10, n), "sd": rng.uniform(1, 3, n),
        "amplitude": rng.uniform(0.8, 1.2, n), "baseline": 0.0,
    })
    model = GaussianPRF(parameters=parameters)
    truth = {"tau": rng.uniform(0.2, 0.4, n), "rho": 0.2, "sigma2": 0.05}
    omega = make_omega(truth["tau"], truth["rho"], truth["sigma2"],
                       model.get_rf_overlap().to_numpy())
    train = rng.uniform(0, 10, 800)
    data = simulate(model, train, omega, seed=11)
    fitter = ResidualFitter(model, data, train)
    fitted, _ = fitter.fit(method="gauss", progressbar=False)
    return {"model": model, "omega": omega, "truth": truth, "fitter": fitter, "fitted": fitted}


def test_numerosity_noise_recovery_decoding_and_calibration(numerosity):
    estimates, truth = numerosity["fitter"].fitted_omega_parameters, numerosity["truth"]
    assert estimates["rho"] == pytest.approx(truth["rho"], rel=0.15)
    assert estimates["sigma2"] == pytest.approx(truth["sigma2"], rel=0.15)
    np.testing.assert_allclose(estimates["tau"].to_numpy(), truth["tau"], rtol=0.15)
    model = numerosity["model"]
    rng = np.random.default_rng(12)
    stimuli = rng.uniform(0, 10, 300)
    data = simulate(model, stimuli, numerosity["omega"], seed=13)
    grid = np.linspace(0, 10, 201)
    pdf = model.get_stimulus_pdf(data, grid, omega=numerosity["fitted"])
    np.testing.assert_allclose(pdf.sum(axis=1) * (grid[1] - grid[0]), 1.0, rtol=1e-9)
    assert np.corrcoef(get_map(pdf).to_numpy(dtype=float), stimuli)[0, 1] > 0.9
    assert np.corrcoef(get_expected_value(pdf), stimuli)[0, 1] > 0.9
    assert 0.90 <= in_credible_interval(pdf, stimuli).mean() <= 0.99


def test_posterior_sd_grows_with_noise(numerosity):
    model, omega = numerosity["model"], numerosity["omega"]
    stimuli = np.random.default_rng(14).uniform(2, 8, 100)
    grid = np.linspace(0, 10, 201)
    sds = []
    for scale in (0.5, 1.0, 2.0):
        data = simulate(model, stimuli, scale * omega, seed=15)
        pdf = model.get_stimulus_pdf(data, grid, omega=scale * omega)
        sds.append(get_sd_posterior(pdf).mean())
    assert sds[0] < sds[1] < sds[2]


def test_likelihood_matches_scipy(numerosity):
    model, omega = numerosity["model"], numerosity["omega"]
    stimuli = np.array([1.0, 4.5, 9.0])
    data = simulate(model, np.array([2.0, 6.0]), omega, seed=16)
    mean = model.predict(paradigm=stimuli).to_numpy()
    log_like = model.likelihood(stimuli, data, omega=omega, logp=True, normalize=False)
    reference = np.array([[stats.multivariate_normal.logpdf(y, m, omega) for m in mean]
                          for y in data.to_numpy()])
    np.testing.assert_allclose(log_like.to_numpy(), reference, rtol=1e-8)
    log_t = model.likelihood(stimuli, data, omega=omega, dof=5.0, logp=True, normalize=False)
    reference_t = np.array([[stats.multivariate_t.logpdf(y, m, omega, df=5.0) for m in mean]
                            for y in data.to_numpy()])
    np.testing.assert_allclose(log_t.to_numpy(), reference_t, rtol=1e-8)
    assert log_like.columns.tolist() == stimuli.tolist()


def test_voxels_are_aligned_by_name(numerosity):
    model, omega = numerosity["model"], numerosity["omega"]
    voxels = pd.Index([f"v{i}" for i in range(omega.shape[0])], name="voxel")
    parameters = model.parameters.set_axis(voxels)
    omega_frame = pd.DataFrame(omega, index=voxels, columns=voxels)
    data = simulate(model, np.array([3.0, 7.0]), omega, seed=17).set_axis(voxels, axis=1)
    grid = np.linspace(0, 10, 51)
    reference = model.get_stimulus_pdf(data, grid, parameters=parameters, omega=omega_frame)
    order = np.random.default_rng(0).permutation(len(voxels))
    shuffled = model.get_stimulus_pdf(
        data.iloc[:, order], grid, parameters=parameters.iloc[order[::-1]],
        omega=omega_frame.iloc[order, order],
    )
    np.testing.assert_allclose(shuffled.to_numpy(), reference.to_numpy(), rtol=1e-6)


def test_irregular_grid_normalisation_and_log_gaussian_fit():
    n = 30
    model = LogGaussianPRF(parameterisation="mode_sd_log", parameters=pd.DataFrame({
        "mu": np.geomspace(1, 64, n), "sd": 0.5, "amplitude": 1.0, "baseline": 0.0}))
    stimuli = np.exp(np.random.default_rng(18).uniform(0, np.log(64), 30))
    data = model.simulate(stimuli, noise=0.2, seed=19)
    omega = 0.04 * np.eye(n)
    pdf = model.get_stimulus_pdf(data, omega=omega)  # default grid: log-spaced 1 … 64
    grid = pdf.columns.to_numpy()
    np.testing.assert_allclose(pdf.to_numpy() @ np.gradient(grid), 1.0, rtol=1e-9)
    fitted = StimulusFitter(data, model, omega).fit(progressbar=False)
    assert (fitted["x"] > 0).all()
    assert np.corrcoef(np.log(fitted["x"]), np.log(stimuli))[0, 1] > 0.95


def test_hrf_model_decodes_with_its_hrf_free_response(numerosity):
    model, omega = numerosity["model"], numerosity["omega"]
    with_hrf = GaussianPRFWithHRF(parameters=model.parameters, hrf_model=SPMHRFModel(tr=1.0))
    data = simulate(model, np.array([2.0, 5.0, 8.0]), omega, seed=20)
    grid = np.linspace(0, 10, 41)
    np.testing.assert_allclose(
        with_hrf.get_stimulus_pdf(data, grid, omega=omega).to_numpy(),
        model.get_stimulus_pdf(data, grid, omega=omega).to_numpy(), rtol=1e-6,
    )


def test_residual_fitter_student_t_and_shrinkage():
    rng = np.random.default_rng(21)
    n = 15
    model = GaussianPRF(parameters=pd.DataFrame({
        "mu": np.linspace(0, 10, n), "sd": 2.0, "amplitude": 1.0, "baseline": 0.0}))
    omega = make_omega(np.full(n, 0.3), 0.2, 0.05, model.get_rf_overlap().to_numpy())
    stimuli = rng.uniform(0, 10, 1500)
    noise = stats.multivariate_t.rvs(np.zeros(n), omega, df=5.0, size=1500, random_state=22)
    data = model.predict(paradigm=stimuli) + noise
    fitter = ResidualFitter(model, data, stimuli)
    fitted, dof = fitter.fit(init_dof=10.0, progressbar=False, max_n_iterations=1500,
                             method="t")
    assert isinstance(dof, float) and 3.5 < dof < 7.5
    assert np.linalg.eigvalsh(fitted.to_numpy()).min() > 0
    first = fitter.omega.to_numpy().copy()
    fitter.fit(init_dof=10.0, progressbar=False, max_n_iterations=1500, method="t")
    np.testing.assert_array_equal(fitter.omega.to_numpy(), first)  # deterministic
    empirical, _ = ResidualFitter(model, data, stimuli, lambd=1.0).fit(method="gauss")
    np.testing.assert_allclose(empirical, np.cov(fitter.residuals.to_numpy(), rowvar=False))
    with pytest.raises(ValueError, match="not positive definite.*lambd"):
        ResidualFitter(model, data.iloc[:10], stimuli[:10], lambd=1.0).fit(method="gauss")
    distances = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    with_d, _ = fitter.fit(D=distances, method="gauss", progressbar=False, max_n_iterations=200)
    assert {"alpha", "beta"} <= set(fitter.fitted_omega_parameters)
    assert np.linalg.eigvalsh(with_d.to_numpy()).min() > 0


# ---------------------------------------------------------------- 2D and images
@pytest.fixture(scope="module")
def retinotopy():
    rng = np.random.default_rng(30)
    grid = make_grid_coordinates(15, extent=5.0)
    n = 80
    parameters = pd.DataFrame({
        "x": rng.uniform(-4, 4, n), "y": rng.uniform(-4, 4, n), "sd": rng.uniform(1, 2, n),
        "baseline": 0.0, "amplitude": 1.0})
    model = GaussianPRF2D(grid_coordinates=grid)
    # normalised RFs (divided by sd·√(2π)/pixel area): amplitudes giving peaks of 1
    parameters["amplitude"] *= parameters["sd"] * np.sqrt(2 * np.pi) / model.pixel_area
    model.parameters = parameters
    return {"model": model, "grid": grid, "omega": 0.01 * np.eye(n), "rng": rng}


def test_dot_position_decoding_2d(retinotopy):
    model, grid, omega = retinotopy["model"], retinotopy["grid"], retinotopy["omega"]
    rng = np.random.default_rng(31)
    pixels = rng.integers(0, len(grid), 40)
    images = np.zeros((40, len(grid)))
    images[np.arange(40), pixels] = 1.0
    data = model.simulate(images, noise=0.1, seed=32)
    pdf = model.get_stimulus_pdf(data, omega=omega)  # a dot at every pixel
    assert list(pdf.columns.names) == ["x", "y"]
    np.testing.assert_allclose(pdf.sum(axis=1), 1.0, rtol=1e-9)
    decoded = get_map(pdf)
    error = np.hypot(decoded["x"].to_numpy() - grid["x"].to_numpy()[pixels],
                     decoded["y"].to_numpy() - grid["y"].to_numpy()[pixels])
    width = model.parameters["sd"].mean()
    assert (error < width).mean() > 0.8
    # candidate images and dot positions give the same posterior
    candidates = pd.DataFrame(np.eye(len(grid))[:20])
    by_image = model.get_stimulus_pdf(data, candidates, omega=omega)
    by_position = model.get_stimulus_pdf(data, grid.iloc[:20], omega=omega)
    np.testing.assert_allclose(by_image.to_numpy(), by_position.to_numpy(), rtol=1e-9)


def test_stimulus_fitter_images_and_bars(retinotopy):
    model, grid, omega = retinotopy["model"], retinotopy["grid"], retinotopy["omega"]
    rng = np.random.default_rng(33)
    draw = make_bar_stimulus_fn(grid, edge_width=0.2)
    bars = pd.DataFrame({"x": rng.uniform(-3, 3, 8), "width": rng.uniform(1, 2, 8)})
    images = draw(tf.constant(bars.to_numpy(), tf.float32)).numpy()
    data = model.simulate(images, noise=0.05, seed=34)
    init = bars.assign(x=0.0, width=1.5)
    fitter = StimulusFitter(data, model, omega / 4)
    fitted = fitter.fit(init_pars=init, stimulus_fn=draw, learning_rate=0.05,
                        progressbar=False)
    assert list(fitted.columns) == ["x", "width"]
    np.testing.assert_allclose(fitted["x"], bars["x"], atol=0.1)
    # pixel-wise MAP image with priors, from the grid start: never worse than the start
    pixels = StimulusFitter(data, model, omega)
    image = pixels.fit(l2_norm=0.01, smoothness=0.01, max_n_iterations=200, progressbar=False)
    assert image.shape == (8, len(grid))
    assert (pixels.log_posterior >= pixels.init_log_posterior).all()
    assert pixels.log_posterior.sum() > pixels.init_log_posterior.sum()
    # the grid start over candidate images picks each trial's own bar
    others = draw(tf.constant(np.column_stack([rng.uniform(-3, 3, 12), rng.uniform(1, 2, 12)]),
                              tf.float32)).numpy()
    candidates = np.concatenate([others, images])
    picked = pixels.fit_grid(candidates)
    np.testing.assert_allclose(picked.to_numpy(), images, atol=1e-6)
    with pytest.raises(ValueError, match="one array of candidate images"):
        pixels.fit_grid(candidates, candidates)


def test_linear_model_with_weights():
    rng = np.random.default_rng(40)
    weights = rng.normal(size=(3, 20))
    model = LinearModel(weights=weights)
    overlap = model.get_rf_overlap()
    reference = weights.T @ weights
    np.testing.assert_allclose(overlap, reference / np.diag(reference).mean(), rtol=1e-12)
    stimuli = rng.normal(size=(100, 3))
    data = model.simulate(stimuli, noise=0.5, seed=41)
    omega, _ = ResidualFitter(model, data, stimuli).fit(method="gauss", progressbar=False)
    likelihood = model.likelihood(pd.DataFrame(stimuli[:10]), data.iloc[:10], omega=omega)
    assert (likelihood.to_numpy().argmax(axis=1) == np.arange(10)).all()


# ---------------------------------------------------------------- bad input
def test_bad_inputs(numerosity, retinotopy):
    model, omega = numerosity["model"], numerosity["omega"]
    data = simulate(model, np.array([3.0, 7.0]), omega, seed=50)
    grid = np.linspace(0, 10, 11)
    not_pd = omega.copy()
    not_pd[0, 1] = not_pd[1, 0] = 10.0
    with pytest.raises(ValueError, match="not positive definite.*lambd.*diagonal"):
        model.get_stimulus_pdf(data, grid, omega=not_pd)
    with pytest.raises(ValueError, match="no omega"):
        model.get_stimulus_pdf(data, grid)
    with pytest.raises(ValueError, match="stimulus space with 1 dimension"):
        model.get_stimulus_pdf(data, np.ones((5, 2)), omega=omega)
    with pytest.raises(ValueError, match="candidate images"):
        retinotopy["model"].get_stimulus_pdf(
            pd.DataFrame(np.zeros((2, 80))), np.ones((3, 7)), omega=retinotopy["omega"])
    renamed = data.rename(columns={0: "stranger"})
    with pytest.raises(ValueError, match="'stranger'"):
        model.get_stimulus_pdf(renamed.set_axis(
            ["stranger"] + [f"v{i}" for i in range(1, 40)], axis=1), grid, omega=omega,
            parameters=model.parameters.set_axis([f"v{i}" for i in range(40)]))
    with pytest.raises(ValueError, match="is 40 × 40 but there are 39 voxels"):
        model.get_stimulus_pdf(data.iloc[:, :39], grid, omega=omega)
    with pytest.raises(ValueError, match="dof"):
        model.get_stimulus_pdf(data, grid, omega=omega, dof=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        StimulusFitter(data, model, omega).fit(progressbar=False, l2=1.0)
    with pytest.raises(ValueError, match="stimulus_fn needs init_pars"):
        StimulusFitter(data, model, omega).fit(stimulus_fn=lambda p: p)
    with pytest.raises(ValueError, match="smoothness"):
        StimulusFitter(data, model, omega).fit(smoothness=1.0)
    with pytest.raises(ValueError, match="lambd"):
        ResidualFitter(model, data, [3.0, 7.0], lambd=2.0)
    with pytest.raises(ValueError, match="method"):
        ResidualFitter(model, data, [3.0, 7.0]).fit(method="cauchy")
    with pytest.raises(ValueError, match="not computed for image stimuli"):
        retinotopy["model"].get_fisher_information(omega=retinotopy["omega"])


def test_fisher_information_matrix_of_a_multidimensional_stimulus():
    rng = np.random.default_rng(3)
    voxels = pd.Index([f"v{i}" for i in range(8)], name="voxel")
    weights = pd.DataFrame(rng.normal(size=(3, 8)), columns=voxels,
                           index=pd.Index(["contrast", "speed", "size"], name="feature"))
    model = LinearModel(weights=weights)
    a = rng.normal(size=(8, 8))
    omega = pd.DataFrame(a @ a.T / 8 + 0.5 * np.eye(8), index=voxels, columns=voxels)
    stimuli = pd.DataFrame(rng.normal(size=(4, 3)), columns=weights.index,
                           index=pd.Index(list("abcd"), name="trial"))
    info = model.get_fisher_information(stimuli, omega=omega)
    assert list(info.index) == list("abcd") and info.shape == (4, 9)
    assert info.columns.names == ["feature", "feature_2"]
    # Linear tuning: J = W Ω⁻¹ Wᵀ at every stimulus.
    w = weights.to_numpy()
    reference = w @ np.linalg.solve(omega.to_numpy(), w.T)
    for trial in info.index:
        np.testing.assert_allclose(info.loc[trial].to_numpy().reshape(3, 3), reference,
                                   rtol=1e-5)
    assert info.loc["a", ("speed", "size")] == pytest.approx(reference[1, 2], rel=1e-5)
    sampled = model.get_fisher_information(stimuli.iloc[:2], omega=omega, analytical=False,
                                           n=4000, seed=2).to_numpy().reshape(2, 3, 3)
    scale = np.sqrt(np.outer(np.diag(reference), np.diag(reference)))
    assert (np.abs(sampled - reference) / scale).max() < 0.1
    t_info = model.get_fisher_information(stimuli, omega=omega, dof=5.0)
    np.testing.assert_allclose(t_info, info * (5 + 8) / (5 + 8 + 2), rtol=1e-9)


# ---------------------------------------------------------------- grid start of StimulusFitter
def test_stimulus_fitter_fit_grid_is_the_argmax_over_the_product_grid():
    rng = np.random.default_rng(60)
    weights = rng.normal(size=(2, 15))
    model = LinearModel(weights=weights)
    stimuli = rng.uniform(-1, 1, size=(6, 2))
    data = model.simulate(stimuli, noise=0.3, seed=61)
    data.index = pd.Index([f"t{i}" for i in range(6)], name="trial")
    omega = 0.09 * np.eye(15)
    first, second = np.linspace(-1, 1, 9), np.linspace(-1, 1, 7)
    fitter = StimulusFitter(data, model, omega)
    grid = fitter.fit_grid(first, second)
    candidates = np.array([(a, b) for a in first for b in second])
    likelihood = model.likelihood(pd.DataFrame(candidates), data, omega=omega)
    expected = candidates[likelihood.to_numpy().argmax(axis=1)]
    np.testing.assert_allclose(grid.to_numpy(), expected, atol=1e-6)
    assert grid.index.equals(data.index)
    # from the grid start, the fit reaches the closed-form maximum-likelihood stimulus
    refined = fitter.fit(init_pars=grid, learning_rate=0.05, progressbar=False)
    exact = np.linalg.lstsq(weights.T, data.to_numpy().T, rcond=None)[0].T
    np.testing.assert_allclose(refined.to_numpy(), exact, atol=2e-3)
    with pytest.raises(ValueError, match="fit_grid values: weights have 2 rows .* 1 column"):
        fitter.fit_grid(first)
    with pytest.raises(ValueError, match="init_pars: weights have 2 rows .* 3 columns"):
        fitter.fit(init_pars=np.zeros((6, 3)), progressbar=False)


def test_stimulus_fitter_fit_grid_then_fit_decodes_numerosity(numerosity):
    model, omega = numerosity["model"], numerosity["omega"]
    stimuli = np.random.default_rng(62).uniform(1, 9, 50)
    data = simulate(model, stimuli, omega, seed=63)
    fitter = StimulusFitter(data, model, omega)
    start = fitter.fit_grid(np.linspace(0, 10, 41))
    assert list(start.columns) == list(model.stimulus.dimension_labels)
    with pytest.raises(ValueError, match="one array of values per stimulus dimension: 1"):
        fitter.fit_grid(np.linspace(0, 10, 41), np.linspace(0, 10, 41))
    fitted = fitter.fit(init_pars=start, progressbar=False)
    assert np.corrcoef(fitted.iloc[:, 0], stimuli)[0, 1] > 0.9


def test_stimulus_fitter_l1_prior_shrinks_the_stimulus():
    rng = np.random.default_rng(64)
    model = LinearModel(weights=rng.normal(size=(4, 20)))
    data = model.simulate(rng.normal(size=(10, 4)), noise=1.0, seed=65)
    omega = np.eye(20)
    start = np.zeros((10, 4))
    free = StimulusFitter(data, model, omega).fit(init_pars=start, progressbar=False,
                                                  learning_rate=0.05)
    sparse = StimulusFitter(data, model, omega).fit(init_pars=start, progressbar=False,
                                                    learning_rate=0.05, l1_norm=5.0)
    assert np.abs(sparse.to_numpy()).sum() < 0.8 * np.abs(free.to_numpy()).sum()
    with pytest.raises(ValueError, match="l1_norm must be >= 0"):
        StimulusFitter(data, model, omega).fit(init_pars=start, l1_norm=-1.0)


def test_init_pseudo_wwt_sets_the_grid_of_the_overlap(numerosity):
    model = GaussianPRF(parameters=numerosity["model"].parameters)
    default = model.get_rf_overlap()
    stimulus_range = np.linspace(2, 30, 57)
    model.parameters = model.parameters.assign(baseline=0.3)
    raw = model.init_pseudoWWT(stimulus_range)
    pars = model.parameters
    rf = np.exp(-0.5 * ((stimulus_range[:, None] - pars["mu"].to_numpy()) / pars["sd"].to_numpy())
                ** 2) * pars["amplitude"].to_numpy()
    # the public braincoder's return value: raw WᵀW, baseline included unless subtracted
    np.testing.assert_allclose(raw.to_numpy(), (rf + 0.3).T @ (rf + 0.3), rtol=1e-5)
    subtracted = model.init_pseudoWWT(stimulus_range, subtract_baseline=True)
    np.testing.assert_allclose(subtracted.to_numpy(), rf.T @ rf, rtol=1e-5, atol=1e-6)
    # the overlap of the noise model: stimulus-driven, over the new grid, diagonal mean 1
    overlap = model.get_rf_overlap()
    expected = rf.T @ rf
    expected /= np.diag(expected).mean()
    np.testing.assert_allclose(overlap.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(overlap.to_numpy(), default.to_numpy(), atol=1e-3)
    # get_pseudoWWT: the raw matrix of the last init_pseudoWWT, as in the public braincoder
    np.testing.assert_allclose(model.get_pseudoWWT().to_numpy(), rf.T @ rf, rtol=1e-5,
                               atol=1e-6)
    stimuli = np.random.default_rng(70).uniform(0, 10, 30)
    data = simulate(model, stimuli, numerosity["omega"], seed=71)
    residuals = ResidualFitter(model, data, stimuli)
    np.testing.assert_allclose(residuals.WWT.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="stimulus_range must have shape"):
        model.init_pseudoWWT(np.ones((5, 2)))


def test_decoding_orientation_and_stimulus_amplitude():
    rng = np.random.default_rng(80)
    basis = pd.DataFrame({"mu": np.linspace(0, 2 * np.pi, 8, endpoint=False), "kappa": 1.0,
                          "amplitude": VON_MISES_PEAK_ONE, "baseline": 0.0})
    weights = np.eye(8) * 5.0 + rng.uniform(0, 1, (8, 8))
    model = VonMisesPRF(parameters=basis, weights=weights, model_stimulus_amplitude=True)
    omega = 0.25 * np.eye(8)
    n = 120
    truth = pd.DataFrame({"x": rng.uniform(-np.pi, np.pi, n),
                          "amplitude": np.where(np.arange(n) % 2 == 0, 1.5, 0.5)
                          + rng.normal(0, 0.1, n)})
    data = model.simulate(truth, noise=omega, seed=81)
    angles, gains = np.linspace(-np.pi, np.pi, 48, endpoint=False), np.linspace(0, 3, 31)
    grid = pd.MultiIndex.from_product([angles, gains], names=["x", "amplitude"]).to_frame(
        index=False)
    pdf = model.get_stimulus_pdf(data, grid, omega=omega,
                                 include_multidimensional_stimulus_index=True)
    assert pdf.columns.names == ["x", "amplitude"]
    renamed = model.get_stimulus_pdf(data.iloc[:2], grid.rename(columns={"x": "x (radians)"}),
                                     omega=omega, include_multidimensional_stimulus_index=True)
    assert renamed.columns.names == ["x (radians)", "amplitude"]
    np.testing.assert_allclose(pdf.sum(axis=1), 1.0, rtol=1e-9)
    marginal = pdf.T.groupby(level="amplitude").sum().T
    mean_gain = marginal.to_numpy() @ marginal.columns.to_numpy()
    assert np.corrcoef(mean_gain, truth["amplitude"])[0, 1] > 0.95
    fitter = StimulusFitter(data, model, omega)
    fitted = fitter.fit(init_pars=fitter.fit_grid(angles, gains), progressbar=False)
    assert list(fitted.columns) == ["x (radians)", "amplitude"]
    assert fitted["x (radians)"].between(-np.pi, np.pi).all()
    assert np.corrcoef(fitted["amplitude"], truth["amplitude"])[0, 1] > 0.95
    error = np.angle(np.exp(1j * (fitted["x (radians)"] - truth["x"])))
    assert np.median(np.abs(error)) < 0.25
    with pytest.raises(ValueError, match="stimulus_range is required"):
        model.get_stimulus_pdf(data, omega=omega)


def test_stimulus_fitter_mask_fits_only_the_selected_entries(retinotopy):
    model, grid, omega = retinotopy["model"], retinotopy["grid"], retinotopy["omega"]
    rng = np.random.default_rng(90)
    draw = make_bar_stimulus_fn(grid, edge_width=0.2)
    bars = np.column_stack([rng.uniform(-3, 3, 6), rng.uniform(1, 2, 6)])
    images = draw(tf.constant(bars, tf.float32)).numpy()
    data = model.simulate(images, noise=0.05, seed=91)
    shown = images > 0.1
    fitter = StimulusFitter(data, model, omega)
    decoded = fitter.fit(mask=shown, max_n_iterations=300, learning_rate=0.05,
                         progressbar=False).to_numpy()
    assert (decoded[~shown] == 0).all()  # blank start, only the shown pixels fitted
    assert (fitter.log_posterior > fitter.init_log_posterior).all()
    assert decoded[shown].mean() > 0.5
    # a mask over columns: keep the stimulus amplitude at its start, fit the orientation
    basis = pd.DataFrame({"mu": np.linspace(0, 2 * np.pi, 8, endpoint=False), "kappa": 1.0,
                          "amplitude": VON_MISES_PEAK_ONE, "baseline": 0.0})
    tuned = VonMisesPRF(parameters=basis, weights=np.eye(8) * 3,
                        model_stimulus_amplitude=True)
    truth = pd.DataFrame({"x": rng.uniform(-np.pi, np.pi, 20), "amplitude": 1.0})
    responses = tuned.simulate(truth, noise=0.1, seed=92)
    start = truth.assign(x=0.0, amplitude=1.3)
    fitted = StimulusFitter(responses, tuned, 0.01 * np.eye(8)).fit(
        init_pars=start, mask=[True, False], progressbar=False, learning_rate=0.05)
    np.testing.assert_allclose(fitted["amplitude"], 1.3, rtol=1e-6)
    assert not np.allclose(fitted["x (radians)"], 0.0)
    with pytest.raises(ValueError, match="mask must have shape"):
        StimulusFitter(responses, tuned, 0.01 * np.eye(8)).fit(init_pars=start,
                                                              mask=[True, False, True])
    with pytest.raises(ValueError, match="mask selects no entries"):
        StimulusFitter(responses, tuned, 0.01 * np.eye(8)).fit(init_pars=start,
                                                              mask=[False, False])


def test_expected_uncertainty_matches_fisher_information_and_shows_bias():
    n = 21
    model = GaussianPRF(parameters=pd.DataFrame({"mu": np.linspace(0, 10, n), "sd": 1.5,
                                                 "amplitude": 1.0, "baseline": 0.0}))
    omega = 0.02 * np.eye(n)
    stimuli = np.array([3.0, 5.0, 7.0])
    summary = model.get_expected_uncertainty(stimuli, omega=omega, n_simulations=400,
                                             stimulus_range=np.linspace(-2, 12, 281))
    assert list(summary.columns) == ["mean_E", "var_E", "mean_error", "mean_abs_error",
                                     "n_sims"]
    np.testing.assert_allclose(summary.index, stimuli)
    # high SNR, away from the edges: unbiased, variance at the Cramér–Rao bound
    bound = 1.0 / model.get_fisher_information(stimuli, omega=omega).to_numpy()
    np.testing.assert_allclose(summary["var_E"], bound, rtol=0.25)
    assert (summary["mean_error"].abs() < 0.05).all()
    # low SNR, tuning clustered at 5: estimates regress towards the cluster
    clustered = GaussianPRF(parameters=pd.DataFrame({"mu": np.linspace(4, 6, 8), "sd": 2.0,
                                                     "amplitude": 1.0, "baseline": 0.0}))
    noisy = clustered.get_expected_uncertainty([2.0, 8.0], omega=0.3 * np.eye(8),
                                               n_simulations=300,
                                               stimulus_range=np.linspace(0, 10, 101))
    assert noisy.loc[2.0, "mean_error"] > 0.3 and noisy.loc[8.0, "mean_error"] < -0.3


def test_expected_uncertainty_of_a_circular_stimulus_wraps_errors(orientation):
    model, omega = orientation["model"], orientation["omega"]
    edge = np.array([-np.pi + 0.05, 0.0, np.pi - 0.05])
    summary = model.get_expected_uncertainty(edge, omega=omega, n_simulations=200,
                                             stimulus_range=CIRCLE)
    assert (summary["mean_abs_error"] < 0.3).all()
    assert (summary["mean_error"].abs() < 0.1).all()
    with pytest.raises(ValueError, match="n_simulations must be >= 2"):
        model.get_expected_uncertainty(edge, omega=omega, n_simulations=1)
