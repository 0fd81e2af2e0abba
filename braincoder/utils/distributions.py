"""Multivariate normal and Student-t log-densities (tensor functions, Cholesky based).

Every density is evaluated from the Cholesky factor ``L`` of the covariance (``Ω = L Lᵀ``):
the squared Mahalanobis distance ``‖L⁻¹(x − μ)‖²`` comes from a triangular solve and the
log-determinant from the factor's diagonal, ``log|Ω| = 2 Σ log Lᵢᵢ``. The functions work in
the dtype of their inputs (float64 is recommended for covariances with a wide spectrum).

:func:`check_covariance` validates a covariance given by the caller (numpy) before any
tensor work starts; :func:`sample_noise` draws from the same distributions (numpy).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import tensorflow as tf

__all__ = [
    "check_covariance",
    "cholesky_log_det",
    "mahalanobis",
    "cross_mahalanobis",
    "mvn_logpdf",
    "mvt_logpdf",
    "mvn_logpdf_from_mahalanobis",
    "mvt_logpdf_from_mahalanobis",
    "sample_noise",
]

_REGULARISE = (
    "regularise it, e.g. increase the shrinkage (ResidualFitter(..., lambd=...)) or add a "
    "small ridge to its diagonal (omega + eps * identity)"
)


def check_covariance(omega, what="omega", n=None):
    """Check that a covariance matrix is square, finite, symmetric and positive definite.

    Parameters
    ----------
    omega : array-like or DataFrame, shape (n, n)
        Covariance matrix.
    what : str, default "omega"
        Name used in error messages.
    n : int, optional
        Required size.

    Returns
    -------
    ndarray, shape (n, n)
        The matrix as float64, symmetrised (``(Ω + Ωᵀ) / 2``).

    Raises
    ------
    ValueError
        If the matrix is not square, has the wrong size, holds NaN/inf, is not symmetric or
        is not positive definite (the message suggests how to regularise it).
    """
    values = omega.to_numpy() if isinstance(omega, pd.DataFrame) else omega
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"{what} must be a square matrix, got shape {values.shape}")
    if n is not None and values.shape[0] != n:
        raise ValueError(
            f"{what} is {values.shape[0]} × {values.shape[1]} but there are {n} voxels"
        )
    if not np.isfinite(values).all():
        raise ValueError(f"{what} holds {int((~np.isfinite(values)).sum())} NaN/inf values")
    scale = max(np.abs(values).max(), np.finfo(np.float64).tiny)
    asymmetry = np.abs(values - values.T).max() / scale
    if asymmetry > 1e-6:
        raise ValueError(
            f"{what} is not symmetric (largest relative difference to its transpose "
            f"{asymmetry:.2g})"
        )
    values = 0.5 * (values + values.T)
    try:
        np.linalg.cholesky(values)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(values)[0])
        raise ValueError(
            f"{what} is not positive definite (smallest eigenvalue {smallest:.3g}); "
            + _REGULARISE
        ) from None
    return values


def cholesky_log_det(chol):
    """Log-determinant of ``L Lᵀ`` from its lower Cholesky factor.

    Parameters
    ----------
    chol : tensor, shape (n, n)
        Lower-triangular Cholesky factor.

    Returns
    -------
    tensor
        Scalar ``2 Σ log Lᵢᵢ``.
    """
    return 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)))


def _as(value, dtype):
    """Cast a tensor, or build a constant from a Python number without float32 rounding."""
    if isinstance(value, tf.Tensor | tf.Variable):
        return tf.cast(value, dtype)
    return tf.constant(value, dtype)


def _whiten(values, chol):
    """``L⁻¹ valuesᵀ`` for values of shape (m, n): returns (n, m)."""
    return tf.linalg.triangular_solve(chol, tf.transpose(values), lower=True)


def mahalanobis(x, mean, chol):
    """Squared Mahalanobis distance of each row of ``x`` to ``mean``.

    Parameters
    ----------
    x : tensor, shape (m, n)
        Observations.
    mean : tensor, shape (m, n) or (n,)
        Means (broadcast against ``x``).
    chol : tensor, shape (n, n)
        Lower Cholesky factor of the covariance.

    Returns
    -------
    tensor, shape (m,)
        ``(x − μ)ᵀ Ω⁻¹ (x − μ)`` per row.
    """
    diff = x - mean
    return tf.reduce_sum(tf.square(_whiten(diff, chol)), axis=0)


def cross_mahalanobis(x, means, chol):
    """Squared Mahalanobis distances between every observation and every mean.

    Computed as ``‖a‖² − 2 aᵀb + ‖b‖²`` with whitened ``a = L⁻¹x`` and ``b = L⁻¹μ``, so no
    (m, k, n) tensor is formed. Use float64 inputs: the expansion cancels digits.

    Parameters
    ----------
    x : tensor, shape (m, n)
        Observations (e.g. data, time × voxel).
    means : tensor, shape (k, n)
        Candidate means (e.g. predictions on a stimulus grid).
    chol : tensor, shape (n, n)
        Lower Cholesky factor of the covariance.

    Returns
    -------
    tensor, shape (m, k)
        Non-negative squared distances.
    """
    a = _whiten(x, chol)
    b = _whiten(means, chol)
    distances = (
        tf.reduce_sum(tf.square(a), axis=0)[:, tf.newaxis]
        - 2.0 * tf.matmul(a, b, transpose_a=True)
        + tf.reduce_sum(tf.square(b), axis=0)[tf.newaxis, :]
    )
    return tf.maximum(distances, tf.zeros_like(distances))


def mvn_logpdf_from_mahalanobis(maha, log_det, n):
    """Multivariate normal log-density from squared Mahalanobis distances.

    Parameters
    ----------
    maha : tensor
        Squared Mahalanobis distances (any shape).
    log_det : tensor
        Log-determinant of the covariance (scalar).
    n : int
        Dimension.

    Returns
    -------
    tensor
        ``−½ (n log 2π + log|Ω| + maha)``, same shape as ``maha``.
    """
    const = _as(n * math.log(2.0 * math.pi), maha.dtype)
    return -0.5 * (const + _as(log_det, maha.dtype) + maha)


def mvt_logpdf_from_mahalanobis(maha, log_det, n, dof):
    """Multivariate Student-t log-density from squared Mahalanobis distances.

    Parameters
    ----------
    maha : tensor
        Squared Mahalanobis distances (any shape), with respect to the shape matrix.
    log_det : tensor
        Log-determinant of the shape matrix (scalar).
    n : int
        Dimension.
    dof : float or tensor
        Degrees of freedom ``ν > 0``.

    Returns
    -------
    tensor
        ``log Γ((ν+n)/2) − log Γ(ν/2) − (n/2) log(νπ) − ½ log|Ω| − ((ν+n)/2) log(1 + maha/ν)``.
    """
    dtype = maha.dtype
    dof = _as(dof, dtype)
    n_ = _as(n, dtype)
    const = (
        tf.math.lgamma(0.5 * (dof + n_))
        - tf.math.lgamma(0.5 * dof)
        - 0.5 * n_ * tf.math.log(dof * _as(math.pi, dtype))
        - 0.5 * _as(log_det, dtype)
    )
    return const - 0.5 * (dof + n_) * tf.math.log1p(maha / dof)


def mvn_logpdf(x, mean, chol):
    """Log-density of a multivariate normal ``N(mean, L Lᵀ)`` for each row of ``x``.

    Parameters
    ----------
    x : tensor, shape (m, n)
        Observations.
    mean : tensor, shape (m, n) or (n,)
        Means.
    chol : tensor, shape (n, n)
        Lower Cholesky factor of the covariance.

    Returns
    -------
    tensor, shape (m,)
        Log-densities.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from braincoder.utils.distributions import mvn_logpdf
    >>> round(float(mvn_logpdf(tf.zeros((1, 2)), tf.zeros(2), tf.eye(2))[0]), 4)
    -1.8379
    """
    n = x.shape[-1]
    return mvn_logpdf_from_mahalanobis(mahalanobis(x, mean, chol), cholesky_log_det(chol), n)


def mvt_logpdf(x, mean, chol, dof):
    """Log-density of a multivariate Student-t with shape matrix ``L Lᵀ`` for each row.

    Same parameterisation as :data:`scipy.stats.multivariate_t` (``shape = L Lᵀ``; the
    covariance is ``ν/(ν−2)`` times the shape for ``ν > 2``).

    Parameters
    ----------
    x : tensor, shape (m, n)
        Observations.
    mean : tensor, shape (m, n) or (n,)
        Locations.
    chol : tensor, shape (n, n)
        Lower Cholesky factor of the shape matrix.
    dof : float or tensor
        Degrees of freedom.

    Returns
    -------
    tensor, shape (m,)
        Log-densities.
    """
    n = x.shape[-1]
    return mvt_logpdf_from_mahalanobis(
        mahalanobis(x, mean, chol), cholesky_log_det(chol), n, dof
    )


def sample_noise(rng, n, chol, dof=None):
    """Draw rows of multivariate normal ``N(0, L Lᵀ)`` or Student-t noise (numpy).

    Student-t rows (shape matrix ``L Lᵀ``, ``dof`` degrees of freedom) are normal rows
    divided by ``sqrt(χ²_dof / dof)``, one χ² draw per row, as in :func:`mvt_logpdf`.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (normal draws first, then the χ² draws).
    n : int
        Number of rows.
    chol : ndarray, shape (n_voxels, n_voxels)
        Lower Cholesky factor ``L`` of the covariance (or shape matrix).
    dof : float, optional
        Degrees of freedom; normal noise when None.

    Returns
    -------
    ndarray, shape (n, n_voxels)
        The draws.
    """
    draws = rng.standard_normal((n, chol.shape[0])) @ np.asarray(chol).T
    if dof is not None:
        draws *= np.sqrt(dof / rng.chisquare(dof, (n, 1)))
    return draws
