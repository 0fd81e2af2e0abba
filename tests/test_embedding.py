"""Tests of the embedding decoders, their fitter, retrieval metrics and the simulator."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from braincoder.datasets import simulate_embedding_fmri
from braincoder.models import get_model
from braincoder.models.deep import EmbeddingDecoder, RidgeEmbeddingDecoder, _embedding_ridge
from braincoder.models.deep.embedding import contrastive_loss
from braincoder.optimize import EmbeddingFitter
from braincoder.optimize.ridge import fit_ridge
from braincoder.utils import embedding_similarity, retrieval_accuracy
from braincoder.utils.metrics import n_way_identification
from braincoder.utils.retrieval import contrastive_loss_numpy

N_VOXELS, DIM = 12, 8


@pytest.fixture(scope="module")
def sim():
    return simulate_embedding_fmri(
        n_stimuli=30, embedding_dim=DIM, n_voxels=N_VOXELS, n_clusters=3, rank=4, seed=3
    )


def _fit(sim, seed=0, **kwargs):
    decoder = EmbeddingDecoder(N_VOXELS, DIM, hidden=(16,), dropout=0.1, seed=seed)
    options = dict(epochs=4, batch_size=16, validation_split=0.25, progressbar=False, seed=seed)
    options.update(kwargs)
    history = EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings).fit(**options)
    return decoder, history


# --------------------------------------------------------------------------- retrieval metrics


def test_retrieval_accuracy_hand_computed_positional():
    candidates = np.eye(3)
    pred = np.array([[1.0, 0.2, 0.0], [0.9, 0.5, 0.0], [0.0, 0.1, 1.0]])
    # Row 1's true stimulus (1) ranks second: cos to candidate 0 is larger.
    assert retrieval_accuracy(pred, candidates, k=(1, 2, 3)) == {1: 2 / 3, 2: 1.0, 3: 1.0}
    assert retrieval_accuracy(pred, candidates, k=1, true_index=[0, 0, 2]) == {1: 1.0}


def test_retrieval_accuracy_matches_labels_and_repeats():
    candidates = pd.DataFrame(
        [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], index=pd.Index(["a", "b", "c"], name="stimulus")
    )
    index = pd.MultiIndex.from_tuples(
        [("c", 0), ("c", 1), ("a", 0), ("b", 0)], names=["stimulus", "repeat"]
    )
    # c0 → nearest c; c1 points at b (c ranks 3rd); a → a; b points between a and b (tie → b
    # ranks 1st since no candidate is strictly more similar).
    pred = pd.DataFrame([[-2.0, 0.1], [0.1, 1.0], [3.0, 0.0], [1.0, 1.0]], index=index)
    result = retrieval_accuracy(pred, candidates, k=(1, 2, 3))
    assert result == {1: 0.75, 2: 0.75, 3: 1.0}
    # Row order does not matter when labels are used.
    assert retrieval_accuracy(pred.iloc[::-1], candidates, k=(1, 2, 3)) == result


def test_retrieval_accuracy_bad_input():
    candidates = pd.DataFrame(np.eye(3), index=pd.Index(["a", "b", "c"], name="stimulus"))
    pred = pd.DataFrame(np.eye(3), index=pd.Index(["a", "b", "zz"], name="stimulus"))
    with pytest.raises(ValueError, match="'zz'"):
        retrieval_accuracy(pred, candidates, k=1)
    with pytest.raises(ValueError, match="between 1 and the number of candidates"):
        retrieval_accuracy(np.eye(3), candidates, k=5)
    with pytest.raises(ValueError, match="zero norm"):
        retrieval_accuracy(np.eye(3), np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1.0]]), k=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        retrieval_accuracy(np.eye(3), np.eye(3), top=1)


def test_embedding_similarity_hand_computed():
    true = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], index=["a", "b", "c"])
    pred = pd.DataFrame([[1.0, 1.0], [0.0, 2.0], [0.0, 1.0]], index=["a", "b", "b"])
    result = embedding_similarity(pred, true, n_way=2)
    assert result["mean_cosine"] == pytest.approx((np.sqrt(0.5) + 1.0 + 1.0) / 3)
    # Repeats of b are averaged; identification among the stimuli a and b.
    expected = n_way_identification(
        true.loc[["a", "b"]].to_numpy(), np.array([[1.0, 1.0], [0.0, 1.0]]), metric="cosine"
    )
    assert result["n_way_accuracy"] == expected == 0.5


# --------------------------------------------------------------------------- contrastive loss


def test_contrastive_loss_numpy_matches_explicit_formula():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    p = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    logits = p @ t.T / 0.3
    expected = 0.0
    for i in range(5):
        expected -= 0.5 * (logits[i, i] - np.log(np.exp(logits[i]).sum())) / 5
        expected -= 0.5 * (logits[i, i] - np.log(np.exp(logits[:, i]).sum())) / 5
    assert contrastive_loss_numpy(pred, target, 0.3) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("repeats", [False, True])
def test_keras_contrastive_loss_equals_numpy(repeats):
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(6, 5)).astype(np.float32)
    target = rng.normal(size=(6, 5)).astype(np.float32)
    if repeats:
        target[3] = target[0]
        target[5] = target[0]
    value = float(contrastive_loss(pred, target, 0.2))
    assert value == pytest.approx(contrastive_loss_numpy(pred, target, 0.2), rel=1e-5)


def test_model_compute_loss_uses_learnt_temperature():
    decoder = EmbeddingDecoder(4, 3, temperature=0.5, seed=0)
    rng = np.random.default_rng(2)
    target = rng.normal(size=(5, 3)).astype(np.float32)
    pred = decoder(rng.normal(size=(5, 4)).astype(np.float32))
    decoder.loss_mode = "both"
    value = float(decoder.compute_loss(y=target, y_pred=pred))
    unit = target / np.linalg.norm(target, axis=1, keepdims=True)
    mse = np.mean(np.sum((np.asarray(pred) - unit) ** 2, axis=1))
    expected = contrastive_loss_numpy(np.asarray(pred), target, 0.5) + mse
    assert value == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- simulator


def test_simulation_structure(sim):
    train_ids = sim.train_data.index.get_level_values("stimulus").unique()
    test_ids = sim.test_data.index.get_level_values("stimulus").unique()
    assert not set(train_ids) & set(test_ids)
    assert list(train_ids) == list(sim.train_embeddings.index)
    assert list(test_ids) == list(sim.test_embeddings.index)
    assert len(test_ids) == 6 and sim.train_data.shape == (48, N_VOXELS)
    norms = np.linalg.norm(sim.train_embeddings.to_numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    # Clusters: stimuli of one cluster are more similar than stimuli of different clusters.
    emb = pd.concat([sim.train_embeddings, sim.test_embeddings])
    cos = emb.to_numpy() @ emb.to_numpy().T
    same = sim.clusters.loc[emb.index].to_numpy()
    same = same[:, None] == same[None, :]
    off = ~np.eye(len(emb), dtype=bool)
    assert cos[same & off].mean() > cos[~same].mean() + 0.2
    again = simulate_embedding_fmri(
        n_stimuli=30, embedding_dim=DIM, n_voxels=N_VOXELS, n_clusters=3, rank=4, seed=3
    )
    pd.testing.assert_frame_equal(again.train_data, sim.train_data)


def test_simulation_bad_input():
    with pytest.raises(TypeError, match="unexpected keyword"):
        simulate_embedding_fmri(n_stimulus=10)
    with pytest.raises(ValueError, match="test_fraction"):
        simulate_embedding_fmri(n_stimuli=10, test_fraction=0.05)


# --------------------------------------------------------------------------- neural decoder


def test_training_is_deterministic_and_loss_decreases(sim):
    first, history = _fit(sim, epochs=6, early_stopping_patience=None)
    second, history_again = _fit(sim, epochs=6, early_stopping_patience=None)
    pd.testing.assert_frame_equal(history, history_again)
    pd.testing.assert_frame_equal(first.predict(sim.test_data), second.predict(sim.test_data))
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert {"val_loss", "val_top1", "val_top5", "temperature"} <= set(history.columns)


def test_predict_labels_norm_and_save_load(sim, tmp_path):
    decoder, _ = _fit(sim, epochs=2)
    pred = decoder.predict(sim.test_data)
    assert pred.index.equals(sim.test_data.index)
    assert pred.columns.equals(sim.train_embeddings.columns)
    np.testing.assert_allclose(np.linalg.norm(pred, axis=1), 1.0, rtol=1e-5)
    path = tmp_path / "decoder.keras"
    decoder.save(path)
    loaded = EmbeddingDecoder.load(path)
    pd.testing.assert_frame_equal(loaded.predict(sim.test_data), pred)
    assert loaded.voxel_names.equals(decoder.voxel_names)
    assert loaded.temperature == pytest.approx(decoder.temperature)
    # Columns in another order are matched by name.
    shuffled = sim.test_data[sim.test_data.columns[::-1]]
    pd.testing.assert_frame_equal(loaded.predict(shuffled), pred)
    with pytest.raises(ValueError, match=r"\.keras"):
        decoder.save(tmp_path / "decoder.h5")


def test_validation_split_is_by_stimulus_and_tensorboard(sim, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    decoder = EmbeddingDecoder(N_VOXELS, DIM, seed=0)
    fitter = EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings)
    fitter.fit(epochs=2, validation_split=0.25, log_dir=tmp_path, progressbar=False)
    assert not set(fitter.train_stimuli) & set(fitter.validation_stimuli)
    assert len(fitter.validation_stimuli) == 6
    assert set(fitter.train_stimuli) | set(fitter.validation_stimuli) == set(
        sim.train_embeddings.index
    )
    tags = set()
    for sub in ("train", "validation"):
        events = EventAccumulator(os.path.join(fitter.run_dir, sub)).Reload()
        tags |= set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
    assert {"epoch_loss", "epoch_contrastive_loss", "epoch_top1", "epoch_top5"} <= tags


def test_fitter_bad_input(sim):
    decoder = EmbeddingDecoder(N_VOXELS, DIM, seed=0)
    emb = sim.train_embeddings
    with pytest.raises(ValueError, match=r"do not align.*'s\d+'"):
        EmbeddingFitter(decoder, sim.train_data, emb.iloc[2:])
    bad = emb.copy()
    bad.iloc[1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        EmbeddingFitter(decoder, sim.train_data, bad)
    bad = emb.copy()
    bad.iloc[4] = 0.0
    with pytest.raises(ValueError, match=f"zero norm.*{emb.index[4]}"):
        EmbeddingFitter(decoder, sim.train_data, bad)
    with pytest.raises(ValueError, match="12 voxels but the decoder expects 5"):
        EmbeddingFitter(EmbeddingDecoder(5, DIM), sim.train_data, emb)
    fitter = EmbeddingFitter(decoder, sim.train_data, emb)
    with pytest.raises(ValueError, match="loss must be one of"):
        fitter.fit(loss="cosine")
    with pytest.raises(TypeError, match="unexpected keyword"):
        fitter.fit(epoch=3)
    leaky = sim.train_data.iloc[:4]
    with pytest.raises(ValueError, match="disjoint.*'s"):
        fitter.fit(validation_data=(leaky, emb), epochs=1, progressbar=False)
    with pytest.raises(TypeError, match="unexpected keyword"):
        EmbeddingDecoder(N_VOXELS, DIM, hiden=(4,))
    with pytest.raises(RuntimeError, match="not fitted"):
        decoder.predict(sim.test_data)


def test_predict_rejects_other_voxels(sim):
    decoder, _ = _fit(sim, epochs=1, validation_split=0.0)
    with pytest.raises(ValueError, match="11 voxels but the decoder expects 12"):
        decoder.predict(sim.test_data.iloc[:, 1:])
    renamed = sim.test_data.rename(columns={sim.test_data.columns[0]: "other"})
    with pytest.raises(ValueError, match="missing 'voxel_00'.*unexpected 'other'"):
        decoder.predict(renamed)


# --------------------------------------------------------------------------- ridge decoder


def test_ridge_decoder_uses_fit_ridge_with_stimulus_folds(sim, monkeypatch):
    calls = []

    def spy(X, Y, **kwargs):
        calls.append((X, Y, kwargs))
        return fit_ridge(X, Y, **kwargs)

    monkeypatch.setattr(_embedding_ridge, "fit_ridge", spy)
    decoder = RidgeEmbeddingDecoder(alphas=(1.0, 100.0), cv=3).fit(
        sim.train_data, sim.train_embeddings
    )
    assert len(calls) == 1
    X, Y, kwargs = calls[0]
    stimuli = sim.train_data.index.get_level_values("stimulus")
    for train, test in kwargs["cv"]:
        assert not set(stimuli[train]) & set(stimuli[test])
    reference = fit_ridge(X, Y, alphas=(1.0, 100.0), cv=kwargs["cv"])
    np.testing.assert_allclose(decoder.weights.to_numpy(), reference.weights)
    np.testing.assert_array_equal(decoder.best_alphas.to_numpy(), reference.alphas)
    raw = reference.predict(
        (sim.test_data.to_numpy() - decoder.input_mean) / decoder.input_scale
    )
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(decoder.predict(sim.test_data).to_numpy(), raw)


def test_ridge_save_load_and_errors(sim, tmp_path):
    decoder = get_model("ridge_embedding_decoder", cv=3)
    decoder.fit(sim.train_data, sim.train_embeddings)
    path = tmp_path / "ridge.json"
    decoder.save(path)
    spec = json.loads(path.read_text())
    assert spec["model"] == "ridge_embedding_decoder"
    with np.load(tmp_path / "ridge.npz", allow_pickle=False) as arrays:
        assert arrays["weights"].shape == (N_VOXELS, DIM)
    loaded = RidgeEmbeddingDecoder.load(path)
    pd.testing.assert_frame_equal(loaded.predict(sim.test_data), decoder.predict(sim.test_data))
    with pytest.raises(ValueError, match="11 voxels"):
        loaded.predict(sim.test_data.iloc[:, :11])
    with pytest.raises(ValueError, match="do not align"):
        RidgeEmbeddingDecoder().fit(sim.test_data, sim.train_embeddings)
    with pytest.raises(TypeError, match="unexpected keyword"):
        RidgeEmbeddingDecoder(alpha=1.0)
    assert isinstance(get_model("embedding_decoder", n_voxels=3, embedding_dim=2), EmbeddingDecoder)


def test_weight_decay_shrinks_kernels_not_temperature(sim):
    norms = {}
    for decay in (0.0, 10.0):
        decoder = EmbeddingDecoder(N_VOXELS, DIM, seed=0)
        EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings).fit(
            loss="mse", epochs=3, batch_size=8, weight_decay=decay, validation_split=0.0,
            progressbar=False,
        )
        norms[decay] = np.linalg.norm(decoder.head.kernel.numpy())
        # The MSE loss leaves the temperature untouched, and it is excluded from the decay.
        assert decoder.temperature == pytest.approx(0.07, rel=1e-6)
    assert norms[10.0] < 0.9 * norms[0.0]
