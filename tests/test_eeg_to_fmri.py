"""Tests of the deep EEG-to-fMRI models, their fitter and the EEG-fMRI simulator."""

import glob
import os

import keras
import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from braincoder.datasets import normalize_eeg, simulate_eeg_fmri
from braincoder.datasets.eeg_fmri import hrf_convolve
from braincoder.models import get_model
from braincoder.models.deep import (
    EEG_to_fMRI,
    LinearClassifier,
    fMRI_AE,
    view_EEG_classifier,
)
from braincoder.models.deep.eeg_to_fmri import gaussian_nll
from braincoder.optimize import DeepFitter
from braincoder.optimize.ridge import fit_ridge
from braincoder.utils.metrics import pearson_per_sample

VOLUME = (8, 8, 8)
EEG_SHAPE = (16, 8, 4)
LATENT = (2, 2, 2)
AE_SPEC = ([(3, 3, 3), (3, 3, 3)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (2, 2, 2))
EEG_SPEC = ([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1))
QUIET = dict(progressbar=False, log_dir=False, batch_size=32, learning_rate=3e-3)


def _voxel_r(true, pred):
    true = true.reshape(len(true), -1) - true.reshape(len(true), -1).mean(0)
    pred = pred.reshape(len(pred), -1) - pred.reshape(len(pred), -1).mean(0)
    return np.mean((true * pred).sum(0) / np.sqrt((true**2).sum(0) * (pred**2).sum(0)))


def _ae(**kwargs):
    return fMRI_AE(LATENT, VOLUME, None, None, 4, seed=0, na_spec=AE_SPEC, **kwargs)


def _eeg_model(**kwargs):
    options = dict(seed=0, fmri_args=(LATENT, VOLUME))
    options.update(kwargs)
    return EEG_to_fMRI(LATENT, EEG_SHAPE, EEG_SPEC, 8, **options)


@pytest.fixture(scope="module")
def data():
    sim = simulate_eeg_fmri(
        n_subjects=4, n_volumes=200, n_channels=16, n_freqs=8, n_windows=4,
        volume_shape=VOLUME, seed=0,
    )
    scale = sim.volumes.std()
    train = sim.subjects < 3
    return dict(
        sim=sim, eeg=normalize_eeg(sim.eeg, sim.subjects), volumes=sim.volumes / scale,
        clean=sim.clean_volumes / scale, train=train, test=~train,
    )


@pytest.fixture(scope="module")
def trained(data):
    train = data["train"]
    ae = _ae()
    ae_history = DeepFitter(ae, data["volumes"][train], data["volumes"][train]).fit(
        epochs=15, **QUIET
    )
    model = _eeg_model()
    history = DeepFitter(model, data["eeg"][train], data["volumes"][train]).fit(
        epochs=20, latent_target=ae, **QUIET
    )
    return dict(ae=ae, ae_history=ae_history, model=model, history=history)


# --------------------------------------------------------------------------- simulator


def test_simulator_shapes_and_labels(data):
    sim = data["sim"]
    assert sim.eeg.shape == (800, *EEG_SHAPE) and np.all(sim.eeg > 0)
    assert sim.volumes.shape == (800, *VOLUME, 1)
    assert sim.bold.shape == (800, 512) and sim.bold.index.names == ["subject", "volume"]
    np.testing.assert_array_equal(sim.bold.to_numpy(), sim.volumes.reshape(800, -1))
    assert set(np.unique(sim.labels)) == {0, 1}
    # Noise level follows the SNR.
    noise = sim.volumes - sim.clean_volumes
    assert abs(sim.clean_volumes.std() / noise.std() - 2.0) < 0.1


# --------------------------------------------------------------------------- training


def test_autoencoder_reconstructs_held_out_volumes(data, trained):
    test = data["test"]
    history = trained["ae_history"]
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    recon = trained["ae"].predict(data["volumes"][test]).to_numpy()
    r_clean = pearson_per_sample(data["clean"][test].reshape(test.sum(), -1), recon)
    assert np.mean(r_clean) > 0.9


def test_deep_model_beats_ridge_and_shuffled_control(data, trained):
    train, test = data["train"], data["test"]
    sim, eeg, volumes = data["sim"], data["eeg"], data["volumes"]
    deep_r = _voxel_r(volumes[test], trained["model"].predict(eeg[test]).to_numpy())
    current = eeg[..., 0].reshape(len(eeg), -1)
    features = np.concatenate(
        [hrf_convolve(current[sim.subjects == s], sim.tr) for s in range(4)]
    )
    targets = volumes.reshape(len(volumes), -1)
    alphas = (1.0, 10.0, 100.0, 1000.0)
    ridge = fit_ridge(features[train], targets[train], alphas=alphas, cv=3)
    ridge_r = _voxel_r(targets[test], ridge.predict(features[test]))
    shuffled = np.random.default_rng(0).permutation(features[train])
    control = fit_ridge(shuffled, targets[train], alphas=alphas, cv=3)
    control_r = _voxel_r(targets[test], control.predict(features[test]))
    assert deep_r > ridge_r + 0.05
    assert ridge_r > control_r + 0.2
    assert abs(control_r) < 0.1


def test_deterministic_with_seed(data):
    eeg, volumes = data["eeg"][:64], data["volumes"][:64]
    losses = []
    for _ in range(2):
        model = _eeg_model(dropout=True)
        history = DeepFitter(model, eeg, volumes).fit(epochs=2, seed=3, **QUIET)
        losses.append(history.to_numpy())
    np.testing.assert_array_equal(losses[0], losses[1])


def test_tensorboard_scalars_and_image(data, tmp_path):
    model = _eeg_model()
    fitter = DeepFitter(model, data["eeg"][:48], data["volumes"][:48])
    fitter.fit(epochs=2, progressbar=False, log_dir=tmp_path, batch_size=16)
    tags = set()
    pattern = os.path.join(fitter.run_dir, "**", "events.out.tfevents*")
    for path in glob.glob(pattern, recursive=True):
        accumulator = EventAccumulator(path, size_guidance={"tensors": 0, "images": 0})
        accumulator.Reload()
        found = accumulator.Tags()
        tags.update(found["tensors"] + found["scalars"] + found["images"])
    assert {"epoch_loss", "volume_slice"} <= tags


def test_aleatoric_loss_is_gaussian_nll(data):
    y, mean = np.float32(1.5), np.float32(0.5)
    sigma = np.float32(2.0)
    expected = 0.5 * np.log(2 * np.pi) + np.log(2.0) + 1.0 / 8.0
    assert float(gaussian_nll(y, mean, sigma)) == pytest.approx(expected, rel=1e-6)
    model = _eeg_model(aleatoric_uncertainty=True)
    history = DeepFitter(model, data["eeg"][:64], data["volumes"][:64]).fit(epochs=3, **QUIET)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    sigma = model.predict_outputs(data["eeg"][:4])["sigma"]
    assert sigma.shape == (4, 1) and np.all(sigma > 0)


def test_bayesian_decoder_elbo_and_epistemic_uncertainty(data):
    train = data["train"]
    model = _eeg_model(bayesian_decoder=True)
    eeg, volumes = data["eeg"][train][:96], data["volumes"][train][:96]
    history = DeepFitter(model, eeg, volumes).fit(epochs=4, validation_split=0.0, **QUIET)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    # The KL term is scaled to the negative ELBO per element: 1 / (samples × voxels).
    assert float(model.decoder.kl_factor) == pytest.approx(1 / (96 * 512))
    frame = pd.DataFrame(data["eeg"][:5].reshape(5, -1),
                         index=pd.Index(list("abcde"), name="trial"))
    mean, sd = model.predict_with_uncertainty(frame, n_samples=200)
    assert mean.index.equals(frame.index) and sd.shape == (5, 512)
    # The decoder is linear in its kernel, so the draws average to the posterior-mean
    # prediction and spread as sqrt(sum_i h_i^2 sigma_ij^2) for the decoder's input h.
    point = model.predict(frame)
    latent = model.encode(data["eeg"][:5].astype("float32"))[0]
    hidden = np.asarray(latent).reshape(5, -1)
    scale = np.asarray(model.decoder.kernel_scale)
    expected = np.sqrt((hidden[:, :, None] ** 2 * scale[None] ** 2).sum(axis=1))
    assert np.abs(mean - point).to_numpy().max() < 5 * (expected / np.sqrt(200)).max()
    assert np.median(sd.to_numpy() / expected) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="bayesian_decoder=True"):
        _eeg_model().predict_with_uncertainty(frame)
    with pytest.raises(ValueError, match="n_samples"):
        model.predict_with_uncertainty(frame, n_samples=1)


# --------------------------------------------------------------------------- pandas and saving


def test_predict_keeps_index_and_simulate_adds_noise(data, trained):
    sim = data["sim"]
    frame = pd.DataFrame(data["eeg"][:5].reshape(5, -1), index=sim.index[:5])
    pred = trained["model"].predict(frame)
    assert pred.index.equals(sim.index[:5]) and pred.shape == (5, 512)
    noisy = trained["model"].simulate(frame, noise=0.5, seed=1)
    assert 0.4 < (noisy - pred).to_numpy().std() < 0.6
    labels = trained["model"].get_parameter_labels()
    assert len(labels) == len(trained["model"].weights) and "kernel" in labels[0]
    assert "eeg_latent" in trained["model"].summary()


@pytest.mark.parametrize(
    "flags",
    [{}, dict(inverse_DFT=True, variational_iDFT=True, topographical_attention=True,
              conditional_attention_style=True, fourier_features=True, random_fourier=True),
     dict(bayesian_decoder=True, aleatoric_uncertainty=True)],
)
def test_save_load_identical_predictions(data, trained, tmp_path, flags):
    model = trained["model"] if not flags else _eeg_model(**flags)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = EEG_to_fMRI.load(path)
    eeg = data["eeg"][:6]
    np.testing.assert_array_equal(model.predict(eeg).to_numpy(), loaded.predict(eeg).to_numpy())
    ae_path = tmp_path / "ae.keras"
    trained["ae"].save(ae_path)
    volumes = data["volumes"][:6]
    np.testing.assert_array_equal(
        trained["ae"].predict(volumes).to_numpy(), fMRI_AE.load(ae_path).predict(volumes).to_numpy()
    )
    with pytest.raises(TypeError, match="not a fMRI_AE"):
        fMRI_AE.load(path)


def test_predict_with_voxel_labels(data, trained):
    voxels = data["sim"].bold.columns.map(lambda v: f"vox{v:03d}")
    pred = trained["model"].predict(data["eeg"][:3], voxels=voxels)
    assert pred.columns.equals(voxels)
    np.testing.assert_array_equal(
        pred.to_numpy(), trained["model"].predict(data["eeg"][:3]).to_numpy()
    )
    with pytest.raises(ValueError, match="one label per voxel"):
        trained["model"].predict(data["eeg"][:3], voxels=voxels[:10])


def test_max_pool_flag_switches_pooling_off():
    pooled = _ae()
    unpooled = _ae(max_pool=False)
    assert any("pool" in layer.name for stage in pooled.stages for layer in stage)
    assert not any("pool" in layer.name for stage in unpooled.stages for layer in stage)
    assert unpooled.na_spec[2] is False
    # Without pooling the flattened encoder output is 8x larger (8^3 vs 4^3 voxels).
    assert unpooled.to_latent.kernel.shape[0] == 8 * pooled.to_latent.kernel.shape[0]
    assert fMRI_AE.from_config(unpooled.get_config()).na_spec == unpooled.na_spec


def test_registry_and_locally_connected_variant():
    model = get_model("eeg_to_fmri", latent_shape=LATENT, input_shape=EEG_SHAPE,
                      na_spec=EEG_SPEC, n_channels=2, local=False, fmri_args=(LATENT, VOLUME))
    assert isinstance(model, EEG_to_fMRI)
    assert any("local" in label for label in model.get_parameter_labels())
    assert isinstance(get_model("fmri_ae", latent_shape=LATENT, input_shape=VOLUME), fMRI_AE)


def test_classifiers(data, trained):
    train = data["train"]
    labels = data["sim"].labels
    for clf, inputs in [
        (LinearClassifier(VOLUME, seed=0), data["clean"]),
        (view_EEG_classifier(trained["model"], seed=0), data["eeg"]),
    ]:
        clf.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        keras.utils.set_random_seed(0)
        history = clf.fit(inputs[train], labels[train], epochs=5, batch_size=64, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]
        accuracy = np.mean(clf.classify(inputs[~train]) == labels[~train])
        assert accuracy > 0.6


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "spec, match",
    [
        (([(2, 2, 2)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (1, 1, 1)), "one stride per"),
        (([(2, 2)], [(1, 1, 1)], True, (2, 2, 2), (1, 1, 1)), "kernel size 0 must have length 3"),
        (([(2, 0, 2)], [(1, 1, 1)], True, (2, 2, 2), (1, 1, 1)), "positive integers"),
        (([(3, 3, 3)] * 5, [(1, 1, 1)] * 5, True, (2, 2, 2), (2, 2, 2)), "incompatible with pool"),
        (([(3, 3, 3)], [(1, 1, 1)]), "na_spec must be"),
    ],
)
def test_bad_na_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        fMRI_AE(LATENT, VOLUME, None, None, 4, na_spec=spec)


def test_bad_inputs(data, trained):
    with pytest.raises(TypeError, match="unexpected keyword"):
        _eeg_model(n_layers=3)
    with pytest.raises(ValueError, match="fmri_args must give"):
        EEG_to_fMRI(LATENT, EEG_SHAPE, EEG_SPEC, 4)
    with pytest.raises(ValueError, match="requires fourier_features"):
        _eeg_model(random_fourier=True)
    model = trained["model"]
    eeg, volumes = data["eeg"][:10], data["volumes"][:10]
    with pytest.raises(ValueError, match=r"eeg must have shape \(n_samples, 16, 8, 4\)"):
        DeepFitter(model, eeg[:, :12], volumes)
    with pytest.raises(ValueError, match=r"12 channels \(expected 16\)"):
        DeepFitter(model, eeg[:, :12], volumes)
    with pytest.raises(ValueError, match="eeg must have shape.*rank 3, expected rank 4"):
        DeepFitter(model, eeg[..., 0], volumes)
    bad = eeg.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="eeg has 1 non-finite"):
        DeepFitter(model, bad, volumes)
    with pytest.raises(ValueError, match="eeg has 10 samples but data has 9"):
        DeepFitter(model, eeg, volumes[:9])
    with pytest.raises(ValueError, match="data must be volumes"):
        DeepFitter(model, eeg, volumes[:, :4])
    other = fMRI_AE((3, 3, 3), VOLUME, None, None, 2, na_spec=AE_SPEC)
    with pytest.raises(ValueError, match="latent_shape"):
        DeepFitter(model, eeg, volumes).fit(epochs=1, latent_target=other, **QUIET)
    with pytest.raises(TypeError, match="unexpected keyword"):
        DeepFitter(model, eeg, volumes).fit(epoch=1)
    with pytest.raises(ValueError, match="must end in '.keras'"):
        model.save("model.h5")
