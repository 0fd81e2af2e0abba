"""ResidualFitter: the noise model (residual covariance Ω and Student-t dof) for decoding."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

from ..models.decoding import match_voxels
from ..utils.distributions import (
    check_covariance,
    cholesky_log_det,
    mahalanobis,
    mvn_logpdf_from_mahalanobis,
    mvt_logpdf_from_mahalanobis,
)
from ..utils.formatting import format_data, series_by_voxel
from ..utils.math import softplus_inverse
from ..utils.validation import check_choice, check_same_index
from ._loop import adam_minimize

__all__ = ["ResidualFitter", "make_omega"]

logger = logging.getLogger(__name__)


def make_omega(tau, rho, sigma2, WWT, alpha=None, beta=None, D=None):  # noqa: N803
    """Residual covariance of the noise model (numpy).

    .. math::

        \\Omega = \\rho\\, K \\circ \\tau\\tau^\\top + (1 - \\rho)\\,\\mathrm{diag}(\\tau^2)
        + \\sigma^2 W W^\\top

    with :math:`K = 1` or, given distances ``D``, :math:`K = \\alpha e^{-\\beta D} + 1 -
    \\alpha`.

    Parameters
    ----------
    tau : array-like, shape (n_voxels,)
        Per-voxel noise standard deviations (> 0).
    rho : float
        Correlation shared by all voxel pairs, within [0, 1).
    sigma2 : float
        Variance of the stimulus-space noise component (>= 0).
    WWT : array-like, shape (n_voxels, n_voxels)
        Overlap matrix (:meth:`~braincoder.models.decoding.DecodingMixin.get_rf_overlap`).
    alpha, beta : float, optional
        Weight and decay rate of the distance-dependent correlation (with ``D``).
    D : array-like, shape (n_voxels, n_voxels), optional
        Distances between voxels.

    Returns
    -------
    ndarray, shape (n_voxels, n_voxels)
        Ω.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.optimize.residuals import make_omega
    >>> make_omega([1.0, 2.0], 0.5, 0.0, np.eye(2)).tolist()
    [[1.0, 1.0], [1.0, 4.0]]
    """
    tau = np.asarray(tau, dtype=np.float64).ravel()
    correlated = np.outer(tau, tau)
    if D is not None:
        correlated = correlated * (alpha * np.exp(-beta * np.asarray(D, np.float64)) + 1 - alpha)
    return (
        rho * correlated + (1.0 - rho) * np.diag(tau**2)
        + sigma2 * np.asarray(WWT, dtype=np.float64)
    )


class ResidualFitter:
    """Fit the residual covariance Ω (and Student-t degrees of freedom) of a fitted model.

    The residuals ``data − model.predict(paradigm, parameters, weights)`` are modelled as
    independent draws from a zero-mean multivariate normal (``method='gauss'``) or
    Student-t (``method='t'``, shape matrix Ω) with

    .. math::

        \\Omega = (1 - \\lambda)\\left[\\rho\\, \\tau\\tau^\\top
        + (1 - \\rho)\\,\\mathrm{diag}(\\tau^2) + \\sigma^2 W W^\\top\\right]
        + \\lambda S

    where ``S`` is the residuals' empirical covariance and ``WWᵀ`` the model's overlap
    matrix (:meth:`~braincoder.models.decoding.DecodingMixin.get_rf_overlap`: weights, or
    receptive-field overlap on the default stimulus grid, scaled to a mean diagonal of 1).
    τ, ρ, σ² (and dof) maximise the log-likelihood of the residuals, by Adam in an
    unbounded space (τ, σ², dof through softplus, ρ through a sigmoid), many steps per
    compiled call, with early stopping.

    Parameters
    ----------
    model : EncodingModel
        The fitted model.
    data : DataFrame, shape (n_timepoints, n_voxels)
        Measured responses.
    paradigm : DataFrame or array-like, optional
        Stimulus per time point (falls back to the model's).
    parameters, weights : DataFrame, optional
        Fall back to the model's. Voxels are matched to ``data`` by label. Given
        ``parameters`` also become the model's (``model.parameters``), as in the public
        braincoder.
    lambd : float, default 0.0
        Shrinkage towards the empirical covariance (0: model only, 1: empirical only).

    Attributes
    ----------
    residuals : DataFrame
        Residuals (time × voxel).
    WWT : DataFrame
        Overlap matrix used (voxel × voxel).
    omega : DataFrame
        Fitted Ω (after :meth:`fit`).
    dof : float or None
        Fitted degrees of freedom (None for ``'gauss'``).
    fitted_omega_parameters : dict
        ``tau`` (Series by voxel), ``rho``, ``sigma2`` (and ``alpha``, ``beta``, ``dof``).
    costs : ndarray
        Mean negative log-likelihood per step.
    n_iterations : int
        Steps taken.
    stop_reason : str
        Why the optimisation stopped.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import GaussianPRF
    >>> from braincoder.optimize import ResidualFitter
    >>> rng = np.random.default_rng(0)
    >>> parameters = np.column_stack([np.linspace(0, 10, 8), np.full(8, 2.0), np.ones(8),
    ...                               np.zeros(8)])
    >>> model = GaussianPRF(parameters=parameters)
    >>> paradigm = rng.uniform(0, 10, 200)
    >>> data = model.simulate(paradigm, noise=0.5, seed=1)
    >>> omega, dof = ResidualFitter(model, data, paradigm).fit(method="gauss",
    ...                                                        progressbar=False)
    >>> bool(np.allclose(np.diag(omega), 0.25, rtol=0.3)), dof is None
    (True, True)
    """

    def __init__(self, model, data, paradigm=None, parameters=None, weights=None, lambd=0.0):
        lambd = float(lambd)
        if not 0.0 <= lambd <= 1.0:
            raise ValueError(f"lambd must be within [0, 1], got {lambd}")
        self.model = model
        self.lambd = lambd
        self.data = format_data(data)
        self.paradigm = model.get_paradigm(paradigm)
        check_same_index(self.data, self.paradigm, "data", "paradigm")
        self.parameters = model.resolve_parameters(parameters)
        if parameters is not None:
            model.parameters = self.parameters  # as the public braincoder does
        self.weights = model.resolve_weights(weights)
        predictions = model.predict(self.paradigm, self.parameters, self.weights)
        what = "weights" if self.weights is not None else "parameters"
        order = match_voxels(self.data.columns, predictions.columns, "data", what)
        self.residuals = self.data - predictions.iloc[:, order].to_numpy()
        overlap = model.get_rf_overlap(self.parameters, self.weights).to_numpy()
        voxels = self.data.columns
        self.WWT = pd.DataFrame(overlap[np.ix_(order, order)], index=voxels, columns=voxels)
        self.omega = None
        self.dof = None
        self.fitted_omega_parameters = None
        self.costs = None
        self.n_iterations = 0
        self.stop_reason = None

    def fit(
        self, init_rho=0.1, init_tau=None, init_dof=1.0, init_sigma2=1e-3, D=None,  # noqa: N803
        max_n_iterations=1000, min_n_iterations=100, learning_rate=0.02, rtol=1e-6, lag=100,
        method="gauss", progressbar=True, init_alpha=0.5, init_beta=1.0,
    ):
        """Fit Ω (and dof) to the residuals.

        Parameters
        ----------
        init_rho : float, default 0.1
            Starting shared correlation, within (0, 1).
        init_tau : array-like or Series, shape (n_voxels,), optional
            Starting per-voxel SDs (default: the residuals' SDs).
        init_dof : float, default 1.0
            Starting degrees of freedom (``method='t'``).
        init_sigma2 : float, default 1e-3
            Starting variance of the ``WWᵀ`` component.
        D : DataFrame or array, shape (n_voxels, n_voxels), optional
            Distances between voxels; the shared correlation then decays with distance:
            ``ρ (α exp(−β D) + 1 − α) ττᵀ`` with α in (0, 1) and β > 0 fitted.
        max_n_iterations, min_n_iterations : int
            Step budget and minimum number of steps before early stopping.
        learning_rate : float, default 0.02
            Adam step size.
        rtol : float, default 1e-6
            Stop when the mean negative log-likelihood improved by less than this fraction
            over ``lag`` steps.
        lag : int, default 100
            Early-stopping window.
        method : {'gauss', 't'}, default 'gauss'
            Gaussian (the public braincoder's default) or Student-t residuals (heavier
            tails, robust to outlying time points).
        progressbar : bool, default True
            Show a tqdm bar.
        init_alpha, init_beta : float
            Starting α and β (with ``D``).

        Returns
        -------
        omega : DataFrame, shape (n_voxels, n_voxels)
            Symmetric positive definite Ω labelled by the data's voxels.
        dof : float or None
            Degrees of freedom (None for ``'gauss'``).

        Raises
        ------
        ValueError
            For out-of-range starting values, a malformed ``D``, or (``lambd=1``) an
            empirical covariance that is not positive definite.
        """
        check_choice(method, ("t", "gauss"), "method")
        voxels = self.data.columns
        n_voxels = len(voxels)
        residuals = self.residuals.to_numpy(np.float64)
        empirical = np.cov(residuals, rowvar=False).reshape(n_voxels, n_voxels)
        if self.lambd == 1.0:
            return self._finish(check_covariance(empirical, "empirical covariance"),
                                None if method == "gauss" else float(init_dof), {}, [], 0,
                                "lambd=1: empirical covariance")
        tau0 = self._init_tau(init_tau, residuals)
        if not 0.0 < float(init_rho) < 1.0:
            raise ValueError(f"init_rho must be within (0, 1), got {init_rho}")
        for name, value in (("init_sigma2", init_sigma2), ("init_dof", init_dof)):
            if not float(value) > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        distances = None if D is None else self._check_distances(D)
        pieces = [softplus_inverse(tau0), [np.log(init_rho / (1 - init_rho))],
                  softplus_inverse([init_sigma2])]
        if distances is not None:
            if not 0.0 < float(init_alpha) < 1.0 or not float(init_beta) > 0:
                raise ValueError("init_alpha must be within (0, 1) and init_beta > 0")
            pieces += [[np.log(init_alpha / (1 - init_alpha))], softplus_inverse([init_beta])]
        if method == "t":
            pieces.append(softplus_inverse([init_dof]))
        init = np.concatenate([np.ravel(p) for p in pieces])

        wwt = tf.constant(self.WWT.to_numpy(np.float64))
        resid = tf.constant(residuals)
        empirical_t = tf.constant(empirical)
        dist_t = None if distances is None else tf.constant(distances)
        lambd = self.lambd

        def unpack(x):
            out = {"tau": tf.nn.softplus(x[:n_voxels]), "rho": tf.sigmoid(x[n_voxels]),
                   "sigma2": tf.nn.softplus(x[n_voxels + 1])}
            rest = n_voxels + 2
            if dist_t is not None:
                out["alpha"], out["beta"] = tf.sigmoid(x[rest]), tf.nn.softplus(x[rest + 1])
                rest += 2
            if method == "t":
                out["dof"] = tf.nn.softplus(x[rest])
            return out

        def omega_of(p):
            tau = p["tau"]
            correlated = tau[:, None] * tau[None, :]
            if dist_t is not None:
                correlated *= p["alpha"] * tf.exp(-p["beta"] * dist_t) + 1.0 - p["alpha"]
            model = p["rho"] * correlated + (1.0 - p["rho"]) * tf.linalg.diag(tau**2)
            model += p["sigma2"] * wwt
            return (1.0 - lambd) * model + lambd * empirical_t

        def loss(x):
            p = unpack(x)
            chol = tf.linalg.cholesky(omega_of(p))
            maha = mahalanobis(resid, tf.zeros(n_voxels, tf.float64), chol)
            log_det = cholesky_log_det(chol)
            if method == "t":
                log_p = mvt_logpdf_from_mahalanobis(maha, log_det, n_voxels, p["dof"])
            else:
                log_p = mvn_logpdf_from_mahalanobis(maha, log_det, n_voxels)
            return -tf.reduce_mean(log_p)

        result = adam_minimize(
            loss, init, learning_rate=learning_rate, max_n_iterations=max_n_iterations,
            min_n_iterations=min_n_iterations, lag=lag, rtol=rtol, progressbar=progressbar,
            description="ResidualFitter", dtype=tf.float64,
        )
        fitted = {k: v.numpy() for k, v in unpack(tf.constant(result.x)).items()}
        omega = check_covariance(omega_of(unpack(tf.constant(result.x))).numpy(), "fitted omega")
        dof = float(fitted.pop("dof")) if method == "t" else None
        return self._finish(omega, dof, fitted, result.losses, result.n_iterations,
                            result.stop_reason)

    def _finish(self, omega, dof, fitted, costs, n_iterations, stop_reason):
        voxels = self.data.columns
        self.omega = pd.DataFrame(omega, index=voxels, columns=voxels)
        self.dof = dof
        parameters = {}
        for key, value in fitted.items():
            parameters[key] = (
                series_by_voxel(value, voxels, "tau") if key == "tau" else float(value)
            )
        if dof is not None:
            parameters["dof"] = dof
        self.fitted_omega_parameters = parameters
        self.costs = np.asarray(costs)
        self.n_iterations = n_iterations
        self.stop_reason = stop_reason
        return self.omega, self.dof

    def _init_tau(self, init_tau, residuals):
        if init_tau is None:
            tau = residuals.std(axis=0)
        elif isinstance(init_tau, pd.Series):
            order = match_voxels(self.data.columns, init_tau.index, "data", "init_tau")
            tau = init_tau.to_numpy(np.float64)[order]
        else:
            tau = np.broadcast_to(np.asarray(init_tau, np.float64).ravel(),
                                  (residuals.shape[1],)).copy()
        if not (np.isfinite(tau).all() and (tau > 0).all()):
            bad = self.data.columns[~(np.isfinite(tau) & (tau > 0))]
            raise ValueError(
                f"init_tau must be finite and > 0; voxels {list(bad[:5])} are not (constant "
                "residuals? drop those voxels)"
            )
        return tau

    def _check_distances(self, D):  # noqa: N803
        voxels = self.data.columns
        if isinstance(D, pd.DataFrame):
            order = match_voxels(voxels, D.index, "data", "D")
            D = D.to_numpy(np.float64)[np.ix_(order, order)]  # noqa: N806
        D = np.asarray(D, dtype=np.float64)  # noqa: N806
        if D.shape != (len(voxels), len(voxels)):
            raise ValueError(f"D must have shape {(len(voxels),) * 2}, got {D.shape}")
        if not np.isfinite(D).all() or (D < 0).any():
            raise ValueError("D must hold finite, non-negative distances")
        return D
