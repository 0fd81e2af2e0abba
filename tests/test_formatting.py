"""Property tests of the pandas layer: labels survive, column order and dtype do not matter."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braincoder.models import GaussianPRF
from braincoder.utils.formatting import format_data, format_parameters, to_frame
from braincoder.utils.stats import get_r, get_rsq

LABELS = ["mu", "sd", "amplitude", "baseline"]
names = st.text(alphabet="abcdefghij_0123456789", min_size=1, max_size=6)


@settings(max_examples=20, deadline=None)
@given(time=st.lists(st.integers(-1000, 1000), min_size=2, max_size=12, unique=True),
       voxels=st.lists(names, min_size=1, max_size=5, unique=True),
       index_name=st.sampled_from([None, "time", "frame", "TR"]))
def test_labels_survive_predict(time, voxels, index_name):
    paradigm = pd.DataFrame({"x": np.linspace(0, 5, len(time))},
                            index=pd.Index(time, name=index_name))
    parameters = pd.DataFrame({"mu": 2.0, "sd": 1.0, "amplitude": 1.0, "baseline": 0.0},
                              index=pd.Index(voxels, name="unit"))
    prediction = GaussianPRF().predict(paradigm, parameters)
    assert prediction.index.equals(paradigm.index)
    assert prediction.index.name == index_name
    assert prediction.columns.equals(parameters.index)


@settings(max_examples=20, deadline=None)
@given(order=st.permutations(LABELS), dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_parameter_column_order_and_dtype_do_not_matter(order, dtype):
    base = pd.DataFrame({"mu": [1, 3], "sd": [1, 2], "amplitude": [2, 1], "baseline": [0, 1]})
    shuffled = base[list(order)].astype(dtype)
    model = GaussianPRF()
    paradigm = np.arange(6.0)[:, None]
    np.testing.assert_allclose(model.predict(paradigm, shuffled).to_numpy(),
                               model.predict(paradigm, base.astype(float)).to_numpy(), rtol=1e-6)
    assert list(format_parameters(shuffled, LABELS).columns) == LABELS


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=20))
def test_to_frame_round_trips_arrays(values):
    array = np.asarray(values)
    frame = to_frame(array, "data", columns_name="voxel")
    assert frame.shape == (len(values), 1)
    assert frame.index.name == "time" and frame.columns.name == "voxel"
    np.testing.assert_array_equal(frame.iloc[:, 0].to_numpy(), array)
    frame2 = to_frame(array.reshape(-1, 1), "data")
    pd.testing.assert_frame_equal(frame2.set_axis(frame.columns, axis=1), frame)


def test_dataframe_input_is_not_copied_or_modified():
    data = pd.DataFrame({"v1": [1.0, 2.0, 3.0]}, index=pd.Index([5, 6, 7], name="frame"))
    snapshot = data.copy()
    assert format_data(data) is data
    pd.testing.assert_frame_equal(data, snapshot)


@pytest.mark.parametrize("value, match", [
    (np.zeros((2, 2, 2)), "1D or 2D"),
    (np.array([["a"]], dtype=object), "numeric"),
    (np.zeros((0, 3)), "empty"),
])
def test_bad_arrays(value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        format_data(value)


def test_nan_message_names_column_and_time():
    data = pd.DataFrame({"V1_0042": [1.0, np.nan, 2.0, np.nan]},
                        index=pd.Index([10, 17, 18, 19], name="time"))
    message = r"'V1_0042' has 2 non-finite values \(first at time 17\)"
    with pytest.raises(ValueError, match=message):
        format_data(data)


def test_r2_and_r_match_numpy():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 4))
    p = y + rng.normal(size=(30, 4))
    r2 = get_rsq(y, p)
    expected = 1 - ((y - p) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(r2, expected)
    expected_r = [np.corrcoef(y[:, i], p[:, i])[0, 1] for i in range(4)]
    np.testing.assert_allclose(get_r(y, p), expected_r)
    flat = pd.DataFrame({"a": y[:, 0], "flat": 1.0})
    with pytest.warns(RuntimeWarning, match="'flat'"):
        assert np.isnan(get_rsq(flat, flat)["flat"])
