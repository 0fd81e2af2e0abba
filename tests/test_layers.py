"""Tests of the Keras layers of the deep EEG-to-fMRI models."""

import keras
import numpy as np
import pytest
import scipy.fft
import scipy.special

from braincoder.layers import (
    DCT3D,
    DenseFlipout,
    FourierFeatures,
    LocallyConnected3D,
    RandomFourierFeatures,
    ResBlock3D,
    TopographicalAttention,
    iDCT3D,
    sample_von_mises,
    scale_kl_divergence,
    variational_iDCT3D,
)

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.normal(size=shape).astype("float32")


@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (2, 3, 4, 5, 2)])
def test_dct_matches_scipy_and_inverts(shape):
    x = _x(*shape)
    coefs = keras.ops.convert_to_numpy(DCT3D()(x))
    expected = scipy.fft.dctn(x.astype(float), type=2, norm="ortho", axes=(1, 2, 3))
    np.testing.assert_allclose(coefs, expected, atol=1e-5)
    back = keras.ops.convert_to_numpy(iDCT3D()(coefs))
    np.testing.assert_allclose(back, x, atol=1e-5)


def test_idct_upsampling_is_zero_padded_inverse():
    coefs = _x(2, 3, 4, 2)
    out_shape = (6, 5, 4)
    up = keras.ops.convert_to_numpy(iDCT3D(out_shape, preserve_amplitude=False)(coefs))
    padded = np.zeros((2, *out_shape))
    padded[:, :3, :4, :2] = coefs
    expected = scipy.fft.idctn(padded, type=2, norm="ortho", axes=(1, 2, 3))
    np.testing.assert_allclose(up, expected, atol=1e-5)
    # With amplitude preservation a constant low-resolution volume stays the same constant.
    constant = np.full((1, 3, 4, 2), 2.5, dtype="float32")
    up = iDCT3D(out_shape)(DCT3D()(constant))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(up), 2.5, atol=1e-5)


def test_truncation_and_downsampling_match_scipy():
    x = _x(2, 6, 5, 4, 2)
    full = scipy.fft.dctn(x.astype(float), type=2, norm="ortho", axes=(1, 2, 3))
    # DCT3D(out_shape) keeps the low-frequency corner and zero-pads beyond the input size.
    kept = keras.ops.convert_to_numpy(DCT3D((3, 5, 6))(x))
    expected = np.zeros((2, 3, 5, 6, 2))
    expected[:, :, :, :4] = full[:, :3, :5, :4]
    np.testing.assert_allclose(kept, expected, atol=1e-5)
    # iDCT3D to a smaller shape truncates the coefficients before inverting.
    down = keras.ops.convert_to_numpy(iDCT3D((3, 5, 2), preserve_amplitude=False)(full))
    expected = scipy.fft.idctn(full[:, :3, :5, :2], type=2, norm="ortho", axes=(1, 2, 3))
    np.testing.assert_allclose(down, expected, atol=1e-5)
    constant = np.full((1, 6, 5, 4), -1.5, dtype="float32")
    down = iDCT3D((2, 3, 4))(DCT3D()(constant))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(down), -1.5, atol=1e-5)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="out_shape must be three positive"):
        iDCT3D((2, 2))
    with pytest.raises(ValueError, match="out_shape must be three positive"):
        DCT3D((2, 0, 2))


@pytest.mark.parametrize("kappa", [0.5, 4.0, 50.0])
def test_von_mises_sampler_moments(kappa):
    loc = np.full((20000,), 1.0, dtype="float32")
    samples = keras.ops.convert_to_numpy(
        sample_von_mises(loc, np.float32(kappa), keras.random.SeedGenerator(1))
    )
    assert samples.min() >= -np.pi and samples.max() < np.pi
    resultant = np.mean(np.exp(1j * samples))
    assert abs(np.angle(resultant) - 1.0) < 0.05
    expected_length = scipy.special.i1(kappa) / scipy.special.i0(kappa)
    assert abs(np.abs(resultant) - expected_length) < 0.02


def test_variational_idct_samples_in_training_only():
    layer = variational_iDCT3D((6, 6, 6), (1, 2, 1), seed=0)
    coefs = _x(2, 3, 3, 3)
    inference = keras.ops.convert_to_numpy(layer(coefs, training=False))
    again = keras.ops.convert_to_numpy(layer(coefs, training=False))
    np.testing.assert_array_equal(inference, again)
    # Inference uses the mean direction in the extra coefficients.
    grid = np.tile(keras.ops.convert_to_numpy(layer.loc)[None], (2, 1, 1, 1))
    grid[:, :3, :3, :3] = coefs
    expected = keras.ops.convert_to_numpy(iDCT3D((6, 6, 6))(grid))
    np.testing.assert_allclose(inference, expected, atol=1e-5)
    sampled = keras.ops.convert_to_numpy(layer(coefs, training=True))
    assert not np.allclose(sampled, inference)
    with pytest.raises(ValueError, match="exceed out_shape"):
        variational_iDCT3D((4, 4, 4), (2, 2, 2))(coefs)


def test_locally_connected_matches_loop():
    layer = LocallyConnected3D(3, (2, 3, 2), strides=(2, 1, 1), seed=0)
    x = _x(2, 5, 4, 3, 2)
    out = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    layer.bias.assign(RNG.normal(size=layer.bias.shape))
    out = keras.ops.convert_to_numpy(layer(x))
    bias = keras.ops.convert_to_numpy(layer.bias)
    expected = np.zeros((2, 2, 2, 2, 3))
    location = 0
    for i in range(2):
        for j in range(2):
            for k in range(2):
                patch = x[:, 2 * i : 2 * i + 2, j : j + 3, k : k + 2, :].reshape(2, -1)
                expected[:, i, j, k] = patch @ kernel[location] + bias[location]
                location += 1
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="larger than the input"):
        LocallyConnected3D(2, 4)(_x(1, 3, 3, 3, 1))


def test_random_fourier_features_formula():
    x = _x(5, 3)
    layer = RandomFourierFeatures(4, scale=2.0, seed=7)
    out = keras.ops.convert_to_numpy(layer(x))
    b = np.random.default_rng(7).normal(scale=2.0, size=(3, 4))
    phase = 2 * np.pi * x @ b
    np.testing.assert_allclose(out, np.concatenate([np.cos(phase), np.sin(phase)], 1), atol=1e-4)
    assert not layer.trainable_weights


def test_topographical_attention_scores():
    layer = TopographicalAttention(6, key_dim=4, seed=0)
    x = _x(3, 6, 10)
    out, scores = (keras.ops.convert_to_numpy(v) for v in layer(x))
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, np.einsum("bij,bjf->bif", scores, x), atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        TopographicalAttention(5)(x)


def test_resblock_skip_is_identity_with_zero_kernels():
    block = ResBlock3D(2, 3, batch_norm=False, skip_connections=True, seed=0)
    x = _x(2, 4, 4, 4, 2)
    block(x)
    for weight in block.weights:
        weight.assign(np.zeros(weight.shape))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x)), np.maximum(x, 0), atol=1e-6)
    projected = ResBlock3D(3, 3, strides=2, seed=0)
    assert tuple(projected(x).shape) == (2, 2, 2, 2, 3)


LAYERS = [
    (lambda: DCT3D(), (2, 4, 4, 4)),
    (lambda: DCT3D((2, 3, 5)), (2, 4, 4, 4, 2)),
    (lambda: iDCT3D((6, 5, 4)), (2, 3, 3, 3, 2)),
    (lambda: iDCT3D((2, 5, 3), preserve_amplitude=False), (2, 3, 3, 3)),
    (lambda: variational_iDCT3D((6, 6, 6), (1, 1, 1), dependent=True, dependent_dim=2, seed=1),
     (2, 3, 3, 3)),
    (lambda: FourierFeatures(4, seed=0), (3, 5)),
    (lambda: RandomFourierFeatures(4, seed=3), (3, 5)),
    (lambda: TopographicalAttention(4, key_dim=3, seed=0), (2, 4, 6)),
    (lambda: ResBlock3D(3, 2, strides=(2, 1, 1), seed=0), (2, 4, 4, 4, 2)),
    (lambda: LocallyConnected3D(2, 2, seed=0), (2, 3, 3, 3, 1)),
    (lambda: DenseFlipout(3, activation="tanh", prior_scale=0.5, kl_weight=0.1, seed=2), (4, 5)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_config_round_trip(make, shape):
    layer = make()
    x = _x(*shape)
    out = layer(x)
    for weight in layer.weights:
        weight.assign(weight + RNG.normal(scale=0.1, size=weight.shape).astype("float32"))
    out = layer(x)
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    outs = out if isinstance(out, tuple) else (out,)
    clones = clone(x)
    clones = clones if isinstance(clones, tuple) else (clones,)
    for a, b in zip(outs, clones, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert type(clone).from_config(layer.get_config()).get_config() == layer.get_config()


def test_dense_flipout_moments_match_the_posterior():
    layer = DenseFlipout(3, seed=4)
    x = _x(1, 5)
    layer(x)
    scale = RNG.uniform(0.05, 0.5, size=(5, 3))
    layer.kernel_rho.assign(np.log(np.expm1(scale)).astype("float32"))
    mean = keras.ops.convert_to_numpy(layer(x))
    reference = x @ keras.ops.convert_to_numpy(layer.kernel_loc)
    np.testing.assert_allclose(mean, reference, rtol=1e-5, atol=1e-6)
    draws = np.concatenate([keras.ops.convert_to_numpy(layer(x, sample=True))
                            for _ in range(3000)])
    # Each output is x·w_j with w_ij ~ N(mu_ij, sigma_ij^2): variance sum_i x_i^2 sigma_ij^2.
    variance = (x[0, :, None] ** 2 * scale**2).sum(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - reference[0]) < 4 * np.sqrt(variance / 3000))
    np.testing.assert_allclose(draws.var(axis=0), variance, rtol=0.1)
    # training=True samples too; training=False with sample=False does not.
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), mean)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=True,
                                                                    sample=False)), mean)


def test_dense_flipout_perturbations_differ_across_the_batch():
    layer = DenseFlipout(4, posterior_scale_init=0.5, seed=1)
    x = np.repeat(_x(1, 6), 2, axis=0)
    mean = keras.ops.convert_to_numpy(layer(x))
    draws = np.stack([keras.ops.convert_to_numpy(layer(x, sample=True)) - mean
                      for _ in range(1500)])  # draw × example × unit
    # Two examples with the same input share E but not the sign flips: their perturbations
    # are uncorrelated, each with the posterior variance.
    scale = keras.ops.convert_to_numpy(layer.kernel_scale)
    np.testing.assert_allclose(draws.var(axis=0), np.tile((x[0, :, None] ** 2 * scale**2)
                                                          .sum(axis=0), (2, 1)), rtol=0.15)
    correlation = [np.corrcoef(draws[:, 0, j], draws[:, 1, j])[0, 1] for j in range(4)]
    assert np.max(np.abs(correlation)) < 0.15


def test_dense_flipout_kl_divergence_is_the_gaussian_formula():
    layer = DenseFlipout(2, prior_scale=0.7, posterior_scale_init=0.2, kl_weight=0.25, seed=0)
    layer(_x(3, 4))
    mu = keras.ops.convert_to_numpy(layer.kernel_loc)
    sigma = np.full_like(mu, 0.2)
    expected = np.sum(np.log(0.7 / sigma) + (sigma**2 + mu**2) / (2 * 0.7**2) - 0.5)
    assert float(layer.kl_divergence()) == pytest.approx(expected, rel=1e-5)
    assert float(sum(layer.losses)) == pytest.approx(0.25 * expected, rel=1e-5)
    # kl_weight=None: the factor is set from the number of training elements.
    model = keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=0), DenseFlipout(1)])
    assert scale_kl_divergence(model, 400) == 2
    assert float(model.layers[0].kl_factor) == pytest.approx(1 / 400)
    assert scale_kl_divergence(keras.Sequential([keras.Input((4,)), layer]), 10) == 0
    for kwargs, match in [(dict(units=0), "units"), (dict(units=2, prior_scale=0), "prior_scale"),
                          (dict(units=2, kl_weight=-1), "kl_weight"),
                          (dict(units=2, posterior_scale_init=np.inf), "posterior_scale")]:
        with pytest.raises(ValueError, match=match):
            DenseFlipout(**kwargs)
