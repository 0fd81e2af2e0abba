import numpy as np
import pytest

from braincoder.models import list_models
from braincoder.models.registry import get_model_class, model_info
from braincoder.models.roles import ROLES, Decoder, Encoder, model_role

ENCODERS = [name for name in list_models() if model_role(name) == "encoder"]
DECODERS = [name for name in list_models() if model_role(name) == "decoder"]


def test_every_encoding_model_and_deep_encoder_is_an_encoder():
    assert {name for name in list_models() if model_info(name).kind == "encoding"} <= set(
        ENCODERS)
    assert {"eeg_to_fmri", "fmri_ae"} <= set(ENCODERS)
    assert set(ROLES) <= set(list_models())


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_classes_offer_the_encoder_protocol(name):
    cls = get_model_class(name)
    for method in ("predict", "save", "load"):
        assert callable(getattr(cls, method, None)), f"{name} has no {method}"


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_classes_offer_the_decoder_protocol(name):
    cls = get_model_class(name)
    for method in ("fit", "reconstruct", "save", "load"):
        assert callable(getattr(cls, method, None)), f"{name} has no {method}"


def test_protocols_check_instances():
    from braincoder.models import GaussianPRF
    from braincoder.models.deep import RidgeEmbeddingDecoder

    assert isinstance(GaussianPRF(), Encoder)
    assert isinstance(RidgeEmbeddingDecoder(), Decoder)
    assert not isinstance(GaussianPRF(), Decoder)


def test_embedding_decoder_reconstruct_equals_predict():
    from braincoder.models.deep import RidgeEmbeddingDecoder

    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 12))
    embeddings = data[:, :4] @ rng.standard_normal((4, 6))
    decoder = RidgeEmbeddingDecoder(cv=3).fit(data, embeddings)
    np.testing.assert_allclose(decoder.reconstruct(data).to_numpy(),
                               decoder.predict(data).to_numpy())


def test_vae_gan_fit_checks_pairs_before_training():
    from braincoder.models.deep import VAEGAN

    model = VAEGAN(latent_dim=4, image_shape=(8, 8, 1), filters=(4,), seed=0)
    with pytest.raises(ValueError, match="fmri has 5 trials but images has 4"):
        model.fit(np.zeros((5, 3)), np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="three values"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 8, 8)), epochs=(1, 1))
