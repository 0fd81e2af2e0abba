"""Closed-form ridge regression with per-target cross-validated regularisation.

One SVD of the design per fold scores every candidate alpha for every target at once (the
recipe of himalaya's ``solve_ridge_cv_svd``); the final weights come from one SVD of the
whole design, refitting each target with the alpha it chose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["fit_ridge", "RidgeSolution"]


@dataclass
class RidgeSolution:
    """Result of :func:`fit_ridge`.

    Attributes
    ----------
    weights : ndarray, shape (n_features, n_targets)
        Ridge weights.
    intercept : ndarray, shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    alphas : ndarray, shape (n_targets,)
        The alpha used for each target.
    cv_r2 : ndarray, shape (n_targets,)
        Cross-validated R² of each target at its chosen alpha (NaN without CV).
    cv_scores : ndarray, shape (n_alphas, n_targets) or None
        Cross-validated R² of every candidate alpha (None without CV).
    """

    weights: np.ndarray
    intercept: np.ndarray
    alphas: np.ndarray
    cv_r2: np.ndarray
    cv_scores: np.ndarray | None = None

    def predict(self, X):
        """Predict targets from features.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Features.

        Returns
        -------
        ndarray, shape (n_samples, n_targets)
            ``X @ weights + intercept``.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"X must have shape (n_samples, {self.weights.shape[0]}), got {X.shape}"
            )
        return X @ self.weights + self.intercept


def _svd(X):
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > s.max() * max(X.shape) * np.finfo(np.float64).eps if s.size else s > 0
    return U[:, keep], s[keep], Vt[keep]


def _shrinkage(s, alpha):
    """Filter factors s / (s² + α) of the ridge solution in the SVD basis."""
    return s / (s**2 + alpha)


def _folds(n_samples, cv, seed):
    if isinstance(cv, int):
        if not 2 <= cv <= n_samples:
            raise ValueError(f"cv must be between 2 and n_samples ({n_samples}), got {cv}")
        # Contiguous blocks: time series are autocorrelated, so folds do not interleave.
        bounds = np.linspace(0, n_samples, cv + 1).astype(int)
        indices = np.arange(n_samples)
        return [
            (np.concatenate([indices[: bounds[i]], indices[bounds[i + 1] :]]),
             indices[bounds[i] : bounds[i + 1]])
            for i in range(cv)
        ]
    folds = list(cv)
    if not folds:
        raise ValueError("cv gave no folds")
    return [(np.asarray(train), np.asarray(test)) for train, test in folds]


def fit_ridge(X, Y, alphas=(0.0,), cv=None, fit_intercept=True, seed=0):
    """Ridge regression of every target on the same features, alpha chosen per target.

    Minimises :math:`\\lVert Y - XW - 1b^\\top\\rVert^2 + \\alpha \\lVert W\\rVert^2` for
    each target (column of ``Y``). With several candidate alphas, each target picks the
    alpha with the lowest cross-validated squared error.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Design (features).
    Y : array-like, shape (n_samples, n_targets)
        Targets.
    alphas : float or sequence of float, default (0.0,)
        Candidate regularisation strengths (>= 0). ``0`` gives least squares (minimum-norm
        solution for rank-deficient designs).
    cv : int or iterable of (train, test) index arrays, optional
        Number of contiguous folds, or explicit folds. Required when more than one alpha is
        given (defaults to 5 then).
    fit_intercept : bool, default True
        Fit an unpenalised intercept per target (centre X and Y within each fold).
    seed : int, default 0
        Unused with contiguous folds; kept so that callers can pass one seed everywhere.

    Returns
    -------
    RidgeSolution
        Weights, intercepts, chosen alphas and cross-validated R².

    Raises
    ------
    ValueError
        For mismatched shapes, negative alphas, or NaN/inf values.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.optimize.ridge import fit_ridge
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> Y = X @ np.array([[1.0], [2.0], [3.0]])
    >>> fit_ridge(X, Y).weights.round(6).ravel().tolist()
    [1.0, 2.0, 3.0]
    """
    del seed
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X (n_samples, n_features) and Y (n_samples, n_targets) must share n_samples; "
            f"got {X.shape} and {Y.shape}"
        )
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite (no NaN/inf)")
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0 or (alphas < 0).any():
        raise ValueError(f"alphas must be one or more values >= 0, got {alphas.tolist()}")
    if alphas.size > 1 and cv is None:
        cv = 5

    cv_r2 = np.full(Y.shape[1], np.nan)
    cv_scores = None
    chosen = np.full(Y.shape[1], alphas[0])
    if cv is not None:
        sse = np.zeros((alphas.size, Y.shape[1]))
        sst = np.zeros(Y.shape[1])
        for train, test in _folds(X.shape[0], cv, 0):
            x_mean = X[train].mean(0) if fit_intercept else 0.0
            y_mean = Y[train].mean(0) if fit_intercept else 0.0
            U, s, Vt = _svd(X[train] - x_mean)
            uty = U.T @ (Y[train] - y_mean)
            projected = (X[test] - x_mean) @ Vt.T
            target = Y[test] - y_mean
            sst += ((Y[test] - Y[test].mean(0)) ** 2).sum(0)
            for i, alpha in enumerate(alphas):
                residual = target - projected @ (_shrinkage(s, alpha)[:, None] * uty)
                sse[i] += (residual**2).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cv_scores = 1.0 - sse / sst
        best = np.argmin(sse, axis=0)
        chosen = alphas[best]
        cv_r2 = cv_scores[best, np.arange(Y.shape[1])]

    x_mean = X.mean(0) if fit_intercept else np.zeros(X.shape[1])
    y_mean = Y.mean(0) if fit_intercept else np.zeros(Y.shape[1])
    U, s, Vt = _svd(X - x_mean)
    uty = U.T @ (Y - y_mean)
    weights = np.zeros((X.shape[1], Y.shape[1]))
    for alpha in np.unique(chosen):
        targets = chosen == alpha
        weights[:, targets] = Vt.T @ (_shrinkage(s, alpha)[:, None] * uty[:, targets])
    intercept = y_mean - x_mean @ weights
    return RidgeSolution(weights, intercept, chosen, cv_r2, cv_scores)
