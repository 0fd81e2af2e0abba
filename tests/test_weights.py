"""WeightFitter and ridge: closed form against numpy/sklearn, recovery, CV alpha selection."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from braincoder.hrf import CustomHRFModel, SPMHRFModel
from braincoder.models import (
    GaussianPRF,
    GaussianPRFWithHRF,
    LinearModel,
    LinearModelWithBaseline,
    LinearModelWithBaselineHRF,
    VonMisesPRF,
)
from braincoder.optimize import WeightFitter, fit_ridge


def closed_form(X, Y, alpha):
    """Ridge without intercept: (XᵀX + αI)⁻¹XᵀY."""
    return np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ Y)


# ---------------------------------------------------------------------------- fit_ridge
@pytest.mark.parametrize("alpha", [0.0, 0.5, 10.0, 1e4])
def test_ridge_equals_numpy_closed_form(alpha, rng):
    X = rng.normal(size=(80, 6))
    Y = rng.normal(size=(80, 5))
    solution = fit_ridge(X, Y, alphas=alpha, fit_intercept=False)
    expected = closed_form(X, Y, alpha)
    np.testing.assert_allclose(solution.weights, expected, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(solution.predict(X), X @ expected, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(solution.intercept, np.zeros(5))
    np.testing.assert_array_equal(solution.alphas, np.full(5, alpha))
    assert np.isnan(solution.cv_r2).all() and solution.cv_scores is None


@pytest.mark.parametrize("alpha", [0.01, 3.0, 300.0])
def test_ridge_with_intercept_equals_sklearn(alpha, rng):
    X = rng.normal(size=(60, 4)) + 2.0
    Y = X @ rng.normal(size=(4, 3)) + 5.0 + rng.normal(size=(60, 3))
    solution = fit_ridge(X, Y, alphas=alpha, fit_intercept=True)
    reference = Ridge(alpha=alpha, fit_intercept=True).fit(X, Y)
    np.testing.assert_allclose(solution.weights, reference.coef_.T, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(solution.intercept, reference.intercept_, rtol=1e-8)
    np.testing.assert_allclose(solution.predict(X), reference.predict(X), rtol=1e-8)


def test_ridge_cv_scores_equal_a_manual_cross_validation(rng):
    X = rng.normal(size=(40, 3))
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(40, 2))
    alphas = [0.1, 10.0, 1000.0]
    solution = fit_ridge(X, Y, alphas=alphas, cv=4, fit_intercept=True)
    bounds = [0, 10, 20, 30, 40]  # contiguous folds
    for i, alpha in enumerate(alphas):
        sse = np.zeros(2)
        sst = np.zeros(2)
        for k in range(4):
            test = np.arange(bounds[k], bounds[k + 1])
            train = np.setdiff1d(np.arange(40), test)
            fold = Ridge(alpha=alpha).fit(X[train], Y[train])
            sse += ((Y[test] - fold.predict(X[test])) ** 2).sum(0)
            sst += ((Y[test] - Y[test].mean(0)) ** 2).sum(0)
        np.testing.assert_allclose(solution.cv_scores[i], 1 - sse / sst, rtol=1e-8)
    best = np.argmax(solution.cv_scores, axis=0)
    np.testing.assert_array_equal(solution.alphas, np.asarray(alphas)[best])
    # The final weights are refitted on all samples with each target's alpha.
    for target in range(2):
        reference = Ridge(alpha=solution.alphas[target]).fit(X, Y[:, target])
        np.testing.assert_allclose(solution.weights[:, target], reference.coef_, rtol=1e-8)


def test_cv_picks_larger_alpha_for_noisier_voxels(rng):
    X = rng.normal(size=(120, 20))
    signal = X @ (rng.normal(size=(20, 1)) * 0.3)  # the same signal in every voxel
    noise_levels = np.repeat([0.05, 5.0], 10)
    Y = signal + rng.normal(size=(120, 20)) * noise_levels
    solution = fit_ridge(X, Y, alphas=np.logspace(-3, 4, 15), cv=5, fit_intercept=False)
    assert np.median(solution.alphas[10:]) > 10 * np.median(solution.alphas[:10])
    assert solution.cv_scores.shape == (15, 20)
    np.testing.assert_allclose(solution.cv_r2, solution.cv_scores.max(axis=0))
    assert (solution.cv_r2[:10] > 0.95).all() and (solution.cv_r2[10:] < 0.5).all()


def test_rank_deficient_least_squares_is_minimum_norm(rng):
    X = rng.normal(size=(30, 3))
    X = np.column_stack([X, X[:, 0]])
    Y = rng.normal(size=(30, 2))
    solution = fit_ridge(X, Y, fit_intercept=False)
    np.testing.assert_allclose(solution.weights, np.linalg.pinv(X) @ Y, atol=1e-8)


@pytest.mark.parametrize("kwargs, match", [
    ({"alphas": -1.0}, "alphas must be one or more values >= 0"),
    ({"alphas": []}, "alphas must be one or more values >= 0"),
    ({"alphas": [0.1, 1.0], "cv": 1}, "cv must be between 2 and n_samples"),
    ({"alphas": [0.1, 1.0], "cv": 11}, "cv must be between 2 and n_samples"),
    ({"alphas": [0.1, 1.0], "cv": []}, "cv gave no folds"),
])
def test_ridge_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_ridge(np.ones((10, 2)), np.ones((10, 1)), **kwargs)


def test_ridge_bad_arrays():
    with pytest.raises(ValueError, match="must share n_samples"):
        fit_ridge(np.ones((10, 2)), np.ones((9, 1)))
    with pytest.raises(ValueError, match="finite"):
        fit_ridge(np.full((10, 2), np.nan), np.ones((10, 1)))
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 2\)"):
        fit_ridge(np.eye(10)[:, :2], np.ones((10, 1))).predict(np.ones((3, 3)))
    with warnings.catch_warnings():  # a constant target is not an error
        warnings.simplefilter("error")
        fit_ridge(np.eye(10)[:, :2], np.ones((10, 1)))


# ---------------------------------------------------------------------------- WeightFitter
def channel_basis(n=8):
    return pd.DataFrame({"mu": np.linspace(-np.pi, np.pi, n, endpoint=False), "kappa": 2.0,
                         "amplitude": 1.0, "baseline": 0.0},
                        index=pd.Index([f"channel{i}" for i in range(n)], name="channel"))


def test_weight_fitter_recovers_simulated_weights(rng):
    x = pd.DataFrame({"orientation": rng.uniform(-np.pi, np.pi, 200)},
                     index=pd.Index(np.arange(200) * 2, name="frame"))
    basis = channel_basis()
    weights = pd.DataFrame(rng.normal(size=(8, 12)), index=basis.index,
                           columns=pd.Index([f"V1_{i:04d}" for i in range(12)], name="voxel"))
    model = VonMisesPRF()
    data = model.simulate(x, basis, weights, noise=0.01, seed=0)
    fitter = WeightFitter(model, basis, data, x)
    estimated = fitter.fit()
    assert estimated is fitter.weights
    assert estimated.index.equals(basis.index) and estimated.columns.equals(weights.columns)
    assert np.corrcoef(estimated.to_numpy().ravel(), weights.to_numpy().ravel())[0, 1] > 0.99
    assert fitter.r2.index.equals(weights.columns) and (fitter.r2 > 0.99).all()
    assert fitter.predictions.index.equals(x.index)
    assert fitter.predictions.columns.equals(weights.columns)


def test_weight_fitter_equals_closed_form_on_the_basis_design(rng):
    x = rng.uniform(0, 10, 80)
    basis = pd.DataFrame({"mu": np.linspace(0, 10, 5), "sd": 2.0, "amplitude": 1.0,
                          "baseline": 0.0})
    model = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=2.0))
    data = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    design = model.predict(x, basis).to_numpy(np.float64)
    for alpha in (0.0, 2.0):
        estimated = WeightFitter(model, basis, data, x).fit(alpha=alpha)
        np.testing.assert_allclose(estimated.to_numpy(), closed_form(design, data.to_numpy(),
                                                                     alpha), rtol=1e-6,
                                   atol=1e-8)


def test_weight_fitter_cv_alphas_and_cv_r2_are_series_by_voxel(rng):
    x = rng.uniform(-np.pi, np.pi, 150)
    basis = channel_basis(6)
    true = rng.normal(size=(6, 1))
    weights = np.repeat(true, 8, axis=1)  # the same signal in every voxel
    voxels = pd.Index([f"quiet{i}" for i in range(4)] + [f"noisy{i}" for i in range(4)],
                      name="voxel")
    noise = np.repeat([0.02, 4.0], 4)
    model = VonMisesPRF()
    data = model.simulate(x, basis, pd.DataFrame(weights, index=basis.index, columns=voxels),
                          noise=noise, seed=1)
    fitter = WeightFitter(model, basis, data, x)
    fitter.fit(alpha=np.logspace(-3, 4, 15), cv=5)
    for series, name in ((fitter.alphas, "alpha"), (fitter.cv_r2, "cv_r2"), (fitter.r2, "r2")):
        assert isinstance(series, pd.Series) and series.name == name
        assert series.index.equals(voxels)
    quiet, noisy = fitter.alphas.iloc[:4], fitter.alphas.iloc[4:]
    assert noisy.min() > quiet.max()
    assert (fitter.cv_r2.iloc[:4] > 0.99).all() and (fitter.cv_r2.iloc[4:] < 0.5).all()
    recovered = fitter.weights.iloc[:, :4].to_numpy().ravel()
    assert np.corrcoef(recovered, np.repeat(true, 4, axis=1).ravel())[0, 1] > 0.99
    # Without CV: one alpha for every voxel, cv_r2 NaN.
    fitter.fit(alpha=1.0)
    assert (fitter.alphas == 1.0).all() and fitter.cv_r2.isna().all()


def test_linear_models_with_baseline_and_hrf(rng):
    paradigm = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    voxels = pd.Index(["v1", "v2", "v3", "v4"], name="voxel")
    weights = pd.DataFrame(rng.normal(size=(3, 4)), index=paradigm.columns, columns=voxels)
    data = LinearModel().predict(paradigm, weights=weights)
    estimated = WeightFitter(LinearModel(), None, data, paradigm).fit()
    assert estimated.index.equals(paradigm.columns) and estimated.columns.equals(voxels)
    np.testing.assert_allclose(estimated.to_numpy(), weights.to_numpy(), atol=1e-4)

    baseline = pd.DataFrame({"baseline": rng.normal(size=4) * 10}, index=voxels)
    for model in (LinearModelWithBaseline(),
                  LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=2.0))):
        data = model.predict(paradigm, baseline, weights)
        fitter = WeightFitter(model, baseline, data, paradigm)
        np.testing.assert_allclose(fitter.fit().to_numpy(), weights.to_numpy(), atol=1e-4)
        assert (fitter.r2 > 0.9999).all()


def test_weight_fitter_uses_the_models_stored_arguments(rng):
    x = np.linspace(0, 10, 60)
    basis = pd.DataFrame({"mu": [2.0, 5.0, 8.0], "sd": 1.5, "amplitude": 1.0, "baseline": 0.0})
    weights = rng.normal(size=(3, 4))
    # Weights stored on the model must not leak into the basis design.
    model = GaussianPRF(paradigm=x, parameters=basis, weights=weights)
    data = model.simulate(noise=0.001, seed=0)
    estimated = WeightFitter(model, None, data, None).fit()
    np.testing.assert_allclose(estimated.to_numpy(), weights, atol=0.01)


def test_array_paradigm_with_labelled_data(rng):
    paradigm = rng.normal(size=(40, 2))
    data = pd.DataFrame(paradigm @ [[1.0], [-2.0]], columns=["v"],
                        index=pd.Index(np.arange(40) + 1000, name="frame"))
    fitter = WeightFitter(LinearModel(), None, data, paradigm)
    np.testing.assert_allclose(fitter.fit()["v"].to_numpy(), [1.0, -2.0], atol=1e-6)
    assert fitter.r2.index.equals(data.columns)


def test_constant_voxel_gives_nan_r2_with_warning(rng):
    paradigm = rng.normal(size=(50, 2))
    data = pd.DataFrame({"ok": paradigm @ [1.0, 2.0], "flat": 3.0})
    fitter = WeightFitter(LinearModel(), None, data, paradigm)
    with pytest.warns(RuntimeWarning, match=r"1 voxel with zero variance \('flat'\)"):
        fitter.fit(alpha=[0.1, 1.0], cv=5)
    assert np.isnan(fitter.r2["flat"]) and np.isnan(fitter.cv_r2["flat"])
    assert fitter.r2["ok"] > 0.999


@pytest.mark.parametrize("make, match", [
    (lambda: WeightFitter(LinearModel(), None, np.ones((10, 2)), np.ones((9, 2))),
     "data has 10 time points but paradigm has 9"),
    (lambda: WeightFitter(LinearModel(), None, np.array([[1.0], [np.nan]]), np.ones((2, 1))),
     r"data: column 0 has 1 non-finite value \(first at time 1\)"),
    (lambda: WeightFitter(LinearModel(), None,
                          pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index([10, 11], name="t")),
                          pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([10, 12], name="t"))),
     "data and paradigm have different time indices: at position 1 data has 11"),
    (lambda: WeightFitter(GaussianPRF(), None, np.ones((3, 1)), np.ones((3, 1))),
     "no parameters given"),
    (lambda: WeightFitter(LinearModelWithBaseline(), pd.DataFrame({"baseline": [0.0]}),
                          np.ones((3, 2)), np.ones((3, 1))).fit(),
     "parameters have 1 voxel baselines but data has 2 voxels"),
    (lambda: WeightFitter(LinearModelWithBaselineHRF(
        hrf_model=SPMHRFModel(tr=1.0, unique_hrfs=True)),
        pd.DataFrame({"baseline": [0.0], "hrf_delay": 6.0, "hrf_dispersion": 1.0}),
        np.ones((3, 1)), np.ones((3, 1))).fit(), "per-voxel HRFs"),
    (lambda: WeightFitter(LinearModelWithBaselineHRF(hrf_model=CustomHRFModel(np.ones((3, 2)))),
                          pd.DataFrame({"baseline": [0.0, 0.0]}), np.ones((4, 2)),
                          np.ones((4, 1))).fit(), "per-voxel HRFs"),
])
def test_weight_fitter_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
