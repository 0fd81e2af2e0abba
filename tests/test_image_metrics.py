"""Tests of the image reconstruction metrics against independent implementations."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from braincoder.utils import classification_accuracy, mse, pixel_correlation
from braincoder.utils.image_metrics import _fit_logistic
from braincoder.utils.metrics import n_way_identification, ssim


def test_pixel_correlation_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    true, pred = rng.random((5, 6, 7)), rng.random((5, 6, 7))
    expected = [np.corrcoef(t.ravel(), p.ravel())[0, 1] for t, p in zip(true, pred, strict=True)]
    np.testing.assert_allclose(pixel_correlation(true, pred), expected, rtol=1e-12)


def test_mse_matches_explicit_loop():
    rng = np.random.default_rng(1)
    true, pred = rng.random((3, 4, 4)), rng.random((3, 4, 4))
    expected = [np.mean((t - p) ** 2) for t, p in zip(true, pred, strict=True)]
    np.testing.assert_allclose(mse(true, pred), expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 20, 24), (2, 9, 10, 11)])
def test_ssim_matches_skimage_2d_and_3d(shape):
    rng = np.random.default_rng(2)
    true = rng.random(shape)
    pred = np.clip(true + 0.2 * rng.normal(size=shape), 0, 1)
    ours = ssim(true, pred, data_range=1.0)
    expected = [
        structural_similarity(t, p, data_range=1.0) for t, p in zip(true, pred, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_two_way_identification_hand_computed():
    true = np.array([[0.0, 1, 2], [2, 1, 0], [0, 2, 1]])
    # Reconstruction 0 resembles 0; 1 resembles 1; 2 resembles 1 better than 2.
    pred = np.array([[0.0, 1, 2], [2, 1, 0], [2, 1, 0.5]])
    sim = np.array([[np.corrcoef(p, t)[0, 1] for t in true] for p in pred])
    wins = sum(sim[i, i] > sim[i, j] for i in range(3) for j in range(3) if i != j)
    assert n_way_identification(true, pred, n=2) == pytest.approx(wins / 6)


def test_logistic_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    y = np.where(x @ [1.0, -2.0, 0.5, 0.0] + 0.3 * rng.normal(size=60) > 0, 9, 6)
    classes, weights, bias = _fit_logistic(x, y, l2=1.0)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(x, y)
    np.testing.assert_allclose(weights[:, 0], ref.coef_[0], atol=1e-4)
    np.testing.assert_allclose(bias, ref.intercept_, atol=1e-4)
    assert list(classes) == [6, 9]


def test_classification_accuracy_perfect_and_flipped():
    rng = np.random.default_rng(4)
    labels = np.repeat([6, 9], 10)
    images = rng.random((20, 5, 5)) * 0.2
    images[labels == 9, :2] += 0.7
    assert classification_accuracy(images, labels, images, labels) == 1.0
    assert classification_accuracy(images, labels, images, 15 - labels) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_correlation(np.zeros((2, 3, 3)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        mse(np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="train_labels has 3 entries"):
        classification_accuracy(np.zeros((2, 2, 2)), [6, 9, 6], np.zeros((1, 2, 2)), [6])
    with pytest.raises(ValueError, match="at least two classes"):
        classification_accuracy(np.zeros((2, 2, 2)), [6, 6], np.zeros((1, 2, 2)), [6])
    with pytest.raises(TypeError, match="unexpected keyword"):
        mse(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), axis=0)
