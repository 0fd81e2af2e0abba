"""Labels: the unlabelled rule, alignment and the JSON codec of indexes."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braincoder.utils.labels import (
    align,
    decode_index,
    encode_index,
    is_unlabelled,
    label_positions,
)

NAMES = st.one_of(st.none(), st.text(min_size=1, max_size=6))
STRINGS = st.lists(st.text(max_size=8), min_size=0, max_size=12)
INTS = st.lists(st.integers(-(2**53), 2**53), min_size=0, max_size=12)
FLOATS = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=12)


def _roundtrip(index):
    return decode_index(json.loads(json.dumps(encode_index(index), allow_nan=False)))


def _assert_same(index, back):
    assert type(back) is type(index)
    assert list(back.names) == list(index.names)
    assert back.equals(index)
    if isinstance(index, pd.MultiIndex):
        for level in range(index.nlevels):
            assert back.levels[level].dtype == index.levels[level].dtype
    else:
        assert back.dtype == index.dtype


@settings(max_examples=40, deadline=None)
@given(values=STRINGS, name=NAMES)
def test_codec_roundtrip_strings(values, name):
    index = pd.Index(values, dtype="str", name=name)
    _assert_same(index, _roundtrip(index))


@settings(max_examples=40, deadline=None)
@given(values=INTS, name=NAMES)
def test_codec_roundtrip_ints(values, name):
    index = pd.Index(values, dtype="int64", name=name)
    _assert_same(index, _roundtrip(index))


@settings(max_examples=40, deadline=None)
@given(values=FLOATS, name=NAMES)
def test_codec_roundtrip_floats(values, name):
    index = pd.Index(values, dtype="float64", name=name)
    _assert_same(index, _roundtrip(index))


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, 50), length=st.integers(0, 50), step=st.integers(1, 4), name=NAMES)
def test_codec_roundtrip_range(start, length, step, name):
    index = pd.RangeIndex(start, start + length * step, step, name=name)
    _assert_same(index, _roundtrip(index))


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.tuples(st.text(max_size=5), st.integers(-1000, 1000)), min_size=1,
                  max_size=10),
    names=st.tuples(NAMES, NAMES),
)
def test_codec_roundtrip_multiindex(rows, names):
    index = pd.MultiIndex.from_arrays(
        [pd.Index([r[0] for r in rows], dtype="str"), pd.Index([r[1] for r in rows])],
        names=list(names),
    )
    _assert_same(index, _roundtrip(index))


def test_codec_reads_older_decoder_labels():
    old = {"values": [["a", 1], ["b", 2]], "names": ["run", "trial"], "multi": True}
    index = decode_index(old)
    assert list(index) == [("a", 1), ("b", 2)]
    assert list(index.names) == ["run", "trial"]
    assert decode_index({"values": ["x"], "names": ["voxel"], "multi": False}).name == "voxel"


def test_codec_refuses_objects_and_unknown_keys():
    with pytest.raises(TypeError, match="cannot be saved"):
        encode_index(pd.Index([object()]))
    with pytest.raises(ValueError, match="unexpected keys"):
        decode_index({"name": None, "code": "x"})
    with pytest.raises(ValueError, match="unsupported label dtype"):
        decode_index({"name": None, "dtype": "complex128", "values": [1]})


def test_unlabelled_rule():
    assert is_unlabelled(pd.RangeIndex(4))
    assert is_unlabelled(pd.RangeIndex(4, name="time"))
    assert is_unlabelled(pd.RangeIndex(4, name="voxel"))
    assert not is_unlabelled(pd.RangeIndex(1, 5))
    assert not is_unlabelled(pd.RangeIndex(4, name="stimulus"))
    assert not is_unlabelled(pd.Index([0, 1, 2, 3]))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 8))
def test_align_is_invariant_to_column_order(data, n):
    labels = pd.Index([f"v{i}" for i in range(n)], name="voxel")
    values = np.arange(3 * n, dtype=float).reshape(3, n)
    frame = pd.DataFrame(values, columns=labels)
    order = data.draw(st.permutations(range(n)))
    shuffled = frame.iloc[:, list(order)]
    aligned = align(shuffled, labels, "voxels", "reference", axis=1)
    pd.testing.assert_frame_equal(aligned, frame)
    positions = label_positions(labels, shuffled.columns, "reference", "frame")
    np.testing.assert_array_equal(shuffled.to_numpy()[:, positions], values)


def test_align_by_position_when_unlabelled():
    frame = pd.DataFrame(np.eye(3), columns=pd.Index(["c", "a", "b"]))
    assert align(frame, pd.RangeIndex(3), "voxels", "reference", axis=1) is frame
    unlabelled = pd.DataFrame(np.eye(3))
    assert align(unlabelled, pd.Index(["c", "a", "b"]), "voxels", "reference",
                 axis=1) is unlabelled
    # Of different lengths, an unlabelled side is matched by its labels (its positions).
    with pytest.raises(ValueError, match="'a', 'b'.*lengths agree"):
        align(unlabelled, pd.Index(["a", "b"]), "voxels", "reference", axis=1)
    subset = align(unlabelled, pd.Index([2, 0]), "voxels", "reference", axis=1)
    np.testing.assert_array_equal(subset.to_numpy(), np.eye(3)[:, [2, 0]])
    np.testing.assert_array_equal(
        label_positions(pd.Index([5, 3]), pd.RangeIndex(8), "data", "model"), [5, 3])


def test_missing_labels_are_named():
    with pytest.raises(ValueError, match="'d'"):
        align(pd.DataFrame(np.eye(3), index=list("abc")), pd.Index(list("abd")), "rows",
              "reference")
    with pytest.raises(ValueError, match="lacks: 'z'"):
        label_positions(pd.Index(["a", "z"]), pd.Index(["a", "b"]), "data", "model",
                        what="voxels")


def test_predict_and_decoder_agree_on_unlabelled_voxels():
    """An array of data is matched by position by get_rsq and the decoding voxel matcher."""
    from braincoder.models.decoding import match_voxels
    from braincoder.utils import get_rsq

    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(20, 3)), columns=pd.Index(["a", "b", "c"]))
    r2 = get_rsq(data, data.to_numpy())
    np.testing.assert_allclose(r2.to_numpy(), 1.0)
    np.testing.assert_array_equal(
        match_voxels(pd.RangeIndex(3, name="voxel"), data.columns, "data", "model"),
        np.arange(3),
    )


def test_decoder_accepts_an_array_like_predict_does():
    """A decoder fitted on labelled voxels takes the same data as an array (by position)."""
    from braincoder.datasets import simulate_embedding_fmri
    from braincoder.models.deep import RidgeEmbeddingDecoder

    sim = simulate_embedding_fmri(n_stimuli=20, embedding_dim=4, n_voxels=6, n_clusters=2,
                                  rank=2, seed=0)
    decoder = RidgeEmbeddingDecoder(alphas=(1.0,), cv=None).fit(sim.train_data,
                                                                sim.train_embeddings)
    labelled = decoder.predict(sim.test_data)
    positional = decoder.predict(sim.test_data.to_numpy())
    np.testing.assert_allclose(positional.to_numpy(), labelled.to_numpy())
    shuffled = sim.test_data[sim.test_data.columns[::-1]]
    np.testing.assert_allclose(decoder.predict(shuffled).to_numpy(), labelled.to_numpy())
