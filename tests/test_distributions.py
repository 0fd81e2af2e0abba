import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from braincoder.utils.distributions import (
    check_covariance,
    cholesky_log_det,
    cross_mahalanobis,
    mahalanobis,
    mvn_logpdf,
    mvt_logpdf,
)


def random_spd(n, rng, condition=10.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.geomspace(1.0, condition, n)
    return (q * eigenvalues) @ q.T


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n, m = 6, 9
    cov = random_spd(n, rng)
    mean = rng.normal(size=n)
    x = rng.multivariate_normal(mean, cov, size=m)
    return x, mean, cov


def test_mvn_matches_scipy(problem):
    x, mean, cov = problem
    chol = tf.linalg.cholesky(tf.constant(cov))
    ours = mvn_logpdf(tf.constant(x), tf.constant(mean), chol).numpy()
    np.testing.assert_allclose(ours, stats.multivariate_normal.logpdf(x, mean, cov), rtol=1e-10)


def test_mvn_per_row_means(problem):
    x, mean, cov = problem
    means = mean + np.arange(len(x))[:, None] * 0.1
    chol = tf.linalg.cholesky(tf.constant(cov))
    ours = mvn_logpdf(tf.constant(x), tf.constant(means), chol).numpy()
    reference = [
        stats.multivariate_normal.logpdf(xi, mi, cov) for xi, mi in zip(x, means, strict=True)
    ]
    np.testing.assert_allclose(ours, reference, rtol=1e-10)


@pytest.mark.parametrize("dof", [1.5, 5.0, 40.0])
def test_mvt_matches_scipy(problem, dof):
    x, mean, cov = problem
    chol = tf.linalg.cholesky(tf.constant(cov))
    ours = mvt_logpdf(tf.constant(x), tf.constant(mean), chol, dof).numpy()
    reference = stats.multivariate_t.logpdf(x, loc=mean, shape=cov, df=dof)
    np.testing.assert_allclose(ours, reference, rtol=1e-10)


def test_float32_close_to_scipy(problem):
    x, mean, cov = problem
    chol = tf.linalg.cholesky(tf.constant(cov, tf.float32))
    ours = mvn_logpdf(tf.constant(x, tf.float32), tf.constant(mean, tf.float32), chol)
    assert ours.dtype == tf.float32
    np.testing.assert_allclose(
        ours.numpy(), stats.multivariate_normal.logpdf(x, mean, cov), rtol=1e-4
    )


def test_log_det_and_cross_mahalanobis(problem):
    x, mean, cov = problem
    chol = tf.linalg.cholesky(tf.constant(cov))
    assert float(cholesky_log_det(chol)) == pytest.approx(np.linalg.slogdet(cov)[1], rel=1e-12)
    rng = np.random.default_rng(1)
    means = rng.normal(size=(4, x.shape[1]))
    cross = cross_mahalanobis(tf.constant(x), tf.constant(means), chol).numpy()
    inverse = np.linalg.inv(cov)
    diff = x[:, None, :] - means[None, :, :]
    reference = np.einsum("tgi,ij,tgj->tg", diff, inverse, diff)
    np.testing.assert_allclose(cross, reference, rtol=1e-9)
    direct = mahalanobis(tf.constant(x), tf.constant(means[0]), chol).numpy()
    np.testing.assert_allclose(direct, reference[:, 0], rtol=1e-9)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), m=st.integers(1, 4), seed=st.integers(0, 10_000),
       dof=st.floats(0.5, 50.0))
def test_property_against_scipy(n, m, seed, dof):
    rng = np.random.default_rng(seed)
    cov = random_spd(n, rng, condition=100.0)
    x = rng.normal(size=(m, n))
    mean = rng.normal(size=n)
    chol = tf.linalg.cholesky(tf.constant(cov))
    np.testing.assert_allclose(
        mvn_logpdf(tf.constant(x), tf.constant(mean), chol).numpy(),
        np.atleast_1d(stats.multivariate_normal.logpdf(x, mean, cov)), rtol=1e-8, atol=1e-10,
    )
    np.testing.assert_allclose(
        mvt_logpdf(tf.constant(x), tf.constant(mean), chol, dof).numpy(),
        np.atleast_1d(stats.multivariate_t.logpdf(x, loc=mean, shape=cov, df=dof)),
        rtol=1e-8, atol=1e-10,
    )


def test_check_covariance_accepts_spd_and_symmetrises(problem):
    _, _, cov = problem
    noisy = cov + 1e-12 * np.triu(np.ones_like(cov))
    out = check_covariance(noisy)
    np.testing.assert_array_equal(out, out.T)


def test_check_covariance_rejects_bad_matrices():
    with pytest.raises(ValueError, match="not positive definite.*lambd.*diagonal"):
        check_covariance(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="not symmetric"):
        check_covariance(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        check_covariance(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        check_covariance(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="3 voxels"):
        check_covariance(np.eye(2), n=3)
