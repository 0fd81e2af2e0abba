"""Voxel selection: a two-component mixture of R² values and thresholds derived from it.

Most voxels of a whole-brain fit carry no signal. On the logit scale their R² values form
one Gaussian (noise) and the tuned voxels a second one further right; fitting both
(expectation–maximisation) turns "which R² is high enough?" into a question with an
answer: the R² above which a voxel is probably signal, the R² at which the share of noise
voxels among those kept (false-discovery rate) falls below ``alpha``, or a quantile of the
noise component.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = [
    "fit_r2_mixture",
    "r2_p_signal_threshold",
    "r2_fdr_threshold",
    "r2_noise_tail_threshold",
]

#: R² values used by the mixture lie strictly inside this range (the logit is finite).
R2_RANGE = (0.0, 0.99)


def fit_r2_mixture(r2, max_iterations=1000, tol=1e-10):
    """Fit a two-component Gaussian mixture to ``logit(R²)``: noise and signal voxels.

    Only finite values with ``0 < R² < 0.99`` enter the fit (the logit of 0 or 1 is
    infinite); how many were left out is reported, not hidden.

    Parameters
    ----------
    r2 : array-like or Series
        R² per voxel (e.g. within-sample R² of a whole-brain fit).
    max_iterations : int, default 1000
        Expectation–maximisation iterations at most.
    tol : float, default 1e-10
        Stop when the mean log-likelihood improves by less than this.

    Returns
    -------
    dict
        ``noise_mu``, ``noise_sigma``, ``noise_weight`` and ``signal_mu``,
        ``signal_sigma``, ``signal_weight`` (logit scale; the signal component is the one
        with the larger mean); ``noise_mean_r2`` and ``signal_mean_r2`` (each component's
        mean on the R² scale); ``log_likelihood`` (mean per value), ``n_iterations``,
        ``converged``, ``n_used`` and ``n_excluded``.

    Raises
    ------
    ValueError
        With fewer than 10 usable values.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> r2 = expit(np.concatenate([rng.normal(-5, 0.8, 900), rng.normal(-1, 0.6, 100)]))
    >>> fit = fit_r2_mixture(r2)
    >>> round(fit["signal_weight"], 1), round(fit["noise_mu"])
    (0.1, -5)
    """
    values = np.asarray(r2.to_numpy() if isinstance(r2, pd.Series) else r2, dtype=np.float64)
    values = values.ravel()
    usable = np.isfinite(values) & (values > R2_RANGE[0]) & (values < R2_RANGE[1])
    z = special.logit(values[usable])
    if z.size < 10:
        raise ValueError(f"fit_r2_mixture needs at least 10 R² values in (0, 0.99), got "
                         f"{z.size} of {values.size}")
    low, high = np.quantile(z, [0.25, 0.9])
    mu = np.array([low, high])
    sigma = np.full(2, max(z.std(), 1e-3) / 2)
    weight = np.array([0.5, 0.5])
    previous = -np.inf
    converged = False
    n_iterations = 0
    while n_iterations < int(max_iterations):
        n_iterations += 1
        log_density = stats.norm.logpdf(z[:, None], mu, sigma) + np.log(weight)
        total = special.logsumexp(log_density, axis=1, keepdims=True)
        responsibility = np.exp(log_density - total)
        counts = responsibility.sum(0)
        weight = counts / z.size
        mu = (responsibility * z[:, None]).sum(0) / counts
        sigma = np.sqrt((responsibility * (z[:, None] - mu) ** 2).sum(0) / counts)
        sigma = np.maximum(sigma, 1e-6)
        log_likelihood = float(total.mean())
        if log_likelihood - previous < tol:
            converged = True
            break
        previous = log_likelihood
    noise, signal = np.argsort(mu)
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(41)
    node_weights = node_weights / node_weights.sum()

    def mean_r2(k):
        return float(special.expit(mu[k] + sigma[k] * nodes) @ node_weights)

    return {
        "noise_mu": float(mu[noise]), "noise_sigma": float(sigma[noise]),
        "noise_weight": float(weight[noise]),
        "signal_mu": float(mu[signal]), "signal_sigma": float(sigma[signal]),
        "signal_weight": float(weight[signal]),
        "noise_mean_r2": mean_r2(noise), "signal_mean_r2": mean_r2(signal),
        "log_likelihood": log_likelihood, "n_iterations": n_iterations, "converged": converged,
        "n_used": int(z.size), "n_excluded": int(values.size - z.size),
    }


def _components(fit):
    return (stats.norm(fit["noise_mu"], fit["noise_sigma"]),
            stats.norm(fit["signal_mu"], fit["signal_sigma"]))


def _search_grid(fit):
    """Logit-scale candidates from the noise mean to far into the signal tail."""
    top = max(fit["signal_mu"] + 8 * fit["signal_sigma"], fit["noise_mu"] + 8 * fit["noise_sigma"])
    return np.linspace(fit["noise_mu"], top, 20001)


def _first_above(fit, method, level):
    """Return the R² where the signal-to-noise log odds first reach ``level``.

    ``method`` is ``logpdf`` (posterior odds at the threshold) or ``logsf`` (odds of the
    tails above it), each component weighted; ``inf`` if the odds never reach ``level``.
    """
    noise, signal = _components(fit)
    z = _search_grid(fit)
    difference = (getattr(signal, method)(z) + np.log(fit["signal_weight"])
                  - getattr(noise, method)(z) - np.log(fit["noise_weight"]))
    reached = np.flatnonzero(difference >= level)
    return float(special.expit(z[reached[0]])) if reached.size else float("inf")


def r2_p_signal_threshold(fit, p=0.5):
    """Smallest R² (above the noise mean) at which P(signal | R²) reaches ``p``.

    Parameters
    ----------
    fit : dict
        Output of :func:`fit_r2_mixture`.
    p : float, default 0.5
        Posterior probability of the signal component, in (0, 1).

    Returns
    -------
    float
        The R² threshold, or ``inf`` when the posterior never reaches ``p`` (the
        components overlap too much).
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be within (0, 1), got {p}")
    return _first_above(fit, "logpdf", special.logit(p))


def r2_fdr_threshold(fit, alpha=0.05):
    """Smallest R² at which the expected share of noise voxels among those kept is ≤ alpha.

    The false-discovery rate of the threshold ``t`` (logit scale) is
    ``w_n S_n(t) / (w_n S_n(t) + w_s S_s(t))`` with ``S`` each component's survival
    function and ``w`` its weight.

    Parameters
    ----------
    fit : dict
        The mixture, as returned by :func:`fit_r2_mixture`.
    alpha : float, default 0.05
        Tolerated false-discovery rate, in (0, 1).

    Returns
    -------
    float
        ``inf`` when no threshold keeps the rate at or below ``alpha``; else the R²
        threshold.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    return _first_above(fit, "logsf", special.logit(1 - alpha))


def r2_noise_tail_threshold(fit, k=2.0):
    """R² at ``k`` standard deviations above the noise component's mean (logit scale).

    Parameters
    ----------
    fit : dict
        Output of :func:`fit_r2_mixture`; only its noise component (``noise_mu``,
        ``noise_sigma``) is used.
    k : float, default 2.0
        Standard deviations; 2 keeps R² values that about 2.3% of noise voxels exceed.

    Returns
    -------
    float
        The R² threshold.
    """
    return float(special.expit(fit["noise_mu"] + k * fit["noise_sigma"]))
