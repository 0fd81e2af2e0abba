"""WeightFitter and ridge: closed form against numpy/sklearn, recovery, CV alpha selection."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    GaussianPRF,
    LinearModel,
    LinearModelWithBaseline,
    LinearModelWithBaselineHRF,
    VonMisesPRF,
)
from braincoder.optimize import WeightFitter, fit_ridge

RNG = np.random.default_rng(7)


def test_ridge_equals_numpy_closed_form():
    X = RNG.normal(size=(80, 6))
    Y = RNG.normal(size=(80, 5))
    for alpha in (0.0, 0.5, 10.0):
        solution = fit_ridge(X, Y, alphas=alpha, fit_intercept=False)
        expected = np.linalg.solve(X.T @ X + alpha * np.eye(6), X.T @ Y)
        np.testing.assert_allclose(solution.weights, expected, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(solution.predict(X), X @ expected, rtol=1e-8, atol=1e-10)


def test_ridge_with_intercept_equals_sklearn():
    X = RNG.normal(size=(60, 4))
    Y = X @ RNG.normal(size=(4, 3)) + 5.0 + RNG.normal(size=(60, 3))
    solution = fit_ridge(X, Y, alphas=3.0, fit_intercept=True)
    reference = Ridge(alpha=3.0, fit_intercept=True).fit(X, Y)
    np.testing.assert_allclose(solution.weights, reference.coef_.T, rtol=1e-8)
    np.testing.assert_allclose(solution.intercept, reference.intercept_, rtol=1e-8)


def test_cv_picks_larger_alpha_for_noisier_voxels():
    X = RNG.normal(size=(120, 20))
    W = RNG.normal(size=(20, 1)) * 0.3
    signal = X @ W
    noise_levels = np.repeat([0.05, 5.0], 10)
    Y = signal + RNG.normal(size=(120, 20)) * noise_levels
    alphas = np.logspace(-3, 4, 15)
    solution = fit_ridge(X, Y, alphas=alphas, cv=5, fit_intercept=False)
    assert np.median(solution.alphas[10:]) > 10 * np.median(solution.alphas[:10])
    assert solution.cv_scores.shape == (15, 20)
    # Every voxel's chosen alpha has the best cross-validated score.
    np.testing.assert_allclose(solution.cv_r2, solution.cv_scores.max(axis=0))


def test_rank_deficient_least_squares_is_minimum_norm():
    X = RNG.normal(size=(30, 3))
    X = np.column_stack([X, X[:, 0]])
    Y = RNG.normal(size=(30, 2))
    solution = fit_ridge(X, Y, fit_intercept=False)
    np.testing.assert_allclose(solution.weights, np.linalg.pinv(X) @ Y, atol=1e-8)


def test_weight_fitter_recovers_weights_of_a_basis_model():
    x = pd.DataFrame({"orientation": RNG.uniform(-np.pi, np.pi, 300)},
                     index=pd.Index(range(300), name="frame"))
    basis = pd.DataFrame({"mu": np.linspace(-np.pi, np.pi, 8, endpoint=False), "kappa": 2.0,
                          "amplitude": 1.0, "baseline": 0.0},
                         index=pd.Index([f"channel{i}" for i in range(8)], name="channel"))
    weights = pd.DataFrame(RNG.normal(size=(8, 12)), index=basis.index,
                           columns=pd.Index([f"vox{i}" for i in range(12)], name="voxel"))
    model = VonMisesPRF()
    data = model.simulate(x, basis, weights, noise=0.01, seed=0)
    fitter = WeightFitter(model, basis, data, x)
    estimated = fitter.fit()
    assert estimated.index.equals(basis.index) and estimated.columns.equals(weights.columns)
    assert np.corrcoef(estimated.to_numpy().ravel(), weights.to_numpy().ravel())[0, 1] > 0.99
    assert (fitter.r2 > 0.99).all() and fitter.r2.index.equals(weights.columns)
    assert fitter.predictions.index.equals(x.index)


def test_weight_fitter_cv_exposes_alphas_and_cv_r2():
    x = RNG.uniform(0, 10, 200)
    basis = pd.DataFrame({"mu": np.linspace(0, 10, 6), "sd": 2.0, "amplitude": 1.0,
                          "baseline": 0.0})
    weights = RNG.normal(size=(6, 8))
    model = GaussianPRF()
    noise = np.repeat([0.01, 3.0], 4)
    data = model.simulate(x, basis, weights, noise=noise, seed=1)
    fitter = WeightFitter(model, basis, data, x)
    fitter.fit(alpha=np.logspace(-3, 3, 13), cv=4)
    assert fitter.alphas.name == "alpha" and fitter.cv_r2.name == "cv_r2"
    assert fitter.alphas.iloc[4:].median() > fitter.alphas.iloc[:4].median()
    assert (fitter.cv_r2.iloc[:4] > 0.99).all()


def test_linear_models_and_hrf_design():
    paradigm = pd.DataFrame(RNG.normal(size=(150, 3)), columns=["a", "b", "c"])
    weights = pd.DataFrame(RNG.normal(size=(3, 4)), index=paradigm.columns)
    data = LinearModel().predict(paradigm, weights=weights)
    estimated = WeightFitter(LinearModel(), None, data, paradigm).fit()
    assert list(estimated.index) == ["a", "b", "c"]
    np.testing.assert_allclose(estimated.to_numpy(), weights.to_numpy(), atol=1e-4)

    baseline = pd.DataFrame({"baseline": RNG.normal(size=4)})
    model = LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=2.0))
    data = model.predict(paradigm, baseline, weights)
    estimated = WeightFitter(model, baseline, data, paradigm).fit()
    np.testing.assert_allclose(estimated.to_numpy(), weights.to_numpy(), atol=1e-3)
    data = LinearModelWithBaseline().predict(paradigm, baseline, weights)
    estimated = WeightFitter(LinearModelWithBaseline(), baseline, data, paradigm).fit(alpha=0.0)
    np.testing.assert_allclose(estimated.to_numpy(), weights.to_numpy(), atol=1e-4)


def test_constant_voxel_gives_nan_r2_with_warning():
    paradigm = RNG.normal(size=(50, 2))
    data = pd.DataFrame({"ok": paradigm @ [1.0, 2.0], "flat": 3.0})
    fitter = WeightFitter(LinearModel(), None, data, paradigm)
    with pytest.warns(RuntimeWarning, match=r"zero variance \('flat'\)"):
        fitter.fit()
    assert np.isnan(fitter.r2["flat"]) and fitter.r2["ok"] > 0.999


@pytest.mark.parametrize("kwargs, match", [
    ({"alphas": -1.0}, "alphas"),
    ({"alphas": [0.1, 1.0], "cv": 1}, "cv must be between"),
])
def test_ridge_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_ridge(np.ones((10, 2)), np.ones((10, 1)), **kwargs)
    with pytest.raises(ValueError, match="share n_samples"):
        fit_ridge(np.ones((10, 2)), np.ones((9, 1)))
    with pytest.raises(ValueError, match="finite"):
        fit_ridge(np.full((10, 2), np.nan), np.ones((10, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_ridge(np.eye(10)[:, :2], np.ones((10, 1)))
