import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from braincoder.utils import (
    get_credible_interval,
    get_expected_value,
    get_map,
    get_sd_posterior,
    in_credible_interval,
)

CIRCLE = np.linspace(-np.pi, np.pi, 360, endpoint=False)


def gaussian_pdf(grid, means, sd):
    index = pd.Index([f"t{i}" for i in range(len(means))], name="time")
    values = stats.norm.pdf(grid[None, :], np.asarray(means)[:, None], sd)
    return pd.DataFrame(values, index=index, columns=pd.Index(grid, name="stimulus"))


def von_mises_pdf(mus, kappa):
    values = stats.vonmises.pdf(CIRCLE[None, :], kappa, loc=np.asarray(mus)[:, None])
    return pd.DataFrame(values, columns=pd.Index(CIRCLE, name="stimulus"))


def test_linear_summaries_match_gaussian():
    grid = np.linspace(-10, 30, 4001)
    pdf = gaussian_pdf(grid, [5.0, 11.3], 1.5)
    np.testing.assert_allclose(get_expected_value(pdf), [5.0, 11.3], atol=1e-6)
    np.testing.assert_allclose(get_sd_posterior(pdf), [1.5, 1.5], rtol=1e-3)
    np.testing.assert_allclose(get_map(pdf), [5.0, 11.3], atol=0.01)
    interval = get_credible_interval(pdf, 0.95)
    np.testing.assert_allclose(interval["lower"], np.array([5.0, 11.3]) - 1.96 * 1.5, atol=0.01)
    np.testing.assert_allclose(interval["upper"], np.array([5.0, 11.3]) + 1.96 * 1.5, atol=0.01)
    assert list(interval.columns) == ["lower", "upper"]
    assert get_map(pdf).index.equals(pdf.index)
    assert get_expected_value(pdf).index.equals(pdf.index)


def test_irregular_grid_uses_cell_widths():
    grid = np.geomspace(1, 64, 800)
    pdf = gaussian_pdf(grid, [20.0], 3.0)
    # a plain average over grid points would be pulled towards the dense (small) values
    assert get_expected_value(pdf).iloc[0] == pytest.approx(20.0, abs=0.01)
    assert get_sd_posterior(pdf).iloc[0] == pytest.approx(3.0, rel=0.01)
    interval = get_credible_interval(pdf, 0.5).iloc[0]
    assert interval["lower"] == pytest.approx(20 - 0.6745 * 3, abs=0.05)
    assert interval["upper"] == pytest.approx(20 + 0.6745 * 3, abs=0.05)


def test_unnormalised_input_gives_same_summaries():
    grid = np.linspace(-5, 5, 501)
    pdf = gaussian_pdf(grid, [0.3, -1.0], 0.8)
    scaled = pdf * np.array([[1e-20], [3e5]])
    pd.testing.assert_series_equal(get_expected_value(pdf), get_expected_value(scaled))
    pd.testing.assert_series_equal(get_sd_posterior(pdf), get_sd_posterior(scaled), rtol=1e-9)


def test_circular_summaries_near_wrap():
    kappa = 8.0
    pdf = von_mises_pdf([3.0, -3.0, 0.5], kappa)
    mean = get_expected_value(pdf)
    np.testing.assert_allclose(mean, [3.0, -3.0, 0.5], atol=1e-6)
    resultant = special.i1(kappa) / special.i0(kappa)
    np.testing.assert_allclose(get_sd_posterior(pdf), np.sqrt(-2 * np.log(resultant)), rtol=1e-4)
    # forcing linear summaries gives the (wrong) linear mean for the wrapped posterior
    assert abs(get_expected_value(pdf, circular=False).iloc[0] - 3.0) > 0.1


def test_circular_grid_is_detected_on_other_periods():
    grid = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    pdf = pd.DataFrame([stats.vonmises.pdf(grid, 5.0, loc=0.05)], columns=grid)
    value = get_expected_value(pdf).iloc[0]
    assert 0 <= value < 2 * np.pi
    assert np.angle(np.exp(1j * (value - 0.05))) == pytest.approx(0.0, abs=1e-6)


def test_circular_credible_interval_crosses_wrap():
    pdf = von_mises_pdf([3.1], 20.0)
    interval = get_credible_interval(pdf, 0.95).iloc[0]
    assert interval["lower"] > interval["upper"]  # the arc crosses ±π
    inside = in_credible_interval(pd.concat([pdf] * 3), [3.1, -3.1, 0.0])
    assert inside.tolist() == [True, True, False]


def test_credible_interval_coverage_of_samples():
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 1, 400)
    grid = np.linspace(-10, 10, 801)
    pdf = gaussian_pdf(grid, truth + rng.normal(0, 1, 400), 1.0)  # posterior N(obs, 1)
    coverage = in_credible_interval(pdf, truth, 0.9).mean()
    assert 0.86 < coverage < 0.94


def test_multiindex_positions():
    columns = pd.MultiIndex.from_tuples([(0.0, 0.0), (1.0, 0.0), (0.0, 2.0)], names=["x", "y"])
    pdf = pd.DataFrame([[0.2, 0.5, 0.3]], columns=columns)
    assert get_map(pdf).to_dict("records") == [{"x": 1.0, "y": 0.0}]
    expected = get_expected_value(pdf)
    assert expected.loc[0, "x"] == pytest.approx(0.5)
    assert expected.loc[0, "y"] == pytest.approx(0.6)
    sd = get_sd_posterior(pdf)
    assert sd.loc[0, "x"] == pytest.approx(0.5)


def test_bad_inputs():
    grid = np.linspace(0, 1, 11)
    pdf = gaussian_pdf(grid, [0.5], 0.1)
    with pytest.raises(TypeError, match="DataFrame"):
        get_map(pdf.to_numpy())
    with pytest.raises(ValueError, match="non-negative"):
        get_expected_value(-pdf)
    with pytest.raises(ValueError, match="level"):
        get_credible_interval(pdf, 1.5)
    with pytest.raises(ValueError, match="1 time points"):
        in_credible_interval(pdf, [0.1, 0.2])
    with pytest.raises(ValueError, match="no mass"):
        get_expected_value(pdf * 0)
    with pytest.raises(ValueError, match="numeric"):
        get_expected_value(pd.DataFrame([[0.5, 0.5]], columns=["a", "b"]))


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(0.0, 10.0), min_size=3, max_size=12),
       shift=st.floats(-5, 5))
def test_property_mean_inside_grid_and_shift_equivariant(values, shift):
    values = np.asarray(values)
    if values.sum() <= 0:
        values = values + 1.0
    grid = np.linspace(0, 1, len(values))
    pdf = pd.DataFrame([values], columns=grid, index=pd.Index(["a"], name="time"))
    mean = get_expected_value(pdf, circular=False).iloc[0]
    assert grid.min() - 0.5 / (len(grid) - 1) <= mean <= grid.max() + 0.5 / (len(grid) - 1)
    shifted = pdf.set_axis(grid + shift, axis=1)
    assert get_expected_value(shifted, circular=False).iloc[0] == pytest.approx(mean + shift)
    assert get_sd_posterior(shifted, circular=False).iloc[0] == pytest.approx(
        get_sd_posterior(pdf, circular=False).iloc[0], abs=1e-9
    )


def test_sd_of_a_narrow_posterior_far_from_zero_keeps_its_precision():
    # almost all mass on one grid point: the spread is tiny next to the values
    grid = 1000.0 + np.linspace(0, 1, 3)
    pdf = pd.DataFrame([[0.0, 1.0, 1e-16]], columns=grid)
    expected = np.sqrt(1e-16 * 0.25 / (1 + 1e-16))  # mass 1e-16 at 0.5 from the mean
    assert get_sd_posterior(pdf, circular=False).iloc[0] == pytest.approx(expected, rel=1e-6)
