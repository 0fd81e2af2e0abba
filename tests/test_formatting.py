"""The pandas layer: labels survive, column order and dtype do not matter; checks; R² and r.

Property tests (hypothesis) run on small inputs with few examples so the file stays fast.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braincoder.hrf import SPMHRFModel
from braincoder.models import GaussianPRF, GaussianPRFWithHRF
from braincoder.utils import get_r, get_rsq
from braincoder.utils.formatting import (
    format_data,
    format_parameters,
    series_by_voxel,
    to_frame,
    voxel_index,
)
from braincoder.utils.validation import (
    check_choice,
    check_columns,
    check_finite,
    check_kwargs,
    check_names,
    check_positive,
    check_same_index,
    constant_columns,
    format_labels,
)

LABELS = ["mu", "sd", "amplitude", "baseline"]
HRF_LABELS = LABELS + ["hrf_delay", "hrf_dispersion"]
UNIQUE_HRF_MODEL = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=2.0, unique_hrfs=True))
PROPERTY = settings(max_examples=20, deadline=None)

names = st.text(alphabet="abcdefghij_0123456789.-", min_size=1, max_size=6)
index_names = st.sampled_from([None, "time", "frame", "TR", "t"])
voxel_names = st.sampled_from([None, "voxel", "source", "unit", "roi"])


@st.composite
def time_indices(draw, min_size=2, max_size=10):
    """Any kind of row labels: ints, strings, floats, datetimes, (run, time) pairs."""
    n = draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(["int", "str", "float", "datetime", "multi", "range"]))
    name = draw(index_names)
    if kind == "int":
        values = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n))
        return pd.Index(values, name=name)
    if kind == "str":
        return pd.Index(draw(st.lists(names, min_size=n, max_size=n)), name=name)
    if kind == "float":
        values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n))
        return pd.Index(values, name=name, dtype=float)
    if kind == "datetime":
        start = draw(st.sampled_from(["2020-01-01", "1999-12-31 23:59:58"]))
        return pd.date_range(start, periods=n, freq="1500ms", name=name)
    if kind == "multi":
        runs = draw(st.lists(st.sampled_from(["run-1", "run-2"]), min_size=n, max_size=n))
        return pd.MultiIndex.from_arrays([runs, np.arange(n)], names=["run", name])
    start = draw(st.integers(-5, 5))
    return pd.RangeIndex(start, start + n, name=name)


@st.composite
def voxel_indices(draw, max_size=4):
    n = draw(st.integers(1, max_size))
    kind = draw(st.sampled_from(["str", "int", "tuple"]))
    name = draw(voxel_names)
    if kind == "str":
        return pd.Index(draw(st.lists(names, min_size=n, max_size=n)), name=name)
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(0, 99999), min_size=n, max_size=n)), name=name)
    return pd.MultiIndex.from_arrays([["lh"] * n, np.arange(n)], names=["hemi", name])


def gaussian_parameters(n, rng, labels=LABELS):
    values = {"mu": rng.uniform(0, 5, n), "sd": rng.uniform(0.5, 2, n),
              "amplitude": rng.normal(size=n), "baseline": rng.normal(size=n),
              "hrf_delay": rng.uniform(4, 6.5, n), "hrf_dispersion": rng.uniform(0.6, 1.5, n)}
    return pd.DataFrame({label: values[label] for label in labels})


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(time=time_indices(), voxels=voxel_indices(), seed=st.integers(0, 2**16))
def test_any_labels_survive_predict_and_simulate(time, voxels, seed):
    rng = np.random.default_rng(seed)
    paradigm = pd.DataFrame({"x": rng.uniform(0, 5, len(time))}, index=time)
    parameters = gaussian_parameters(len(voxels), rng).set_axis(voxels, axis=0)
    model = GaussianPRF()
    prediction = model.predict(paradigm, parameters)
    pd.testing.assert_index_equal(prediction.index, time, exact=True)
    pd.testing.assert_index_equal(prediction.columns, voxels, exact=True)
    simulated = model.simulate(paradigm, parameters, noise=0.1, seed=seed)
    pd.testing.assert_index_equal(simulated.index, time, exact=True)
    pd.testing.assert_index_equal(simulated.columns, voxels, exact=True)
    r2 = get_rsq(simulated, prediction)
    pd.testing.assert_index_equal(r2.index, voxels, exact=True)
    # Through weights: rows are basis functions, columns the voxels of the weights.
    weights = pd.DataFrame(rng.normal(size=(len(voxels), 2)), index=voxels,
                           columns=pd.Index(["left", "right"], name="roi"))
    mixed = model.predict(paradigm, parameters, weights)
    pd.testing.assert_index_equal(mixed.index, time, exact=True)
    pd.testing.assert_index_equal(mixed.columns, weights.columns, exact=True)


@PROPERTY
@given(order=st.permutations(HRF_LABELS), seed=st.integers(0, 2**16))
def test_parameter_column_order_does_not_matter(order, seed):
    rng = np.random.default_rng(seed)
    parameters = gaussian_parameters(3, rng, HRF_LABELS)
    paradigm = rng.uniform(0, 5, (12, 1))
    shuffled = parameters[list(order)]
    snapshot = shuffled.copy()
    expected = UNIQUE_HRF_MODEL.predict(paradigm, parameters)
    got = UNIQUE_HRF_MODEL.predict(paradigm, shuffled)
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert list(format_parameters(shuffled, HRF_LABELS).columns) == HRF_LABELS
    pd.testing.assert_frame_equal(shuffled, snapshot)  # the caller's frame is untouched


DTYPES = ["float32", "float64", "int8", "int32", "int64", "Float64", "Int64"]


@PROPERTY
@given(paradigm_dtype=st.sampled_from(DTYPES), parameter_dtype=st.sampled_from(DTYPES),
       data_dtype=st.sampled_from(DTYPES),
       values=st.lists(st.integers(-4, 8), min_size=3, max_size=9),
       mu=st.integers(-2, 6), sd=st.integers(1, 3), amplitude=st.integers(-3, 3),
       baseline=st.integers(-3, 3))
def test_input_dtype_does_not_matter(paradigm_dtype, parameter_dtype, data_dtype, values, mu,
                                     sd, amplitude, baseline):
    paradigm = pd.DataFrame({"x": values}).astype(paradigm_dtype)
    parameters = pd.DataFrame({"mu": [mu, 0], "sd": [sd, 1], "amplitude": [amplitude, 1],
                               "baseline": [baseline, 0]})
    model = GaussianPRF()
    reference = model.predict(paradigm.astype("float64"), parameters.astype("float64"))
    got = model.predict(paradigm, parameters.astype(parameter_dtype))
    np.testing.assert_array_equal(got.to_numpy(), reference.to_numpy())
    ramp = 13 * np.arange(len(values))  # never constant; stays within int8
    data = pd.DataFrame({"a": values + ramp, "b": values[::-1] - ramp})
    r2 = get_rsq(data.astype(data_dtype), reference.set_axis(data.columns, axis=1))
    expected = get_rsq(data.astype("float64"), reference.set_axis(data.columns, axis=1))
    np.testing.assert_allclose(r2.to_numpy(), expected.to_numpy(), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
       n_columns=st.integers(1, 3))
def test_to_frame_round_trips_arrays(values, n_columns):
    array = np.tile(np.asarray(values)[:, None], (1, n_columns))
    frame = to_frame(array, "data", columns_name="voxel")
    assert frame.shape == array.shape
    assert frame.index.equals(pd.RangeIndex(len(values), name="time"))
    assert frame.columns.equals(pd.RangeIndex(n_columns, name="voxel"))
    np.testing.assert_array_equal(frame.to_numpy(), array)
    one_d = to_frame(np.asarray(values), "data", columns_name="voxel")
    pd.testing.assert_frame_equal(one_d, frame.iloc[:, :1])
    labelled = to_frame(array, "data", index=[f"t{i}" for i in range(len(values))],
                        columns=[f"v{i}" for i in range(n_columns)])
    assert labelled.index.name == "time" and labelled.index[0] == "t0"
    assert format_data(frame) is frame


@PROPERTY
@given(voxels=voxel_indices(), shuffle_seed=st.integers(0, 2**16))
def test_r2_and_r_match_predictions_to_data_by_voxel_label(voxels, shuffle_seed):
    if voxels.has_duplicates:
        voxels = pd.Index([f"v{i}" for i in range(len(voxels))], name=voxels.name)
    rng = np.random.default_rng(shuffle_seed)
    y = rng.normal(size=(15, len(voxels)))
    p = y + rng.normal(size=(15, len(voxels)))
    data = pd.DataFrame(y, columns=voxels)
    order = rng.permutation(len(voxels))
    predictions = pd.DataFrame(p[:, order], columns=voxels[order])
    expected_r2 = 1 - ((y - p) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(get_rsq(data, predictions).to_numpy(), expected_r2, rtol=1e-10)
    expected_r = [np.corrcoef(y[:, i], p[:, i])[0, 1] for i in range(len(voxels))]
    np.testing.assert_allclose(get_r(data, predictions).to_numpy(), expected_r, rtol=1e-10)
    assert get_rsq(data, predictions).index.equals(voxels)


# ---------------------------------------------------------------------------- conversion
def test_dataframe_input_is_not_copied_or_modified():
    data = pd.DataFrame({"v1": [1.0, 2.0, 3.0]}, index=pd.Index([5, 6, 7], name="frame"))
    snapshot = data.copy()
    assert format_data(data) is data
    pd.testing.assert_frame_equal(data, snapshot)


def test_series_and_labels():
    series = pd.Series([1.0, 2.0], index=pd.Index([3, 4], name="frame"), name="V1")
    frame = to_frame(series, "data")
    assert frame.columns.tolist() == ["V1"] and frame.index.equals(series.index)
    unnamed = to_frame(pd.Series([1.0, 2.0]), "data", columns_name="voxel")
    assert unnamed.columns.equals(pd.Index([0], name="voxel"))
    assert voxel_index(3).equals(pd.RangeIndex(3, name="voxel"))
    result = series_by_voxel([0.5, 0.25], pd.Index(["a", "b"], name="voxel"), "r2")
    assert result.name == "r2" and result.index.tolist() == ["a", "b"]


def test_format_parameters_arrays():
    frame = format_parameters(np.array([1.0, 2.0, 3.0, 4.0]), LABELS)
    assert frame.shape == (1, 4) and list(frame.columns) == LABELS
    assert frame.columns.name == "parameter" and frame.index.name == "voxel"
    baselines = format_parameters(np.array([1.0, 2.0, 3.0]), ["baseline"])
    assert baselines.shape == (3, 1)
    index = pd.Index(["a", "b"], name="voxel")
    assert format_parameters(np.ones((2, 4)), LABELS, index=index).index.equals(index)


@pytest.mark.parametrize("value, error, match", [
    (np.zeros((2, 2, 2)), ValueError, "data must be 1D or 2D, got shape"),
    (np.float64(1.0), ValueError, "got a scalar"),
    (np.array([["a"]], dtype=object), TypeError, "data must be numeric"),
    (pd.DataFrame({"v": ["a", "b"]}), TypeError, "data must be numeric"),
    (np.zeros((0, 3)), ValueError, r"data is empty \(shape \(0, 3\)\)"),
    (np.zeros((3, 0)), ValueError, "data is empty"),
])
def test_bad_arrays(value, error, match):
    with pytest.raises(error, match=match):
        format_data(value)


def test_wrong_label_lengths():
    with pytest.raises(ValueError, match="data: 2 rows but 3 row labels"):
        to_frame(np.ones((2, 1)), "data", index=[1, 2, 3])
    with pytest.raises(ValueError, match="data: 1 columns but 2 column labels"):
        to_frame(np.ones((2, 1)), "data", columns=["a", "b"])


def test_nan_message_names_columns_and_first_time():
    data = pd.DataFrame({"V1_0042": [1.0, np.nan, 2.0, np.nan], "ok": 1.0},
                        index=pd.Index([10, 17, 18, 19], name="time"))
    message = r"data: column 'V1_0042' has 2 non-finite values \(first at time 17\)"
    with pytest.raises(ValueError, match=message):
        format_data(data)
    wide = pd.DataFrame(np.full((2, 8), np.inf), columns=[f"v{i}" for i in range(8)])
    with pytest.raises(ValueError, match=r"column 'v4' .*; and 3 more columns") as info:
        check_finite(wide, "data")
    assert "'v5'" not in str(info.value)
    with pytest.raises(ValueError, match=r"first at row 'b'"):
        check_finite(pd.DataFrame({"x": [1.0, np.nan]}, index=["a", "b"]), "paradigm")


# ---------------------------------------------------------------------------- validation
def test_check_same_index():
    labelled = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index([4, 5, 6], name="frame"))
    other = pd.DataFrame({"b": [1.0, 2.0, 3.0]}, index=pd.Index([4, 5, 7], name="frame"))
    check_same_index(labelled, labelled.copy(), "data", "paradigm")
    with pytest.raises(ValueError, match="at position 2 data has 6 but paradigm has 7"):
        check_same_index(labelled, other, "data", "paradigm")
    with pytest.raises(ValueError, match="data has 3 time points but paradigm has 2"):
        check_same_index(labelled, other.iloc[:2], "data", "paradigm")
    # Arrays carry no labels (RangeIndex, unnamed or named "time"): compared by length only.
    check_same_index(labelled, to_frame(np.ones(3), "paradigm"), "data", "paradigm")
    check_same_index(pd.DataFrame(np.ones(3)), labelled, "data", "paradigm")
    with pytest.raises(ValueError, match="different time indices"):
        shifted = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.RangeIndex(1, 4, name="time"))
        check_same_index(labelled, shifted, "data", "paradigm")


def test_check_columns_names_kwargs_positive_choice():
    frame = pd.DataFrame({"sd": [1.0], "mu": [0.0]})
    assert list(check_columns(frame, ["mu", "sd"], "parameters").columns) == ["mu", "sd"]
    with pytest.raises(ValueError, match="missing 'amplitude'; unexpected 'width'"):
        check_columns(frame.assign(width=1.0), ["mu", "sd", "amplitude"], "parameters")
    assert check_names("sd", ["mu", "sd"], "fixed_pars") == ["sd"]
    assert check_names(None, ["mu"], "fixed_pars") == []
    with pytest.raises(ValueError, match=r"fixed_pars: unknown parameter name 'sigma'.*'mu'"):
        check_names(["sigma"], ["mu", "sd"], "fixed_pars")
    check_kwargs({"lr": 1}, "fit", allowed=["lr"])
    with pytest.raises(TypeError, match=r"fit\(\) got unexpected keyword arguments 'a', 'b'"):
        check_kwargs({"a": 1, "b": 2}, "fit")
    with pytest.raises(ValueError, match=r"'sd' must be > 0, but 2 voxels \('b', 'c'\)"):
        check_positive(pd.DataFrame({"sd": [1.0, 0.0, -1.0]},
                                    index=pd.Index(["a", "b", "c"], name="voxel")),
                       ["sd", "kappa"], "parameters")
    assert check_choice("ssq", ["ssq", "gaussian"], "noise_model") == "ssq"
    with pytest.raises(ValueError, match="noise_model must be one of"):
        check_choice("l1", ["ssq", "gaussian"], "noise_model")


def test_format_labels_and_constant_columns():
    assert format_labels([np.int64(3), "a"]) == "3, 'a'"
    assert format_labels(range(8)) == "0, 1, 2, 3, 4 and 3 more"
    frame = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 2.0], "c": [0.0, 0.0]})
    assert constant_columns(frame).tolist() == ["a", "c"]


# ---------------------------------------------------------------------------- stats
def test_r2_and_r_match_numpy(rng):
    y = rng.normal(size=(30, 4))
    p = y + rng.normal(size=(30, 4))
    r2 = get_rsq(y, p)
    np.testing.assert_allclose(r2, 1 - ((y - p) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0),
                               rtol=1e-12)
    assert r2.name == "r2" and r2.index.equals(pd.RangeIndex(4, name="voxel"))
    r = get_r(y, p)
    np.testing.assert_allclose(r, [np.corrcoef(y[:, i], p[:, i])[0, 1] for i in range(4)],
                               rtol=1e-12)
    assert r.name == "r"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_rsq(y, y).eq(1.0).all()


def test_constant_voxels_give_nan_with_a_runtime_warning(rng):
    y = rng.normal(size=(20, 2))
    data = pd.DataFrame({"a": y[:, 0], "flat": 1.0, "b": y[:, 1]})
    predictions = data + rng.normal(size=data.shape)
    with pytest.warns(RuntimeWarning, match=r"1 voxel with zero variance \('flat'\)"):
        r2 = get_rsq(data, predictions)
    assert np.isnan(r2["flat"]) and np.isfinite(r2[["a", "b"]]).all()
    with pytest.warns(RuntimeWarning, match="'flat'"):
        r = get_r(data, predictions)
    assert np.isnan(r["flat"]) and np.isfinite(r[["a", "b"]]).all()
    with pytest.warns(RuntimeWarning, match=r"data or predictions: 2 voxels .*\('flat', 'b'\)"):
        r = get_r(data, predictions.assign(b=2.0))
    assert np.isnan(r["b"])


def test_r2_bad_input(rng):
    y = pd.DataFrame(rng.normal(size=(5, 2)), columns=["a", "b"])
    with pytest.raises(ValueError, match="data has 2 voxels but predictions have 3"):
        get_rsq(y, rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="data has 5 time points but predictions has 4"):
        get_rsq(y, y.iloc[:4])
    with pytest.raises(ValueError, match="predictions lack voxels of data: 'b'"):
        get_rsq(y, y.rename(columns={"b": "c"}))
