"""Run handling: detrending, scaling, averaging and concatenating against numpy formulas."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braincoder.utils import (
    average_runs,
    concatenate_runs,
    detrend,
    percent_signal_change,
    prepare_runs,
    zscore,
)
from braincoder.utils.preprocessing import drift_regressors, match_paradigm


def _run(seed=0, n=80, columns=("V1_0001", "V1_0002", "V2_0001")):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = (100 + 10 * rng.random(len(columns)) + np.outer(t, rng.normal(size=len(columns)))
              * 0.05 + np.outer((t / n) ** 2, rng.normal(size=len(columns))) * 3
              + rng.normal(size=(n, len(columns))))
    return pd.DataFrame(values, index=pd.RangeIndex(n, name="time"),
                        columns=pd.Index(columns, name="vertex"))


def test_polynomial_detrend_matches_polyfit_and_keeps_the_mean():
    run = _run()
    result = detrend(run, order=2)
    t = np.arange(len(run))
    for column in run.columns:
        y = run[column].to_numpy()
        fitted = np.polyval(np.polyfit(t, y, 2), t)
        np.testing.assert_allclose(result[column].to_numpy(), y - fitted + y.mean(),
                                   atol=1e-9)
    assert result.index.equals(run.index) and result.columns.equals(run.columns)
    np.testing.assert_allclose(result.mean().to_numpy(), run.mean().to_numpy())
    pd.testing.assert_frame_equal(detrend(run, order=0), run)


def test_high_pass_matches_an_explicit_discrete_cosine_basis():
    run, tr, cutoff = _run(n=100), 2.0, 128.0
    n = len(run)
    n_cosines = int(np.floor(2 * n * tr / cutoff))  # SPM: fix(2 * n * TR / cutoff)
    assert n_cosines == 3
    t = np.arange(n)[:, None]
    k = np.arange(1, n_cosines + 1)[None, :]
    basis = np.hstack([np.ones((n, 1)), np.sqrt(2 / n) * np.cos(np.pi * k * (2 * t + 1)
                                                                / (2 * n))])
    y = run.to_numpy()
    beta = np.linalg.lstsq(basis, y, rcond=None)[0]
    expected = y - basis[:, 1:] @ beta[1:]
    np.testing.assert_allclose(detrend(run, order=None, high_pass=cutoff, tr=tr).to_numpy(),
                               expected, atol=1e-9)
    np.testing.assert_allclose(drift_regressors(n, high_pass=cutoff, tr=tr), basis[:, 1:])

    # A drift slower than the cutoff goes, a faster oscillation stays.
    seconds = np.arange(n) * tr
    slow = np.cos(2 * np.pi * seconds / 400.0)
    fast = np.sin(2 * np.pi * seconds / 20.0)
    frame = pd.DataFrame({"slow": 50 + slow, "fast": 50 + fast})
    filtered = detrend(frame, order=None, high_pass=cutoff, tr=tr)
    assert np.std(filtered["slow"]) < 0.1 * np.std(slow)
    assert np.corrcoef(filtered["fast"], fast)[0, 1] > 0.99


def test_polynomial_and_high_pass_together():
    run = _run(n=100)
    combined = detrend(run, order=1, high_pass=100.0, tr=2.0)
    basis = np.hstack([np.ones((100, 1)), drift_regressors(100, 1, 100.0, 2.0)])
    y = run.to_numpy()
    beta = np.linalg.lstsq(basis, y, rcond=None)[0]
    np.testing.assert_allclose(combined.to_numpy(), y - basis[:, 1:] @ beta[1:], atol=1e-9)


def test_percent_signal_change_and_zscore_match_formulas():
    run = _run()
    y = run.to_numpy()
    np.testing.assert_allclose(percent_signal_change(run).to_numpy(),
                               100 * (y - y.mean(0)) / y.mean(0))
    np.testing.assert_allclose(zscore(run).to_numpy(), (y - y.mean(0)) / y.std(0))
    np.testing.assert_allclose(zscore(run, ddof=1).to_numpy(), (y - y.mean(0)) / y.std(0, ddof=1))
    assert percent_signal_change(run).columns.equals(run.columns)


def test_scaling_errors_and_warnings_name_the_voxel():
    run = _run()
    run["V2_0001"] = 0.0
    with pytest.raises(ValueError, match="mean 0.*'V2_0001'"):
        percent_signal_change(run)
    run["V2_0001"] = 7.0
    with pytest.raises(ValueError, match="constant.*'V2_0001'"):
        zscore(run)
    run["V2_0001"] = -100.0 + np.arange(len(run)) * 0.01
    with pytest.warns(RuntimeWarning, match="negative mean.*'V2_0001'"):
        percent_signal_change(run)
    run.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="'V1_0001'.*non-finite"):
        detrend(run)
    with pytest.raises(ValueError, match="needs the repetition time"):
        detrend(_run(), high_pass=128.0)
    with pytest.raises(ValueError, match="drift regressors for 5 time points"):
        detrend(_run(n=5), order=4)


def test_average_and_concatenate_match_numpy_and_keep_labels():
    runs = [_run(seed) for seed in range(3)]
    mean = average_runs(runs)
    np.testing.assert_allclose(mean.to_numpy(), np.mean([r.to_numpy() for r in runs], axis=0))
    assert mean.columns.equals(runs[0].columns) and mean.index.equals(runs[0].index)
    stacked = concatenate_runs([runs[0], runs[1].iloc[:50]])
    np.testing.assert_array_equal(stacked.to_numpy(),
                                  np.concatenate([runs[0].to_numpy(),
                                                  runs[1].to_numpy()[:50]]))
    assert list(stacked.index) == list(range(130)) and stacked.index.name == "time"
    multi = pd.MultiIndex.from_tuples([("L", 1), ("L", 5), ("R", 2)], names=["hemi", "vertex"])
    labelled = [run.set_axis(multi, axis=1) for run in runs[:2]]
    assert average_runs(labelled).columns.equals(multi)
    assert concatenate_runs(labelled).columns.equals(multi)


def test_runs_must_match_in_voxels_and_length():
    first, second = _run(0), _run(1)
    second.attrs["source"] = ["sub-01_run-2_hemi-L_bold.func.gii"]
    renamed = second.rename(columns={"V2_0001": "V3_0001"})
    renamed.attrs = dict(second.attrs)
    with pytest.raises(ValueError, match="run-2_hemi-L.*'V3_0001'.*same voxels"):
        average_runs([first, renamed])
    fewer = second.iloc[:, :2]
    fewer.attrs = dict(second.attrs)
    with pytest.raises(ValueError, match="run-2_hemi-L.*2 voxels"):
        concatenate_runs([first, fewer])
    short = second.iloc[:70]
    short.attrs = dict(second.attrs)
    with pytest.raises(ValueError, match="different lengths.*run 1: 80.*run-2_hemi-L.*70"):
        average_runs([first, short])
    assert len(average_runs([first, short], truncate=True)) == 70


def test_match_paradigm():
    paradigm = pd.DataFrame({"x": np.arange(4.0)})
    repeated = match_paradigm(paradigm, [4, 4], "concatenate")
    np.testing.assert_array_equal(repeated["x"], np.tile(np.arange(4.0), 2))
    per_run = match_paradigm([paradigm, paradigm * 2], [4, 4], "concatenate")
    np.testing.assert_array_equal(per_run["x"], np.r_[np.arange(4.0), 2 * np.arange(4.0)])
    assert match_paradigm(paradigm, [4, 4], "average").equals(paradigm)
    with pytest.raises(ValueError, match="run 2 differs"):
        match_paradigm([paradigm, paradigm * 2], [4, 4], "average")
    with pytest.raises(ValueError, match="run 1 has 4 time points but the run has 5"):
        match_paradigm(paradigm, [5], "average")
    with pytest.raises(ValueError, match="different lengths"):
        match_paradigm([paradigm, paradigm.iloc[:3]], [4, 3], "average")
    assert len(match_paradigm([paradigm, paradigm.iloc[:3]], [4, 3], "average",
                              truncate=True)) == 3
    with pytest.raises(ValueError, match="3 paradigms for 2 runs"):
        match_paradigm([paradigm] * 3, [4, 4], "concatenate")


def test_prepare_runs_is_the_composition_of_the_steps():
    runs = [_run(0), _run(1)]
    paradigm = pd.DataFrame({"x": np.linspace(0, 1, 80)})
    data, matched = prepare_runs(runs, paradigm, order=1, high_pass=60.0, tr=1.5,
                                 scale="psc", combine="average")
    expected = average_runs([percent_signal_change(detrend(run, 1, 60.0, 1.5))
                             for run in runs])
    pd.testing.assert_frame_equal(data, expected)
    assert matched.index.equals(data.index)
    data, matched = prepare_runs(runs, paradigm, scale="zscore", combine="concatenate")
    pd.testing.assert_frame_equal(data, concatenate_runs([zscore(run) for run in runs]))
    assert len(matched) == 160
    with pytest.raises(ValueError, match="2 runs: choose how to combine"):
        prepare_runs(runs)
    bad = _run(1)
    bad["V1_0002"] = 0.0
    bad.attrs["source"] = ["sub-01_run-2_bold.dtseries.nii"]
    with pytest.raises(ValueError, match="run-2_bold.dtseries.nii.*mean 0.*'V1_0002'"):
        prepare_runs([runs[0], bad], scale="psc", combine="average")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single, none = prepare_runs(runs[0])
    pd.testing.assert_frame_equal(single, runs[0])
    assert none is None


@settings(max_examples=25, deadline=None)
@given(n_time=st.integers(8, 40), n_voxels=st.integers(1, 6), order=st.integers(0, 3),
       seed=st.integers(0, 1000))
def test_steps_keep_labels_and_commute_with_column_order(n_time, n_voxels, order, seed):
    rng = np.random.default_rng(seed)
    columns = pd.Index([f"R_{v:06d}" for v in rng.permutation(1000)[:n_voxels]], name="voxel")
    run = pd.DataFrame(50 + rng.normal(size=(n_time, n_voxels)), columns=columns,
                       index=pd.Index(np.arange(n_time) * 2, name="time"))
    permutation = rng.permutation(n_voxels)
    for step in (lambda f: detrend(f, order=order), percent_signal_change, zscore):
        result = step(run)
        assert result.index.equals(run.index) and result.columns.equals(run.columns)
        shuffled = step(run.iloc[:, permutation])
        pd.testing.assert_frame_equal(shuffled, result.iloc[:, permutation])
