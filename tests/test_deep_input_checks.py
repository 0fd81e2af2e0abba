"""Bad input is caught at every public entry point of the deep models and decoders.

For every registered deep model and decoder (and the classifiers), inputs with three
voxels (or channels) too few, and inputs holding NaN, raise a ValueError that names the
expected and the received sizes, from ``predict``/``__call__``/``reconstruct``/``fit``
alike; symbolic Keras tensors still pass through ``__call__`` when models are built.
"""

import keras
import numpy as np
import pandas as pd
import pytest

from braincoder.models.registry import BUILTIN_MODELS, get_model_class

N_VOXELS = 12


def _fmri_encoder():
    from braincoder.models.deep import fMRIEncoder

    return fMRIEncoder(N_VOXELS, 3, hidden=(4,), seed=0)


def _fmri_ae():
    from braincoder.models.deep import fMRI_AE

    return fMRI_AE((2, 2, 2), (4, 4, 4), None, None, 2, seed=0,
                   na_spec=([(3, 3, 3)], [(1, 1, 1)], False, (1, 1, 1), (1, 1, 1)))


def _eeg_to_fmri():
    from braincoder.models.deep import EEG_to_fMRI

    spec = ([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1))
    return EEG_to_fMRI((2, 2, 2), (16, 8, 4), spec, 4, seed=0,
                       fmri_args=((2, 2, 2), (8, 8, 8)))


def _embedding_data():
    from braincoder.datasets import simulate_embedding_fmri

    return simulate_embedding_fmri(n_stimuli=20, embedding_dim=4, n_voxels=N_VOXELS, seed=0)


def _embedding_decoder():
    from braincoder.models.deep import EmbeddingDecoder

    sim = _embedding_data()
    decoder = EmbeddingDecoder(N_VOXELS, 4, hidden=(), seed=0)
    return decoder.fit(sim.train_data, sim.train_embeddings, epochs=1, progressbar=False)


def _ridge_embedding_decoder():
    from braincoder.models.deep import RidgeEmbeddingDecoder

    sim = _embedding_data()
    return RidgeEmbeddingDecoder(cv=3).fit(sim.train_data, sim.train_embeddings)


def _vae_gan():
    from braincoder.models.deep import VAEGAN, fMRIEncoder

    return VAEGAN(latent_dim=4, filters=(4, 8), seed=0,
                  fmri_encoder=fMRIEncoder(N_VOXELS, 4, hidden=(), seed=0))


def _image_data():
    from braincoder.datasets import simulate_image_fmri

    return simulate_image_fmri(n_voxels_per_area=(6, 4, 2), grid_size=8, seed=0)


def _ridge_image_decoder():
    from braincoder.models.image_decoders import RidgeImageDecoder

    sim = _image_data()
    return RidgeImageDecoder(cv=3).fit(sim.responses[:30], sim.images[:30])


def _prf_inversion_decoder():
    from braincoder.models import GaussianPRF2D
    from braincoder.models.image_decoders import PRFInversionDecoder

    sim = _image_data()
    decoder = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
    return decoder.fit(sim.responses[:30], sim.images[:30])


def _linear_classifier():
    from braincoder.models.deep import LinearClassifier

    return LinearClassifier((4, 4, 4), seed=0)


def _view_eeg_classifier():
    from braincoder.models.deep import view_EEG_classifier

    return view_EEG_classifier(_eeg_to_fmri(), seed=0)


# name → (factory, sample shape of the input, number of samples)
MODELS = {
    "fmri_encoder": (_fmri_encoder, (N_VOXELS,)),
    "fmri_ae": (_fmri_ae, (4, 4, 4, 1)),
    "eeg_to_fmri": (_eeg_to_fmri, (16, 8, 4)),
    "embedding_decoder": (_embedding_decoder, (N_VOXELS,)),
    "ridge_embedding_decoder": (_ridge_embedding_decoder, (N_VOXELS,)),
    "vae_gan": (_vae_gan, (N_VOXELS,)),
    "ridge_image_decoder": (_ridge_image_decoder, (12,)),
    "prf_inversion_decoder": (_prf_inversion_decoder, (12,)),
    "linear_classifier": (_linear_classifier, (4, 4, 4, 1)),
    "view_eeg_classifier": (_view_eeg_classifier, (16, 8, 4)),
}


def _entry_points(name, model):
    """The public entry points of a model that take the checked input."""
    calls = {}
    if isinstance(model, keras.Model):
        calls["__call__"] = model
    if name in ("fmri_ae", "eeg_to_fmri", "embedding_decoder", "ridge_embedding_decoder",
                "fmri_encoder", "linear_classifier", "view_eeg_classifier"):
        calls["predict"] = model.predict
    if name in ("vae_gan", "ridge_image_decoder", "prf_inversion_decoder"):
        calls["reconstruct"] = model.reconstruct
    if name == "vae_gan":
        calls["fmri_to_latent"] = model.fmri_to_latent
    if name in ("linear_classifier", "view_eeg_classifier"):
        calls["classify"] = model.classify
    if name in ("fmri_encoder", "fmri_ae", "linear_classifier"):
        target = np.zeros((4, 3)) if name == "fmri_encoder" else (
            np.zeros((4, 4, 4, 4, 1)) if name == "fmri_ae" else np.zeros(4, int))
        calls["fit"] = lambda x: model.fit(x, target[: len(x)], epochs=1, verbose=0)
    if name == "embedding_decoder":
        sim = _embedding_data()

        def fit(x):
            frame = pd.DataFrame(x, index=sim.train_data.index[: len(x)])
            return model.fit(frame, sim.train_embeddings, epochs=1, progressbar=False)

        calls["fit"] = fit
    return calls


def _shrunk(shape):
    """The same input with three voxels (or units of the first axis) too few."""
    return (shape[0] - 3, *shape[1:])


def test_every_registered_deep_model_and_decoder_is_covered():
    registered = {name for name, info in BUILTIN_MODELS.items() if info.kind != "encoding"}
    assert registered <= set(MODELS)


@pytest.fixture(scope="module", params=sorted(MODELS))
def built(request):
    keras.utils.set_random_seed(0)
    factory, shape = MODELS[request.param]
    if request.param == "embedding_decoder" or request.param == "ridge_embedding_decoder":
        shape = (_embedding_data().train_data.shape[1],)
    if request.param in ("ridge_image_decoder", "prf_inversion_decoder"):
        shape = (_image_data().responses.shape[1],)
    return request.param, factory(), shape


def test_wrong_size_names_expected_and_received(built):
    name, model, shape = built
    wrong = _shrunk(shape)
    n = 4 if "image" not in name and name != "prf_inversion_decoder" else 3
    for entry, call in _entry_points(name, model).items():
        with pytest.raises(ValueError) as info:
            call(np.zeros((n, *wrong), dtype="float32"))
        message = str(info.value)
        assert str(shape[0]) in message and str(wrong[0]) in message, (entry, message)


def test_non_finite_values_are_refused(built):
    name, model, shape = built
    values = np.ones((4, *shape), dtype="float32")
    values[1].flat[2] = np.nan
    for entry, call in _entry_points(name, model).items():
        with pytest.raises(ValueError, match="non-finite|NaN") as info:
            call(values)
        assert "Traceback" not in str(info.value), entry


def test_dataframes_are_checked_by_call(built):
    name, model, shape = built
    if not isinstance(model, keras.Model):
        pytest.skip("not a Keras model")
    n_flat = int(np.prod(shape))
    good = pd.DataFrame(np.zeros((2, n_flat)), columns=[f"v{i}" for i in range(n_flat)])
    output = model(good)
    assert keras.ops.shape(output if not isinstance(output, dict) else output["volume"])[0] == 2
    with pytest.raises(ValueError, match=f"got \\(2, {n_flat - 3}\\)"):
        model(good.iloc[:, 3:])


def test_symbolic_tensors_pass_through_call():
    encoder = _fmri_encoder()
    inputs = keras.Input((N_VOXELS,))
    wrapped = keras.Model(inputs, encoder(inputs))  # built on a symbolic tensor, unchecked
    values = np.random.default_rng(0).normal(size=(5, N_VOXELS)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wrapped(values)),
                               keras.ops.convert_to_numpy(encoder(values)), rtol=1e-6)
    # A compiled training step runs call() on graph tensors: it is not slowed or refused.
    encoder.compile(optimizer="sgd", loss="mse")
    history = encoder.fit(values, np.zeros((5, 3)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_classes_of_the_table_are_the_models_checked_here():
    for name in ("fmri_encoder", "fmri_ae", "eeg_to_fmri", "embedding_decoder"):
        from braincoder.models.deep.base import CheckedInputMixin

        assert issubclass(get_model_class(name), CheckedInputMixin), name
