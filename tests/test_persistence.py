"""One save/load for every registered model: header, dispatch, identical predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    EncodingModel,
    HRFEncodingModel,
    get_model_class,
    list_models,
    load_model,
    save_model,
)
from braincoder.models.persistence import HEADER_FILE, read_header
from braincoder.stimuli import make_grid_coordinates

VOXELS = pd.Index(["lh_v1", "rh_v1"], name="roi")
VALUES = {"x": 0.4, "y": -0.3, "sd": 1.2, "baseline": 0.2, "amplitude": 1.5, "mu": 2.0,
          "kappa": 2.0, "srf_amplitude": 0.3, "srf_size": 2.0, "neural_baseline": 1.0,
          "surround_baseline": 1.5}


def _classic(name):
    rng = np.random.default_rng(0)
    cls = get_model_class(name)
    kwargs = {}
    if issubclass(cls, HRFEncodingModel):
        kwargs["hrf_model"] = SPMHRFModel(tr=1.5)
    if "2d" in name:
        kwargs["grid_coordinates"] = make_grid_coordinates(3, extent=2.0)
    model = cls(**kwargs)
    labels = model.get_parameter_labels()
    if name.startswith("linear"):
        paradigm = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
        model.weights = model._format_weights(pd.DataFrame(
            rng.normal(size=(3, 2)), index=pd.Index(["a", "b", "c"], name="feature"),
            columns=VOXELS))
    elif "2d" in name:
        paradigm = rng.uniform(size=(20, 9))
    else:
        paradigm = rng.uniform(0.5, 5.0, size=20)
    if labels:
        values = [[VALUES.get(label, 1.0) * (1 + 0.1 * i) for label in labels] for i in range(2)]
        model.parameters = model._format_parameters(pd.DataFrame(values, index=VOXELS,
                                                                 columns=labels))
    return model, lambda m: m.predict(paradigm).to_numpy()


def _eeg_to_fmri(name):
    from braincoder.models.deep import EEG_to_fMRI

    spec = ([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1))
    model = EEG_to_fMRI((2, 2, 2), (16, 8, 4), spec, 8, seed=0,
                        fmri_args=((2, 2, 2), (8, 8, 8)))
    eeg = np.random.default_rng(0).normal(size=(3, 16, 8, 4)).astype("float32")
    return model, lambda m: m.predict(eeg).to_numpy()


def _fmri_ae(name):
    from braincoder.models.deep import fMRI_AE

    spec = ([(3, 3, 3), (3, 3, 3)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (2, 2, 2))
    model = fMRI_AE((2, 2, 2), (8, 8, 8), None, None, 4, seed=0, na_spec=spec)
    volumes = np.random.default_rng(0).normal(size=(3, 8, 8, 8)).astype("float32")
    return model, lambda m: m.predict(volumes).to_numpy()


def _embedding_sim():
    from braincoder.datasets import simulate_embedding_fmri

    return simulate_embedding_fmri(n_stimuli=20, embedding_dim=4, n_voxels=6, n_clusters=2,
                                   rank=2, seed=0)


def _embedding_decoder(name):
    from braincoder.models.deep import EmbeddingDecoder
    from braincoder.optimize import EmbeddingFitter

    sim = _embedding_sim()
    decoder = EmbeddingDecoder(6, 4, hidden=(8,), dropout=0.0, seed=0)
    EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings).fit(
        epochs=1, batch_size=16, progressbar=False, seed=0)
    return decoder, lambda m: m.predict(sim.test_data).to_numpy()


def _ridge_embedding_decoder(name):
    from braincoder.models.deep import RidgeEmbeddingDecoder

    sim = _embedding_sim()
    decoder = RidgeEmbeddingDecoder(alphas=(1.0, 10.0), cv=2).fit(sim.train_data,
                                                                  sim.train_embeddings)
    return decoder, lambda m: m.predict(sim.test_data).to_numpy()


def _fmri_encoder(name):
    from braincoder.models.deep import fMRIEncoder

    encoder = fMRIEncoder(6, 4, hidden=(5,), seed=0)
    fmri = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    return encoder, lambda m: np.asarray(m(fmri, training=False))


def _vae_gan(name):
    from braincoder.models.deep import VAEGAN, fMRIEncoder

    encoder = fMRIEncoder(6, 4, hidden=(), seed=0)
    model = VAEGAN(latent_dim=4, filters=(4, 8), seed=0, fmri_encoder=encoder)
    fmri = np.random.default_rng(0).normal(size=(3, 6))
    return model, lambda m: m.reconstruct(fmri)[0]


def _image_sim():
    from braincoder.datasets import simulate_image_fmri

    return simulate_image_fmri(n_voxels_per_area=(8, 6, 4), seed=0)


def _ridge_image_decoder(name):
    from braincoder.models.image_decoders import RidgeImageDecoder

    sim = _image_sim()
    decoder = RidgeImageDecoder(alphas=(1.0, 100.0), cv=2).fit(sim.responses[:40],
                                                               sim.images[:40])
    return decoder, lambda m: m.reconstruct(sim.responses[40:44])[1].to_numpy()


def _prf_inversion_decoder(name):
    from braincoder.models import GaussianPRF2D
    from braincoder.models.image_decoders import PRFInversionDecoder

    sim = _image_sim()
    decoder = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters,
                                  smoothness=(0.0, 10.0), l2=1.0, cv=2)
    decoder.fit(sim.responses[:40], sim.images[:40])
    return decoder, lambda m: m.reconstruct(sim.responses[40:44])[1].to_numpy()


BUILDERS = {
    "eeg_to_fmri": _eeg_to_fmri,
    "fmri_ae": _fmri_ae,
    "embedding_decoder": _embedding_decoder,
    "ridge_embedding_decoder": _ridge_embedding_decoder,
    "fmri_encoder": _fmri_encoder,
    "vae_gan": _vae_gan,
    "ridge_image_decoder": _ridge_image_decoder,
    "prf_inversion_decoder": _prf_inversion_decoder,
}


def _build(name):
    cls = get_model_class(name)
    if isinstance(cls, type) and issubclass(cls, EncodingModel):
        return _classic(name)
    return BUILDERS[name](name)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_round_trips(name, tmp_path):
    model, predict = _build(name)
    expected = predict(model)
    folder = save_model(model, tmp_path / name)
    header = read_header(folder)
    assert header["model"] == name
    assert header["braincoder_version"]
    loaded = load_model(folder)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(predict(loaded), expected)
    # The header file also works as the path.
    assert type(load_model(folder / HEADER_FILE)) is type(model)


def test_every_registered_model_has_a_builder():
    classic = {name for name in list_models()
               if issubclass(get_model_class(name), EncodingModel)}
    assert set(list_models()) - classic <= set(BUILDERS)


def test_old_formats_are_read(tmp_path):
    """Files written by the objects' own save methods load without a header."""
    model, predict = _ridge_embedding_decoder("ridge_embedding_decoder")
    model.save(tmp_path / "ridge.json")
    np.testing.assert_array_equal(predict(load_model(tmp_path / "ridge.json")), predict(model))
    ae, predict_ae = _fmri_ae("fmri_ae")
    ae.save(tmp_path / "ae.keras")
    np.testing.assert_array_equal(predict_ae(load_model(tmp_path / "ae.keras")), predict_ae(ae))
    classic, predict_classic = _classic("gaussian_prf")
    classic.save(tmp_path / "classic")
    (tmp_path / "classic" / HEADER_FILE).unlink()
    np.testing.assert_array_equal(predict_classic(load_model(tmp_path / "classic")),
                                  predict_classic(classic))


def test_header_is_checked(tmp_path):
    model, _ = _classic("gaussian_prf")
    folder = save_model(model, tmp_path / "m")
    header = json.loads((folder / HEADER_FILE).read_text())
    (folder / HEADER_FILE).write_text(json.dumps({**header, "format": "pickle"}))
    with pytest.raises(ValueError, match="unknown format 'pickle'"):
        load_model(folder)
    (folder / HEADER_FILE).write_text(json.dumps({**header, "model": "von_mises_prf"}))
    with pytest.raises(TypeError, match="header names 'von_mises_prf'"):
        load_model(folder)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")


def test_image_decoder_methods(tmp_path):
    from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder

    decoder, predict = _ridge_image_decoder("ridge_image_decoder")
    decoder.save(tmp_path / "ridge")
    np.testing.assert_array_equal(predict(RidgeImageDecoder.load(tmp_path / "ridge")),
                                  predict(decoder))
    with pytest.raises(TypeError, match="not a PRFInversionDecoder"):
        PRFInversionDecoder.load(tmp_path / "ridge")
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeImageDecoder().save(tmp_path / "unfitted")
