"""Voxel selection by a two-component mixture of logit(R²)."""

import numpy as np
import pytest
from scipy import special, stats

from braincoder.utils import (
    fit_r2_mixture,
    r2_fdr_threshold,
    r2_noise_tail_threshold,
    r2_p_signal_threshold,
)
from braincoder.utils.stats import fit_r2_mixture as from_stats

TRUTH = {"noise_mu": -4.0, "noise_sigma": 0.9, "signal_mu": -0.8, "signal_sigma": 0.7}


def simulate(n_noise=20000, n_signal=4000, seed=0):
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(TRUTH["noise_mu"], TRUTH["noise_sigma"], n_noise),
                        rng.normal(TRUTH["signal_mu"], TRUTH["signal_sigma"], n_signal)])
    is_signal = np.r_[np.zeros(n_noise, bool), np.ones(n_signal, bool)]
    return special.expit(z), is_signal


@pytest.fixture(scope="module")
def mixture():
    r2, is_signal = simulate()
    return r2, is_signal, fit_r2_mixture(r2)


def test_mixture_recovers_the_components(mixture):
    _, _, fit = mixture
    assert fit["converged"] and fit["n_used"] == 24000 and fit["n_excluded"] == 0
    for key, value in TRUTH.items():
        assert fit[key] == pytest.approx(value, abs=0.05), key
    assert fit["signal_weight"] == pytest.approx(4000 / 24000, abs=0.01)
    # component means on the R² scale against a Monte Carlo reference
    draws = np.random.default_rng(1).normal(size=200000)
    expected = special.expit(TRUTH["signal_mu"] + TRUTH["signal_sigma"] * draws).mean()
    assert fit["signal_mean_r2"] == pytest.approx(expected, abs=0.005)
    assert from_stats is fit_r2_mixture


def test_thresholds_do_what_they_promise(mixture):
    r2, is_signal, fit = mixture
    threshold = r2_fdr_threshold(fit, alpha=0.05)
    kept = r2 >= threshold
    assert (~is_signal[kept]).mean() == pytest.approx(0.05, abs=0.015)
    # where P(signal | R²) crosses 0.9, the mixture's posterior equals 0.9
    cut = special.logit(r2_p_signal_threshold(fit, p=0.9))
    noise = fit["noise_weight"] * stats.norm.pdf(cut, fit["noise_mu"], fit["noise_sigma"])
    signal = fit["signal_weight"] * stats.norm.pdf(cut, fit["signal_mu"], fit["signal_sigma"])
    assert signal / (noise + signal) == pytest.approx(0.9, abs=0.002)
    tail = r2_noise_tail_threshold(fit, k=2.0)
    assert (r2[~is_signal] > tail).mean() == pytest.approx(stats.norm.sf(2.0), abs=0.004)
    assert r2_fdr_threshold(fit, 0.01) > r2_fdr_threshold(fit, 0.2)


def test_values_outside_the_logit_range_are_counted_and_bad_arguments_raise(mixture):
    r2, _, _ = mixture
    with_edges = np.concatenate([r2[:500], [0.0, -0.2, 1.0, np.nan]])
    fit = fit_r2_mixture(with_edges)
    assert fit["n_used"] == 500 and fit["n_excluded"] == 4
    overlapping = fit_r2_mixture(special.expit(np.random.default_rng(2).normal(-3, 1, 3000)))
    assert np.isinf(r2_fdr_threshold(overlapping, alpha=1e-6))
    with pytest.raises(ValueError, match="at least 10"):
        fit_r2_mixture([0.1, 0.2, np.nan])
    with pytest.raises(ValueError, match="alpha must be within"):
        r2_fdr_threshold(fit, alpha=0.0)
    with pytest.raises(ValueError, match="p must be within"):
        r2_p_signal_threshold(fit, p=1.0)
