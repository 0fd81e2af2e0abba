"""Image reconstruction metrics: pixel correlation, MSE and classification accuracy.

Structural similarity and n-way identification live in :mod:`braincoder.utils.metrics`
(:func:`~braincoder.utils.metrics.ssim`, :func:`~braincoder.utils.metrics.n_way_identification`).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from .metrics import pearson_per_sample

__all__ = ["pixel_correlation", "mse", "classification_accuracy"]


def _images(values, what):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"{what} must have shape (n_images, ...), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds {int((~np.isfinite(array)).sum())} non-finite values")
    return array.reshape(len(array), -1)


def _pair(true, pred):
    true = _images(true, "true")
    pred = _images(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"shapes differ: true {true.shape}, pred {pred.shape} (flattened)")
    return true, pred


def pixel_correlation(true, pred):
    """Pearson correlation between each true image and its reconstruction.

    Parameters
    ----------
    true, pred : array-like, shape (n_images, height, width)
        True and reconstructed images (any trailing shape; flattened per image).

    Returns
    -------
    ndarray, shape (n_images,)
        Correlation per image (NaN for a constant image).

    Raises
    ------
    ValueError
        For different shapes or non-finite values.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils import pixel_correlation
    >>> x = np.random.default_rng(0).random((2, 4, 4))
    >>> pixel_correlation(x, 2 * x).round(6).tolist()
    [1.0, 1.0]
    """
    true, pred = _pair(true, pred)
    return pearson_per_sample(true, pred)


def mse(true, pred):
    """Mean squared pixel error of each reconstruction.

    Parameters
    ----------
    true, pred : array-like, shape (n_images, height, width)
        True and reconstructed images.

    Returns
    -------
    ndarray, shape (n_images,)
        Mean over pixels of the squared difference.

    Raises
    ------
    ValueError
        For different shapes or non-finite values.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils import mse
    >>> mse(np.zeros((1, 2, 2)), np.ones((1, 2, 2))).tolist()
    [1.0]
    """
    true, pred = _pair(true, pred)
    return ((true - pred) ** 2).mean(axis=1)


def _fit_logistic(features, labels, l2):
    """Multinomial logistic regression with an L2 penalty on the weights (not intercepts).

    Minimises ``sum_i -log p(y_i | x_i) + l2 / 2 · ||W||²`` with L-BFGS. Returns the classes,
    the weights (n_features, n_classes) and the intercepts (n_classes,). With two classes the
    model is the usual binary logistic regression (one weight vector for the second class).
    """
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"labels must hold at least two classes, found {list(classes)}")
    n, p = features.shape
    n_out = 1 if len(classes) == 2 else len(classes)

    def loss(theta):
        weights = theta[: p * n_out].reshape(p, n_out)
        bias = theta[p * n_out :]
        logits = features @ weights + bias
        if n_out == 1:
            z = logits[:, 0]
            value = np.sum(np.logaddexp(0.0, z) - codes * z)
            grad_logits = (special.expit(z) - codes)[:, None]
        else:
            log_p = logits - special.logsumexp(logits, axis=1, keepdims=True)
            value = -log_p[np.arange(n), codes].sum()
            grad_logits = np.exp(log_p)
            grad_logits[np.arange(n), codes] -= 1.0
        value += 0.5 * l2 * np.sum(weights**2)
        grad_w = features.T @ grad_logits + l2 * weights
        grad_b = grad_logits.sum(axis=0)
        return value, np.concatenate([grad_w.ravel(), grad_b])

    theta0 = np.zeros(p * n_out + n_out)
    result = optimize.minimize(
        loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-8}
    )
    theta = result.x
    return classes, theta[: p * n_out].reshape(p, n_out), theta[p * n_out :]


def _predict_logistic(features, classes, weights, bias):
    logits = features @ weights + bias
    if weights.shape[1] == 1:
        return classes[(logits[:, 0] > 0).astype(int)]
    return classes[np.argmax(logits, axis=1)]


def classification_accuracy(train_images, train_labels, reconstructions, labels, l2=1.0):
    """Accuracy of a classifier trained on true images and applied to reconstructions.

    A logistic regression (multinomial for more than two classes; L2 penalty ``l2`` on the
    weights; pixels standardised with the training images' mean and standard deviation) is
    fitted on ``train_images`` and their labels, then predicts the class of each
    reconstruction. For the 6-versus-9 experiment, chance is 0.5.

    Parameters
    ----------
    train_images : array-like, shape (n_train, height, width)
        True images to train the classifier (e.g. the training stimuli).
    train_labels : array-like, shape (n_train,)
        Their classes.
    reconstructions : array-like, shape (n_images, height, width)
        Reconstructed images to classify.
    labels : array-like, shape (n_images,)
        True classes of the reconstructed images.
    l2 : float, default 1.0
        Penalty on the weights (larger is simpler).

    Returns
    -------
    float
        Fraction of reconstructions assigned their true class.

    Raises
    ------
    ValueError
        For mismatched lengths or pixel counts, non-finite values, fewer than two classes,
        or a negative ``l2``.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils import classification_accuracy
    >>> images = np.zeros((4, 2, 2)); images[2:, 0, 0] = 1.0
    >>> classification_accuracy(images, [6, 6, 9, 9], images[::-1], [9, 9, 6, 6])
    1.0
    """
    train = _images(train_images, "train_images")
    recon = _images(reconstructions, "reconstructions")
    train_labels = np.asarray(train_labels)
    labels = np.asarray(labels)
    if len(train_labels) != len(train):
        raise ValueError(
            f"train_labels has {len(train_labels)} entries for {len(train)} train_images"
        )
    if len(labels) != len(recon):
        raise ValueError(f"labels has {len(labels)} entries for {len(recon)} reconstructions")
    if train.shape[1] != recon.shape[1]:
        raise ValueError(
            f"reconstructions have {recon.shape[1]} pixels, train_images {train.shape[1]}"
        )
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    classes, weights, bias = _fit_logistic((train - mean) / scale, train_labels, l2)
    predicted = _predict_logistic((recon - mean) / scale, classes, weights, bias)
    return float(np.mean(predicted == labels))
