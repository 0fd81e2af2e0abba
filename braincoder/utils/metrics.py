"""Similarity metrics between measured and reconstructed samples (plain numpy).

Shared by the deep models: volumes (EEG-to-fMRI), images (VAE-GAN) and embeddings. Each
function takes arrays whose first axis is the sample (trial, volume, image).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _as_samples(values, what):
    """Return a float64 array with samples on the first axis, checking finiteness."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"{what} must have a sample axis and at least one feature axis")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return array


def pearson_per_sample(true, predicted):
    """Pearson correlation between each true sample and its prediction.

    Parameters
    ----------
    true, predicted : array-like, shape (n_samples, ...)
        Samples (images, volumes, embeddings); all axes after the first are flattened.

    Returns
    -------
    ndarray, shape (n_samples,)
        Correlation per sample (NaN where a sample is constant).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.metrics import pearson_per_sample
    >>> x = np.arange(8.0).reshape(2, 4)
    >>> pearson_per_sample(x, 3 * x + 1).round(6).tolist()
    [1.0, 1.0]
    """
    true = _as_samples(true, "true")
    predicted = _as_samples(predicted, "predicted")
    if true.shape != predicted.shape:
        raise ValueError(f"shapes differ: true {true.shape}, predicted {predicted.shape}")
    a = true.reshape(len(true), -1)
    b = predicted.reshape(len(predicted), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))


def cosine_similarity(true, predicted):
    """Cosine similarity between each true sample and its prediction.

    Parameters
    ----------
    true, predicted : array-like, shape (n_samples, ...)
        Samples; all axes after the first are flattened.

    Returns
    -------
    ndarray, shape (n_samples,)
        Cosine per sample.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.metrics import cosine_similarity
    >>> cosine_similarity([[1.0, 0.0]], [[1.0, 1.0]]).round(4).tolist()
    [0.7071]
    """
    true = _as_samples(true, "true")
    predicted = _as_samples(predicted, "predicted")
    a = true.reshape(len(true), -1)
    b = predicted.reshape(len(predicted), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def ssim(true, predicted, data_range=None, win_size=7):
    """Mean structural similarity (SSIM) per sample, for 2D images or 3D volumes.

    Follows Wang et al. (2004) with a uniform ``win_size`` window, sample covariances,
    ``K1 = 0.01`` and ``K2 = 0.03``: the same definition as
    ``skimage.metrics.structural_similarity`` with its defaults.

    Parameters
    ----------
    true, predicted : array-like, shape (n_samples, height, width) or (n_samples, x, y, z)
        Images (n, height, width) or volumes (n, x, y, z).
    data_range : float, optional
        Value range of the data; by default ``true.max() - true.min()`` over all samples.
    win_size : int, default 7
        Odd side length of the window; must not exceed any spatial size.

    Returns
    -------
    ndarray, shape (n_samples,)
        Mean SSIM of each sample (1 for identical samples).

    References
    ----------
    Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
    assessment: from error visibility to structural similarity. IEEE TIP 13(4), 600–612.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.metrics import ssim
    >>> x = np.random.default_rng(0).random((2, 16, 16))
    >>> ssim(x, x).tolist()
    [1.0, 1.0]
    """
    true = _as_samples(true, "true")
    predicted = _as_samples(predicted, "predicted")
    if true.shape != predicted.shape:
        raise ValueError(f"shapes differ: true {true.shape}, predicted {predicted.shape}")
    spatial = true.shape[1:]
    if win_size % 2 != 1 or any(size < win_size for size in spatial):
        raise ValueError(
            f"win_size must be odd and no larger than the spatial shape {spatial}, got {win_size}"
        )
    if data_range is None:
        data_range = float(true.max() - true.min())
    if data_range <= 0:
        raise ValueError("data_range must be positive (constant true samples)")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    n_window = win_size ** len(spatial)
    cov_norm = n_window / (n_window - 1)
    size = (1,) + (win_size,) * len(spatial)

    def mean_filter(values):
        return ndimage.uniform_filter(values, size=size, mode="reflect")

    ux, uy = mean_filter(true), mean_filter(predicted)
    vx = cov_norm * (mean_filter(true * true) - ux * ux)
    vy = cov_norm * (mean_filter(predicted * predicted) - uy * uy)
    vxy = cov_norm * (mean_filter(true * predicted) - ux * uy)
    similarity = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    crop = (slice(None),) + tuple(slice(pad, s - pad) for s in spatial)
    return similarity[crop].reshape(len(true), -1).mean(axis=1)


def n_way_identification(true, predicted, n=2, n_draws=1000, seed=0, metric="pearson"):
    """n-way identification accuracy of reconstructions.

    For each sample, the reconstruction is compared with its own true sample and with
    ``n − 1`` other true samples drawn at random; it counts as identified when it is more
    similar to its own. With ``n = 2`` every pair is evaluated exactly (no sampling).

    Parameters
    ----------
    true, predicted : array-like, shape (n_samples, ...)
        True and reconstructed samples.
    n : int, default 2
        Number of candidates (the true one plus ``n − 1`` distractors).
    n_draws : int, default 1000
        Random draws of distractor sets per sample when ``n > 2``.
    seed : int, default 0
        Seed of the distractor draws.
    metric : {"pearson", "cosine"}, default "pearson"
        Similarity between a reconstruction and a candidate.

    Returns
    -------
    float
        Fraction of correct identifications (chance is ``1 / n``).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.metrics import n_way_identification
    >>> x = np.eye(4)
    >>> n_way_identification(x, x, n=2)
    1.0
    """
    true = _as_samples(true, "true").reshape(len(true), -1)
    predicted = _as_samples(predicted, "predicted").reshape(len(predicted), -1)
    n_samples = len(true)
    if not 2 <= n <= n_samples:
        raise ValueError(f"n must be between 2 and the number of samples ({n_samples}), got {n}")
    if metric == "pearson":
        true = true - true.mean(axis=1, keepdims=True)
        predicted = predicted - predicted.mean(axis=1, keepdims=True)
    elif metric != "cosine":
        raise ValueError(f"metric must be 'pearson' or 'cosine', got {metric!r}")
    true = true / np.linalg.norm(true, axis=1, keepdims=True)
    predicted = predicted / np.linalg.norm(predicted, axis=1, keepdims=True)
    similarity = predicted @ true.T  # reconstruction i × candidate j
    own = np.diag(similarity)
    if n == 2:
        wins = own[:, None] > similarity
        np.fill_diagonal(wins, False)
        return float(wins.sum() / (n_samples * (n_samples - 1)))
    rng = np.random.default_rng(seed)
    correct = 0
    for i in range(n_samples):
        others = np.delete(np.arange(n_samples), i)
        draws = np.array([rng.choice(others, n - 1, replace=False) for _ in range(n_draws)])
        correct += (own[i] > similarity[i, draws].max(axis=1)).sum()
    return float(correct / (n_samples * n_draws))
