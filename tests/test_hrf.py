"""SPM canonical HRF against an independent scipy implementation; causal convolution."""

import numpy as np
import pytest
from scipy import stats

from braincoder.hrf import (
    CustomHRFModel,
    SPMHRFDerivativeModel,
    SPMHRFModel,
    causal_convolution_matrix,
    hrf_model_from_config,
    spm_hrf,
)


def spm12(t, a1=6.0, d1=1.0, a2=16.0, d2=1.0, ratio=6.0):
    """SPM12 spm_hrf: gamma densities of shape delay/dispersion and scale dispersion."""
    return stats.gamma.pdf(t, a1 / d1, scale=d1) - stats.gamma.pdf(t, a2 / d2, scale=d2) / ratio


def test_spm_hrf_matches_spm12_on_the_same_grid():
    highres_dt = 0.1
    t = np.arange(0, 32, highres_dt)
    ours = spm_hrf(t, highres_dt=highres_dt)
    reference = spm12(t)
    assert np.corrcoef(ours, reference)[0, 1] > 0.9999
    assert abs(t[np.argmax(ours)] - t[np.argmax(reference)]) <= highres_dt
    # Normalisation: unit area over [0, inf) (documented), i.e. SPM's shape / (1 - 1/6).
    np.testing.assert_allclose(ours, reference / (1 - 1 / 6), rtol=1e-10, atol=1e-12)
    assert abs(np.trapezoid(spm_hrf(np.arange(0, 60, 0.01)), dx=0.01) - 1) < 1e-3


@pytest.mark.parametrize("tr", [0.8, 1.5, 2.5])
def test_kernel_sampled_at_exact_multiples_of_tr(tr):
    model = SPMHRFModel(tr=tr)
    times = model.kernel_times
    np.testing.assert_allclose(np.diff(times), tr)
    assert times[0] == 0.0
    kernel = model.get_hrf()
    reference = spm12(times, ratio=1 / 0.167)
    np.testing.assert_allclose(kernel, reference / reference.sum(), rtol=1e-10, atol=1e-12)
    assert abs(kernel.sum() - 1) < 1e-12
    # The sampled peak lies within TR/2 of the continuous peak (about 5 s).
    fine = np.arange(0, 32, 0.001)
    continuous_peak = fine[np.argmax(spm_hrf(fine, c=0.167))]
    assert 4.8 < continuous_peak < 5.2
    assert abs(times[np.argmax(kernel)] - continuous_peak) <= tr / 2 + 1e-9


def test_unique_hrfs_equal_shared_kernel_at_defaults_and_shift_with_delay():
    shared = SPMHRFModel(tr=1.0)
    unique = SPMHRFModel(tr=1.0, unique_hrfs=True)
    assert unique.parameter_labels == ["hrf_delay", "hrf_dispersion"]
    kernels = np.asarray(unique.get_hrf(np.array([[6.0, 1.0], [7.0, 1.0]])))
    np.testing.assert_allclose(kernels[:, 0], shared.get_hrf(), atol=1e-6)
    assert np.argmax(kernels[:, 1]) > np.argmax(kernels[:, 0])
    with pytest.raises(ValueError, match="per-voxel HRF parameters"):
        unique.get_hrf()


def test_convolution_is_causal_and_equals_numpy():
    model = SPMHRFModel(tr=1.5)
    kernel = model.get_hrf()
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((60, 3))
    impulse = np.zeros((60, 1))
    impulse[20] = 1.0
    out = np.asarray(model.convolve(impulse))
    assert np.all(out[:20] == 0.0)
    np.testing.assert_allclose(out[20 : 20 + len(kernel), 0], kernel[: 40], atol=1e-7)
    out = np.asarray(model.convolve(signal))
    for column in range(3):
        np.testing.assert_allclose(out[:, column], np.convolve(signal[:, column], kernel)[:60],
                                   atol=1e-5)


def test_per_voxel_convolution_matches_numpy():
    model = SPMHRFModel(tr=1.0, unique_hrfs=True)
    parameters = np.array([[5.0, 0.8], [6.5, 1.2]])
    kernels = np.asarray(model.get_hrf(parameters))
    signal = np.random.default_rng(1).standard_normal((50, 2))
    out = np.asarray(model.convolve(signal, parameters))
    for column in range(2):
        np.testing.assert_allclose(out[:, column],
                                   np.convolve(signal[:, column], kernels[:, column])[:50],
                                   atol=1e-5)
    impulse = np.zeros((50, 2))
    impulse[10] = 1
    assert np.all(np.asarray(model.convolve(impulse, parameters))[:10] == 0)


def test_causal_convolution_matrix():
    matrix = causal_convolution_matrix([1.0, 0.5], 4)
    np.testing.assert_array_equal(matrix, [[1, 0, 0, 0], [0.5, 1, 0, 0], [0, 0.5, 1, 0],
                                           [0, 0, 0.5, 1]])


def test_derivative_model_shifts_response():
    canonical = SPMHRFModel(tr=0.5).get_hrf()
    earlier = SPMHRFDerivativeModel(tr=0.5, delta=1.0).get_hrf()
    later = SPMHRFDerivativeModel(tr=0.5, delta=-1.0).get_hrf()
    np.testing.assert_allclose(SPMHRFDerivativeModel(tr=0.5).get_hrf(), canonical)
    assert np.argmax(earlier) < np.argmax(canonical) < np.argmax(later)
    unique = SPMHRFDerivativeModel(tr=0.5, unique_hrfs=True)
    kernels = np.asarray(unique.get_hrf(np.array([[1.0], [0.0]])))
    np.testing.assert_allclose(kernels[:, 0], earlier, atol=1e-6)


def test_custom_hrf():
    kernel = np.array([0.0, 0.5, 0.3, 0.2])
    model = CustomHRFModel(kernel)
    signal = np.random.default_rng(2).standard_normal((20, 2))
    out = np.asarray(model.convolve(signal))
    np.testing.assert_allclose(out[:, 1], np.convolve(signal[:, 1], kernel)[:20], atol=1e-6)
    per_voxel = CustomHRFModel(np.column_stack([kernel, kernel[::-1]]))
    out = np.asarray(per_voxel.convolve(signal))
    np.testing.assert_allclose(out[:, 1], np.convolve(signal[:, 1], kernel[::-1])[:20],
                               atol=1e-6)
    with pytest.raises(ValueError, match="2 voxel kernels"):
        per_voxel.convolve(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="NaN"):
        CustomHRFModel([np.nan, 1.0])


def test_config_round_trip():
    for model in (SPMHRFModel(tr=2.0, unique_hrfs=True, delay=5.5),
                  SPMHRFDerivativeModel(tr=1.0, delta=0.3), CustomHRFModel([0.0, 1.0])):
        rebuilt = hrf_model_from_config(model.get_config())
        assert type(rebuilt) is type(model)
        assert rebuilt.get_config() == model.get_config()
    with pytest.raises(ValueError, match="unknown HRF model class"):
        hrf_model_from_config({"class": "os.system"})


@pytest.mark.parametrize("kwargs, match", [
    ({"tr": 0}, "tr must be positive"),
    ({"tr": 2.0, "time_length": 1.0}, "time_length"),
    ({"tr": 1.0, "min_hrf_delay": 7.0, "max_hrf_delay": 3.0}, "min < max"),
])
def test_bad_hrf_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SPMHRFModel(**kwargs)
    with pytest.raises(TypeError, match="delai"):
        SPMHRFModel(tr=1.0, delai=6.0)
