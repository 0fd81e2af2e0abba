"""Tests of the image-fMRI simulator, the VAE-GAN, its trainer and the linear baselines."""

import glob
import os

import numpy as np
import pandas as pd
import pytest

from braincoder.datasets import simulate_image_fmri, split_image_fmri
from braincoder.models import GaussianPRF2D, get_model
from braincoder.models.deep import VAEGAN, fMRIEncoder
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import pixel_correlation

TINY = dict(latent_dim=4, filters=(4, 8))


@pytest.fixture(scope="module")
def sim():
    return simulate_image_fmri(n_voxels_per_area=(30, 20, 10), seed=1)


@pytest.fixture(scope="module")
def small(sim):
    return sim.subset(np.arange(48))


def _train(small, seed=0, log_dir=None, epochs=(3, 3, 2)):
    model = VAEGAN(seed=seed, **TINY)
    trainer = VAEGANTrainer(model, log_dir=log_dir, seed=seed)
    fit = dict(progressbar=False, batch_size=16)
    h1 = trainer.fit_vae_gan(small.images, epochs=epochs[0], learning_rate=3e-3, **fit)
    h2 = trainer.fit_fmri_encoder(small.responses, small.images, epochs=epochs[1],
                                  image_weight=1.0, **fit)
    h3 = trainer.fit_generator(small.responses, small.images, epochs=epochs[2],
                               learning_rate=2e-3, **fit)
    return model, trainer, (h1, h2, h3)


@pytest.fixture(scope="module")
def trained(small):
    return _train(small, epochs=(8, 15, 10))


# --------------------------------------------------------------------------- simulator


def test_simulator_structure(sim):
    assert sim.images.shape == (361, 28, 28)
    assert sim.images.min() >= 0 and sim.images.max() <= 1
    assert set(sim.labels.unique()) == {6, 9}
    assert sim.responses.index.name == "trial"
    assert list(sim.responses.columns[:2]) == ["V1_0001", "V1_0002"]
    assert sim.responses.shape == (361, 60)
    sd = sim.parameters["sd"].groupby(sim.areas).mean()
    assert sd["V1"] < sd["V2"] < sd["V3"]
    train, test = split_image_fmri(sim)
    assert (len(train.images), len(test.images)) == (90, 10)
    assert (test.labels == 6).sum() == 5
    assert not set(train.responses.index) & set(test.responses.index)
    train, test = split_image_fmri(sim, "large")
    assert len(train.images) + len(test.images) == 361 and len(test.images) == 72


def test_simulator_bad_input():
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        simulate_image_fmri(images=np.full((3, 8, 8), 2.0), n_voxels_per_area=(2, 2, 2))
    with pytest.raises(ValueError, match="images must have shape"):
        simulate_image_fmri(images=np.zeros((3, 8)), n_voxels_per_area=(2, 2, 2))
    with pytest.raises(ValueError, match="areas must be among"):
        simulate_image_fmri(areas=("V1", "V9", "V3"))
    with pytest.raises(TypeError, match="unexpected keyword"):
        simulate_image_fmri(n_voxel=3)
    with pytest.raises(ValueError, match="setting must be"):
        split_image_fmri(simulate_image_fmri(n_voxels_per_area=(2, 2, 2)), "huge")
    with pytest.raises(ValueError, match=r"n_trials \(400\) exceeds the 361"):
        simulate_image_fmri(n_voxels_per_area=(2, 2, 2), n_trials=400)


def test_simulator_n_trials_and_noise(sim):
    sub = simulate_image_fmri(n_voxels_per_area=(30, 20, 10), seed=1, n_trials=50)
    assert sub.images.shape == (50, 28, 28) and sub.responses.shape == (50, 60)
    # The subset holds distinct default images, each paired with its own label.
    flat = sim.images.reshape(361, -1)
    rows = [int(np.flatnonzero((flat == image.ravel()).all(axis=1))[0]) for image in sub.images]
    assert len(set(rows)) == 50 and rows == sorted(rows)
    np.testing.assert_array_equal(sub.labels.to_numpy(), sim.labels.to_numpy()[rows])
    pd.testing.assert_frame_equal(sub.parameters, sim.parameters)
    # Noise-free responses are the pRF model's block average; noise has sd = signal sd / snr.
    clean = simulate_image_fmri(n_voxels_per_area=(30, 20, 10), seed=1, snr=np.inf)
    noisy = simulate_image_fmri(n_voxels_per_area=(30, 20, 10), seed=1, snr=2.0)
    ratio = (noisy.responses - clean.responses).std() / clean.responses.std()
    assert ratio.mean() == pytest.approx(0.5, rel=0.1)


# --------------------------------------------------------------------------- training


def test_each_stage_lowers_its_loss(trained):
    _, _, (h1, h2, h3) = trained
    assert h1["pixel_loss"].iloc[-1] < h1["pixel_loss"].iloc[0]
    assert h1["loss"].iloc[-1] < h1["loss"].iloc[0]
    assert h2["latent_loss"].iloc[-1] < 0.8 * h2["latent_loss"].iloc[0]
    assert h2["image_loss"].iloc[-1] < h2["image_loss"].iloc[0]
    assert h3["loss"].iloc[-1] < h3["loss"].iloc[0]
    assert {"kl_loss", "feature_loss", "discriminator_loss", "val_pcc"} <= set(h1.columns)
    assert {"adversarial_loss", "latent_discriminator_loss"} <= set(h2.columns)


def test_reconstruct_output(trained, sim):
    model, trainer, _ = trained
    fmri = sim.responses.iloc[50:55]
    images, frame = model.reconstruct(fmri)
    assert images.shape == (5, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert frame.index.equals(fmri.index) and frame.shape == (5, 784)
    np.testing.assert_array_equal(frame.to_numpy().reshape(5, 28, 28), images)
    assert set(trainer.samples_per_second) == {"vae_gan", "fmri_encoder", "generator"}


def test_deterministic_with_seed(small, sim):
    fmri = sim.responses.iloc[60:63]
    a, _, (ha, *_) = _train(small, seed=3, epochs=(1, 2, 1))
    b, _, (hb, *_) = _train(small, seed=3, epochs=(1, 2, 1))
    pd.testing.assert_frame_equal(ha, hb)
    np.testing.assert_array_equal(a.reconstruct(fmri)[0], b.reconstruct(fmri)[0])


def test_save_load_identical(trained, sim, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "vg")
    assert sorted(os.listdir(tmp_path / "vg")) == [
        "discriminator.keras", "fmri_encoder.keras", "generator.keras", "image_encoder.keras",
        "vae_gan.json",
    ]
    loaded = VAEGAN.load(tmp_path / "vg")
    fmri = sim.responses.iloc[100:104]
    np.testing.assert_array_equal(model.reconstruct(fmri)[0], loaded.reconstruct(fmri)[0])
    assert loaded.fmri_encoder.voxel_names.equals(model.fmri_encoder.voxel_names)
    assert isinstance(get_model("vae_gan", **TINY), VAEGAN)


def test_early_stopping_restores_best(small, sim):
    model = VAEGAN(seed=0, **TINY)
    trainer = VAEGANTrainer(model, seed=0)
    trainer.fit_vae_gan(small.images, epochs=2, progressbar=False, validation_split=0)
    val = (sim.responses.iloc[300:320], sim.images[300:320])
    history = trainer.fit_fmri_encoder(small.responses, small.images, epochs=6,
                                       validation_data=val, early_stopping_patience=2,
                                       progressbar=False, learning_rate=3e-2)
    pcc = np.nanmean(pixel_correlation(val[1], model.reconstruct(val[0])[0]))
    assert pcc == pytest.approx(history["val_pcc"].max(), abs=1e-5)


def test_tensorboard_scalars_and_images(small, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, trainer, _ = _train(small, log_dir=tmp_path, epochs=(1, 1, 1))
    for stage in ("vae_gan", "fmri_encoder", "generator"):
        run = trainer.run_dirs[stage]
        scalars = set()
        for path in glob.glob(os.path.join(run, "train", "events.*")):
            acc = EventAccumulator(path, size_guidance={"tensors": 0})
            acc.Reload()
            scalars |= set(acc.Tags()["tensors"])
        assert "epoch_loss" in scalars
        images = set()
        for path in glob.glob(os.path.join(run, "images", "events.*")):
            acc = EventAccumulator(path, size_guidance={"tensors": 0, "images": 0})
            acc.Reload()
            images |= set(acc.Tags()["tensors"]) | set(acc.Tags()["images"])
        assert f"{stage}/reconstructions" in images


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_before_training(trained, small, sim):
    model, trainer, _ = trained
    with pytest.raises(ValueError, match="data has 59 voxels but the fMRI encoder expects 60"):
        model.reconstruct(sim.responses.iloc[:3, :59])
    renamed = sim.responses.iloc[:3].rename(columns={"V1_0001": "V9_0001"})
    with pytest.raises(ValueError, match="V9_0001"):
        model.reconstruct(renamed)
    nan = sim.responses.iloc[:3].copy()
    nan.iloc[1, 2] = np.nan
    with pytest.raises(ValueError, match="V1_0003"):
        model.reconstruct(nan)
    with pytest.raises(ValueError, match="images must have shape"):
        trainer.fit_vae_gan(np.zeros((4, 20, 20)), epochs=1, progressbar=False)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        trainer.fit_vae_gan(small.images * 3, epochs=1, progressbar=False)
    with pytest.raises(ValueError, match="non-finite"):
        trainer.fit_vae_gan(np.full((4, 28, 28), np.nan), epochs=1, progressbar=False)
    with pytest.raises(ValueError, match="fmri has 48 trials but images has 47"):
        trainer.fit_generator(small.responses, small.images[:47], epochs=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        trainer.fit_vae_gan(small.images, epoch=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        VAEGAN(latent=3)
    with pytest.raises(RuntimeError, match="fit_fmri_encoder first"):
        VAEGANTrainer(VAEGAN(**TINY)).fit_generator(small.responses, small.images)
    with pytest.raises(ValueError, match="latent has 4"):
        VAEGANTrainer(VAEGAN(**TINY), fmri_encoder=fMRIEncoder(60, 5))


# --------------------------------------------------------------------------- baselines


def test_baselines_beat_chance(sim):
    train, test = split_image_fmri(sim, "reference")
    ridge = get_model("ridge_image_decoder").fit(train.responses, train.images)
    images, frame = ridge.reconstruct(test.responses)
    assert isinstance(ridge, RidgeImageDecoder) and frame.index.equals(test.responses.index)
    assert np.nanmean(pixel_correlation(test.images, images)) > 0.3
    prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
    prf.fit(train.responses, train.images)
    images, _ = prf.reconstruct(test.responses)
    assert images.min() >= 0 and images.max() <= 1
    assert np.nanmean(pixel_correlation(test.images, images)) > 0.3
    # Shuffled pairing: reconstructions of other trials correlate less with each image.
    assert np.nanmean(pixel_correlation(test.images, images)) > np.nanmean(
        pixel_correlation(test.images, images[::-1])
    ) or len(set(test.labels)) == 1
    with pytest.raises(ValueError, match="missing"):
        prf.reconstruct(test.responses.rename(columns={"V2_0001": "x"}))
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeImageDecoder().reconstruct(test.responses)


def _laplacian_reference(n):
    """Graph Laplacian of the n × n 4-neighbour grid (same as the mirrored 5-point stencil)."""
    lap = np.zeros((n * n, n * n))
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                if 0 <= i + di < n and 0 <= j + dj < n:
                    lap[i * n + j, i * n + j] -= 1
                    lap[i * n + j, (i + di) * n + j + dj] += 1
    return lap


@pytest.mark.parametrize("prior_mean", ["zero", "training"])
def test_prf_inversion_matches_closed_form(sim, prior_mean):
    train = sim.subset(np.arange(100))
    model = GaussianPRF2D(sim.grid_coordinates)
    prf = PRFInversionDecoder(model, sim.parameters, smoothness=3.0, l2=0.5,
                              prior_mean=prior_mean).fit(train.responses, train.images)
    assert prf.cv_mse is None and (prf.chosen_smoothness, prf.chosen_l2) == (3.0, 0.5)
    # Gain and baseline: per-voxel least squares of the responses on the drive R0 x.
    rf = model.get_rf(parameters=sim.parameters)  # units × pixels
    x = train.images.reshape(100, -1)
    y = train.responses.to_numpy()
    for v in (0, 30, 59):
        slope, intercept = np.polyfit(x @ rf[v], y[:, v], 1)
        assert prf.gain.iloc[v] == pytest.approx(slope, rel=1e-6)
        assert prf.baseline.iloc[v] == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    r = prf.gain.to_numpy()[:, None] * rf
    s_inv = np.diag(1 / prf.noise_variance.to_numpy())
    lap = _laplacian_reference(28)
    a = r.T @ s_inv @ r + 3.0 * lap.T @ lap + 0.5 * np.eye(784)
    m = x.mean(axis=0) if prior_mean == "training" else np.zeros(784)
    y_new = sim.responses.iloc[200:202].to_numpy() - prf.baseline.to_numpy() - r @ m
    expected = np.clip(m + np.linalg.solve(a, r.T @ s_inv @ y_new.T).T, 0, 1)
    np.testing.assert_allclose(prf.reconstruct(sim.responses.iloc[200:202])[0].reshape(2, -1),
                               expected, atol=1e-8)


def test_prf_inversion_cross_validation_picks_best_pair(sim):
    train, test = split_image_fmri(sim, "reference")
    model = GaussianPRF2D(sim.grid_coordinates)
    prf = PRFInversionDecoder(model, sim.parameters, smoothness=(0.0, 10.0), l2=(0.1, 1e4),
                              cv=3).fit(train.responses, train.images)
    assert prf.cv_mse.shape == (2, 2)
    best = prf.cv_mse.stack().idxmin()
    assert (prf.chosen_smoothness, prf.chosen_l2) == best
    assert best[1] == 0.1  # a huge ridge precision returns the mean image: never best
    single = PRFInversionDecoder(model, sim.parameters, smoothness=best[0], l2=best[1])
    single.fit(train.responses, train.images)
    np.testing.assert_allclose(prf.reconstruct(test.responses)[0],
                               single.reconstruct(test.responses)[0])
    with pytest.raises(ValueError, match="l2 must be one or more finite values >= 0"):
        PRFInversionDecoder(model, sim.parameters, l2=-1.0)
    with pytest.raises(ValueError, match="singular"):
        PRFInversionDecoder(model, sim.parameters.iloc[:3], smoothness=0.0, l2=0.0).fit(
            train.responses.iloc[:, :3], train.images
        )


# --------------------------------------------------------------------------- augmentation


def test_augment_images_shape_range_and_seed(small):
    from braincoder.models.deep._vae_gan_parts import augment_images

    images = small.images[:6]
    out = augment_images(images, copies=2, max_shift=2, max_rotation=10.0, seed=0)
    assert out.shape == (12, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    # Copies differ from their originals but keep most of the ink.
    assert np.abs(out - np.tile(images, (2, 1, 1))).mean() > 0.01
    assert out.sum() == pytest.approx(2 * images.sum(), rel=0.15)
    np.testing.assert_array_equal(out, augment_images(images, copies=2, seed=0))
    assert not np.array_equal(out, augment_images(images, copies=2, seed=1))
    # No shift and no rotation: exact copies.
    same = augment_images(images, copies=1, max_shift=0, max_rotation=0.0)
    np.testing.assert_allclose(same, images, atol=1e-6)
    # A pure one-pixel shift moves the image's centre of mass by at most one pixel.
    shifted = augment_images(images, copies=1, max_shift=1, max_rotation=0.0, seed=0)
    rows = np.arange(28)[None, :, None]
    com = lambda x: (x * rows).sum(axis=(1, 2)) / x.sum(axis=(1, 2))  # noqa: E731
    assert np.all(np.abs(com(shifted) - com(images)) <= 1.0 + 1e-6)
    with pytest.raises(ValueError, match="copies must be an integer >= 0"):
        augment_images(images, copies=-1)
    with pytest.raises(ValueError, match="max_rotation"):
        augment_images(images, max_rotation=400)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        augment_images(images * 2)


def test_fit_vae_gan_augmentation(small):
    def run(**kwargs):
        model = VAEGAN(seed=0, **TINY)
        trainer = VAEGANTrainer(model, seed=0)
        history = trainer.fit_vae_gan(small.images, epochs=1, progressbar=False,
                                      batch_size=16, **kwargs)
        return model, trainer, history

    model, trainer, history = run(augment_copies=2)
    plain, _, _ = run()
    assert trainer.samples_per_second["vae_gan"] > 0 and len(history) == 1
    # Augmented copies change what is learnt; the run stays deterministic with a seed.
    assert not np.array_equal(model.encode(small.images[:3]), plain.encode(small.images[:3]))
    model_b, _, history_b = run(augment_copies=2)
    pd.testing.assert_frame_equal(history, history_b)
    np.testing.assert_array_equal(model.encode(small.images[:3]), model_b.encode(small.images[:3]))
    trainer = VAEGANTrainer(VAEGAN(**TINY))
    with pytest.raises(ValueError, match="augment_copies must be an integer >= 0"):
        trainer.fit_vae_gan(small.images, augment_copies=1.5)
    with pytest.raises(ValueError, match="augment_shift"):
        trainer.fit_vae_gan(small.images, augment_copies=1, augment_shift=28)
    with pytest.raises(ValueError, match="augment_rotation"):
        trainer.fit_vae_gan(small.images, augment_copies=1, augment_rotation=-1.0)


def test_ridge_init_matches_closed_form(small, sim):
    from braincoder.optimize.ridge import fit_ridge

    model = VAEGAN(seed=0, **TINY)
    trainer = VAEGANTrainer(model, fmri_encoder=fMRIEncoder(60, 4, hidden=(), dropout=0.0,
                                                            seed=0), seed=0)
    trainer.fit_vae_gan(small.images, epochs=2, progressbar=False)
    # A tiny learning rate: one epoch barely moves the encoder from its initialisation.
    trainer.fit_fmri_encoder(small.responses, small.images, epochs=1, learning_rate=1e-9,
                             weight_decay=0.0, validation_split=0, ridge_init_alphas=(10.0,),
                             progressbar=False)
    x = small.responses.to_numpy()
    scaled = (x - x.mean(axis=0)) / x.std(axis=0)
    expected = fit_ridge(scaled, model.encode(small.images), alphas=(10.0,)).predict(scaled)
    np.testing.assert_allclose(model.fmri_to_latent(small.responses).to_numpy(), expected,
                               atol=1e-4)
    with pytest.raises(ValueError, match=r"linear fMRI encoder \(hidden=\(\)\)"):
        VAEGANTrainer(VAEGAN(seed=0, **TINY), fmri_encoder=fMRIEncoder(60, 4, hidden=(8,))) \
            .fit_fmri_encoder(small.responses, small.images, ridge_init_alphas=(1.0,))
    with pytest.raises(ValueError, match="ridge_init_alphas must be one or more finite"):
        trainer.fit_fmri_encoder(small.responses, small.images, ridge_init_alphas=(-1.0,))


# --------------------------------------------------------------------------- latent spread


def test_latent_sd_is_validation_rms_residual(trained, small):
    model, trainer, _ = trained
    _, val = trainer._split(len(small.images), 0.1)
    # fit_generator leaves the fMRI encoder untouched, so the stored spread still matches.
    predicted = model.fmri_to_latent(small.responses.iloc[val]).to_numpy()
    residual = predicted - model.encode(small.images[val])
    expected = np.sqrt(np.mean(residual.astype(np.float64) ** 2, axis=0))
    stored = model.fmri_encoder.latent_sd.numpy()
    assert (stored > 0).all()
    np.testing.assert_allclose(stored, expected, rtol=1e-4)


def test_reconstruct_n_samples_averages_latent_draws(trained, sim):
    model, _, _ = trained
    fmri = sim.responses.iloc[50:54]
    plain = model.reconstruct(fmri)[0]
    np.testing.assert_array_equal(model.reconstruct(fmri, n_samples=1, seed=5)[0], plain)
    np.testing.assert_allclose(model.reconstruct(fmri, n_samples=3, sd_scale=0.0)[0], plain,
                               atol=1e-6)
    images, frame = model.reconstruct(fmri, n_samples=6, sd_scale=2.0, seed=1)
    latents = model.fmri_to_latent(fmri).to_numpy()
    sd = model.fmri_encoder.latent_sd.numpy()
    eps = np.random.default_rng(1).standard_normal((6, 4))
    expected = np.mean([model.decode(latents + (2.0 * sd * e).astype(np.float32))
                        for e in eps], axis=0)
    np.testing.assert_allclose(images, expected, atol=1e-6)
    np.testing.assert_array_equal(frame.to_numpy().reshape(images.shape), images)
    assert frame.index.equals(fmri.index)
    np.testing.assert_array_equal(
        images, model.reconstruct(fmri, n_samples=6, sd_scale=2.0, seed=1)[0]
    )
    assert not np.allclose(images, model.reconstruct(fmri, n_samples=6, sd_scale=2.0,
                                                     seed=2)[0])
    # Draws are shared by all trials: a row does not depend on the other rows.
    np.testing.assert_allclose(
        images[2:], model.reconstruct(fmri.iloc[2:], n_samples=6, sd_scale=2.0, seed=1)[0],
        atol=1e-6,
    )


def test_save_load_keeps_latent_sd(trained, sim, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "vg")
    loaded = VAEGAN.load(tmp_path / "vg")
    np.testing.assert_array_equal(loaded.fmri_encoder.latent_sd.numpy(),
                                  model.fmri_encoder.latent_sd.numpy())
    fmri = sim.responses.iloc[100:103]
    np.testing.assert_array_equal(model.reconstruct(fmri, n_samples=4, seed=3)[0],
                                  loaded.reconstruct(fmri, n_samples=4, seed=3)[0])


def test_latent_sd_bad_input(trained, sim):
    model, _, _ = trained
    fmri = sim.responses.iloc[:2]
    for bad in (0, 1.5, True, -2):
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            model.reconstruct(fmri, n_samples=bad)
    for bad in (-0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="sd_scale must be a finite number >= 0"):
            model.reconstruct(fmri, n_samples=2, sd_scale=bad)
    encoder = fMRIEncoder(60, 4, hidden=(), seed=0)
    assert not encoder.latent_sd.numpy().any()
    encoder.set_latent_sd(0.25)
    np.testing.assert_allclose(encoder.latent_sd.numpy(), 0.25)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        encoder.set_latent_sd([0.1, 0.2])
    with pytest.raises(ValueError, match="finite values >= 0"):
        encoder.set_latent_sd([0.1, -0.2, 0.1, 0.1])


def test_fit_generator_latent_noise(small, sim):
    fmri = sim.responses.iloc[200:203]

    def run(noise, zero_sd=False):
        model = VAEGAN(seed=2, **TINY)
        trainer = VAEGANTrainer(model, seed=2)
        trainer.fit_vae_gan(small.images, epochs=1, progressbar=False)
        trainer.fit_fmri_encoder(small.responses, small.images, epochs=1, progressbar=False)
        if zero_sd:
            model.fmri_encoder.set_latent_sd(0.0)
        trainer.fit_generator(small.responses, small.images, epochs=2, latent_noise=noise,
                              early_stopping_patience=None, progressbar=False)
        return model.reconstruct(fmri)[0], trainer

    base, trainer = run(0.0)
    np.testing.assert_array_equal(run(2.0, zero_sd=True)[0], base)  # no spread: no noise
    noisy = run(2.0)[0]
    assert not np.allclose(noisy, base)
    for bad in (-1.0, np.nan, True):
        with pytest.raises(ValueError, match="latent_noise must be a finite number >= 0"):
            trainer.fit_generator(small.responses, small.images, latent_noise=bad)


# --------------------------------------------------------------------------- unpaired prior


def test_load_digit_images_and_exclusion(sim):
    from braincoder.datasets import image_hashes, load_digit_images

    images, labels = load_digit_images()
    assert images.shape == (1797, 28, 28) and set(np.unique(labels)) == set(range(10))
    assert images.min() >= 0 and images.max() <= 1
    # The simulator's stimuli are the bundled 6s and 9s, pixel for pixel.
    sixes_nines, _ = load_digit_images(classes=(6, 9))
    np.testing.assert_array_equal(sixes_nines, sim.images)
    _, test = split_image_fmri(sim, "reference", seed=0)
    kept, _ = load_digit_images(exclude=test.images)
    test_keys = set(image_hashes(test.images))
    assert not test_keys & set(image_hashes(kept))
    n_copies = sum(key in test_keys for key in image_hashes(images))
    assert n_copies >= len(test.images) and len(kept) == len(images) - n_copies
    with pytest.raises(ValueError, match="classes"):
        load_digit_images(classes=(12,))
    with pytest.raises(ValueError, match="exclude must have shape"):
        load_digit_images(exclude=np.zeros((2, 8, 8)))


def test_stage1_unpaired_images_of_another_size(small):
    from braincoder.datasets import image_hashes, load_digit_images

    unpaired, _ = load_digit_images(classes=(0, 1))
    unpaired = unpaired[:100]
    # Paired stimuli repeated among the unpaired images are counted once.
    mixed = np.concatenate([unpaired, small.images[:5]])
    n_distinct = len(set(image_hashes(np.concatenate([small.images, unpaired]))))
    trainer = VAEGANTrainer(VAEGAN(seed=0, **TINY), seed=0)
    history = trainer.fit_vae_gan(small.images, unpaired_images=mixed, epochs=1,
                                  batch_size=32, progressbar=False)
    assert len(history) == 1 and np.isfinite(history.to_numpy()).all()
    assert trainer.n_prior_images == n_distinct > len(small.images)
    # The unpaired images change what is learnt.
    plain = VAEGANTrainer(VAEGAN(seed=0, **TINY), seed=0)
    plain.fit_vae_gan(small.images, epochs=1, batch_size=32, progressbar=False)
    assert plain.n_prior_images == len(small.images)
    assert not np.array_equal(trainer.model.encode(small.images[:3]),
                              plain.model.encode(small.images[:3]))
    with pytest.raises(ValueError, match="unpaired_images must have shape"):
        trainer.fit_vae_gan(small.images, unpaired_images=np.zeros((4, 8, 8)))
    bad = unpaired[:4].copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="unpaired_images hold 1 non-finite"):
        trainer.fit_vae_gan(small.images, unpaired_images=bad)


def test_stage1_refuses_test_stimuli(sim):
    from braincoder.datasets import load_digit_images

    train, test = split_image_fmri(sim, "reference", seed=0)
    everything, _ = load_digit_images()
    trainer = VAEGANTrainer(VAEGAN(seed=0, **TINY), seed=0)
    with pytest.raises(ValueError, match="identical to excluded images"):
        trainer.fit_vae_gan(train.images, unpaired_images=everything,
                            exclude_images=test.images, epochs=1, progressbar=False)
    with pytest.raises(ValueError, match="identical to excluded images"):
        trainer.fit_vae_gan(test.images[:4], exclude_images=test.images[3:], epochs=1,
                            progressbar=False)
    assert trainer.n_prior_images is None  # nothing was trained
    # A float64 copy of a test image with a channel axis is still recognised.
    with pytest.raises(ValueError, match="identical to excluded images"):
        trainer.fit_vae_gan(train.images, unpaired_images=test.images[:1, :, :, None],
                            exclude_images=test.images.astype(np.float64), epochs=1,
                            progressbar=False)


def test_prior_from_many_images_reconstructs_held_out_digits_better():
    from braincoder.datasets import load_digit_images

    images, _ = load_digit_images()
    order = np.random.default_rng(0).permutation(len(images))
    held_out, pool = images[order[:100]], images[order[100:]]
    scores = {}
    # The same number of gradient steps (3000 images seen) from 20 or 1000 images.
    for n_images, epochs in ((20, 150), (1000, 3)):
        model = VAEGAN(latent_dim=8, filters=(8, 16), seed=0)
        VAEGANTrainer(model, seed=0).fit_vae_gan(
            pool[:n_images], epochs=epochs, batch_size=16, learning_rate=3e-3,
            adversarial_weight=0.0, validation_split=0.0, progressbar=False,
        )
        scores[n_images] = np.mean(pixel_correlation(held_out,
                                                     model.reconstruct_images(held_out)))
    assert scores[1000] > scores[20] + 0.02


def test_split_n_train_nested_with_fixed_test(sim):
    _, test = split_image_fmri(sim, "reference", seed=2)
    reference_train, _ = split_image_fmri(sim, "reference", seed=2)
    trains = {}
    for n_train in (50, 90, 300):
        trains[n_train], test_n = split_image_fmri(sim, "reference", seed=2, n_train=n_train)
        assert len(trains[n_train].images) == n_train
        pd.testing.assert_index_equal(test_n.responses.index, test.responses.index)
        assert not set(trains[n_train].responses.index) & set(test.responses.index)
    pd.testing.assert_index_equal(trains[90].responses.index, reference_train.responses.index)
    assert set(trains[50].responses.index) <= set(trains[90].responses.index) \
        <= set(trains[300].responses.index)
    with pytest.raises(ValueError, match="n_train must be an integer in"):
        split_image_fmri(sim, "reference", seed=2, n_train=352)
    with pytest.raises(ValueError, match="n_train must be an integer in"):
        split_image_fmri(sim, "large", seed=2, n_train=300)


def test_fit_blend_picks_best_validation_weight_and_blends(small, sim, tmp_path):
    model, trainer, _ = _train(small, seed=3, epochs=(2, 3, 2))
    alphas = (1.0, 100.0, 1e4)
    held = sim.subset(np.arange(60, 70))
    generated = model.reconstruct(held.responses)[0]
    history = trainer.fit_blend(small.responses, small.images, alphas=alphas)
    # Scores recomputed by hand on the same validation trials (the fMRI stages' split).
    train_idx, val_idx = trainer._split(len(small.images), 0.1)
    ridge = RidgeImageDecoder(alphas=alphas).fit(small.responses.iloc[train_idx],
                                                 small.images[train_idx])
    linear = ridge.reconstruct(small.responses.iloc[val_idx])[0]
    own = model.generator.predict(np.asarray(model.fmri_to_latent(
        small.responses.iloc[val_idx])), verbose=0).reshape(linear.shape)
    expected = [np.nanmean(pixel_correlation(small.images[val_idx], w * own + (1 - w) * linear))
                for w in history.index]
    np.testing.assert_allclose(history["val_pcc"], expected, rtol=1e-4, atol=1e-5)
    assert model.blend_weight == history.index[int(np.argmax(history["val_pcc"]))]
    # The final ridge decoder uses every trial; reconstruct applies the convex combination.
    full = RidgeImageDecoder(alphas=alphas).fit(small.responses, small.images)
    w = model.blend_weight
    np.testing.assert_allclose(model.reconstruct(held.responses)[0],
                               w * generated + (1 - w) * full.reconstruct(held.responses)[0],
                               atol=1e-5)
    model.save(tmp_path / "blended")
    loaded = VAEGAN.load(tmp_path / "blended")
    assert loaded.blend_weight == w
    np.testing.assert_allclose(loaded.reconstruct(held.responses)[0],
                               model.reconstruct(held.responses)[0], atol=1e-6)
    # Weight 0 is ridge alone; weight 1 the generator alone.
    trainer.fit_blend(small.responses, small.images, alphas=alphas, weights=[0.0])
    np.testing.assert_allclose(model.reconstruct(held.responses)[0],
                               full.reconstruct(held.responses)[0], atol=1e-5)
    trainer.fit_blend(small.responses, small.images, alphas=alphas, weights=[1.0])
    np.testing.assert_allclose(model.reconstruct(held.responses)[0], generated, atol=1e-6)


def test_fit_blend_bad_input(small):
    trainer = VAEGANTrainer(VAEGAN(seed=0, **TINY), seed=0)
    with pytest.raises(RuntimeError, match="needs an fMRI encoder"):
        trainer.fit_blend(small.responses, small.images)
    trainer.model.fmri_encoder = fMRIEncoder(small.responses.shape[1], 4, hidden=(), seed=0)
    with pytest.raises(ValueError, match=r"weights must be one or more values in \[0, 1\]"):
        trainer.fit_blend(small.responses, small.images, weights=[0.5, 1.5])
    with pytest.raises(ValueError, match="needs validation trials"):
        trainer.fit_blend(small.responses, small.images, validation_split=0.0)


def test_fit_runs_the_documented_recipe(small, sim):
    fitted = VAEGAN(seed=3, **TINY).fit(small.responses, small.images, epochs=(1, 2, 1),
                                        seed=3, progressbar=False)
    model = VAEGAN(seed=3, **TINY)
    trainer = VAEGANTrainer(model, seed=3)
    trainer.fit_vae_gan(small.images, epochs=1, progressbar=False)
    trainer.fit_fmri_encoder(small.responses, small.images, epochs=2, progressbar=False)
    trainer.fit_generator(small.responses, small.images, epochs=1, progressbar=False)
    trainer.fit_blend(small.responses, small.images)
    assert fitted.blend_weight == model.blend_weight
    np.testing.assert_allclose(fitted.reconstruct(sim.responses.iloc[50:60])[0],
                               model.reconstruct(sim.responses.iloc[50:60])[0], atol=1e-5)
