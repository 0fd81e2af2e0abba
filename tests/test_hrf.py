"""SPM canonical HRF against an independent SPM12 implementation; causal convolution."""

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


def spm12_formula(t, a1=6.0, d1=1.0, a2=16.0, d2=1.0, ratio=6.0):
    """SPM12's canonical HRF before normalisation, with scipy's gamma density."""
    return stats.gamma.pdf(t, a1 / d1, scale=d1) - stats.gamma.pdf(t, a2 / d2, scale=d2) / ratio


def spm12_kernel(tr, a1=6.0, a2=16.0, d1=1.0, d2=1.0, ratio=6.0, onset=0.0, length=32.0,
                 fmri_t=16):
    """SPM12 ``spm_hrf(RT, p, T)`` step by step: micro-time grid, subsample, unit sum.

    SPM evaluates the gamma densities on a grid of ``dt = RT / T`` in units of samples
    (``spm_Gpdf(u, p(1)/p(3), dt/p(3))``, a rate), keeps every T-th sample
    (``(0:(p(7)/RT))*T + 1``) and divides by the sum.
    """
    dt = tr / fmri_t
    u = np.arange(0, np.ceil(length / dt) + 1) - onset / dt
    hrf = (stats.gamma.pdf(u, a1 / d1, scale=d1 / dt)
           - stats.gamma.pdf(u, a2 / d2, scale=d2 / dt) / ratio)
    hrf = hrf[np.arange(int(np.floor(length / tr)) + 1) * fmri_t]
    return hrf / hrf.sum()


def convolve_columns(signal, kernels):
    """Causal convolution of each column with its own kernel column, plain numpy."""
    return np.column_stack([np.convolve(signal[:, v], kernels[:, v])[: len(signal)]
                            for v in range(signal.shape[1])])


# ---------------------------------------------------------------------------- spm_hrf
def test_spm_hrf_matches_spm12_formula_on_the_same_grid():
    highres_dt = 0.1
    t = np.arange(0, 32, highres_dt)
    ours = spm_hrf(t, highres_dt=highres_dt)
    reference = spm12_formula(t)
    assert np.corrcoef(ours, reference)[0, 1] > 0.9999
    assert abs(t[np.argmax(ours)] - t[np.argmax(reference)]) <= highres_dt
    # Documented normalisation: SPM's shape divided by 1 - c (unit area over [0, inf)).
    np.testing.assert_allclose(ours, reference / (1 - 1 / 6), rtol=1e-10, atol=1e-14)
    fine = np.arange(0, 80, 0.005)
    assert abs(np.trapezoid(spm_hrf(fine), fine) - 1) < 1e-4
    # Same kernel as SPM after SPM's normalisation by the sum of the sampled values.
    np.testing.assert_allclose(ours / ours.sum(), reference / reference.sum(), rtol=1e-10)


def test_spm_hrf_is_zero_before_onset_and_takes_per_voxel_parameters():
    t = np.linspace(-3, 30, 120)
    assert np.all(spm_hrf(t)[t <= 0] == 0.0)
    a1 = np.array([5.0, 6.0, 7.5])
    d1 = np.array([0.8, 1.0, 1.3])
    values = spm_hrf(t, a1=a1, d1=d1, c=0.2)
    assert values.shape == (120, 3)
    for v in range(3):
        expected = (stats.gamma.pdf(t, a1[v] / d1[v], scale=d1[v])
                    - 0.2 * stats.gamma.pdf(t, 16.0)) / 0.8
        np.testing.assert_allclose(values[:, v], expected, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("tr", [0.8, 1.5, 2.0, 2.5])
def test_kernel_is_spm12_sampled_at_exact_multiples_of_tr(tr):
    model = SPMHRFModel(tr=tr, ratio=1 / 6)
    n_kernel = int(np.floor(32.0 / tr)) + 1
    np.testing.assert_array_equal(model.kernel_times, np.arange(n_kernel) * tr)
    kernel = model.get_hrf()
    assert kernel.shape == (n_kernel,)
    np.testing.assert_allclose(kernel, spm12_kernel(tr), rtol=1e-9, atol=1e-14)
    assert abs(kernel.sum() - 1) < 1e-12


@pytest.mark.parametrize("tr", [0.8, 1.5, 2.5])
def test_default_ratio_kernel_and_peak_time(tr):
    kernel = SPMHRFModel(tr=tr).get_hrf()
    # The default undershoot ratio is braincoder's 0.167 (SPM12: 1/6).
    np.testing.assert_allclose(kernel, spm12_kernel(tr, ratio=1 / 0.167), rtol=1e-9,
                               atol=1e-14)
    np.testing.assert_allclose(kernel, spm12_kernel(tr), rtol=0, atol=1e-3 * kernel.max())
    fine = np.arange(0, 32, 0.001)
    continuous_peak = fine[np.argmax(spm12_formula(fine))]
    assert 4.9 < continuous_peak < 5.1
    times = np.arange(len(kernel)) * tr
    assert abs(times[np.argmax(kernel)] - continuous_peak) <= tr / 2


def test_onset_shifts_the_kernel():
    tr = 0.5
    shifted = SPMHRFModel(tr=tr, onset=1.0, ratio=1 / 6).get_hrf()
    np.testing.assert_allclose(shifted, spm12_kernel(tr, onset=1.0), rtol=1e-9, atol=1e-14)
    assert np.argmax(shifted) == np.argmax(SPMHRFModel(tr=tr).get_hrf()) + 2


def test_highres_hrf_for_plotting():
    model = SPMHRFModel(tr=2.0, highres_dt=0.05)
    times, values = model.get_highres_hrf()
    np.testing.assert_allclose(times, np.arange(0, 32.0001, 0.05))
    np.testing.assert_allclose(values, spm_hrf(times, c=0.167), rtol=1e-12)


# ---------------------------------------------------------------------------- per voxel
@pytest.mark.parametrize("tr", [0.8, 1.5, 2.5])
def test_unique_hrfs_at_defaults_equal_the_shared_kernel(tr):
    shared = SPMHRFModel(tr=tr).get_hrf()
    unique = SPMHRFModel(tr=tr, unique_hrfs=True)
    assert unique.parameter_labels == ["hrf_delay", "hrf_dispersion"]
    assert unique.default_hrf_parameters == {"hrf_delay": 6.0, "hrf_dispersion": 1.0}
    kernels = np.asarray(unique.get_hrf(np.array([[6.0, 1.0]] * 3)))
    assert kernels.shape == (len(shared), 3)
    for v in range(3):
        np.testing.assert_allclose(kernels[:, v], shared, rtol=1e-5, atol=1e-7)


def test_unique_hrfs_match_scipy_and_shift_later_with_delay():
    tr = 0.5
    model = SPMHRFModel(tr=tr, unique_hrfs=True)
    delay = np.array([3.5, 4.5, 5.5, 6.5])
    dispersion = np.array([0.6, 1.4, 1.0, 0.9])
    kernels = np.asarray(model.get_hrf(np.column_stack([delay, dispersion])))
    t = model.kernel_times[:, None]
    expected = (stats.gamma.pdf(t, delay / dispersion, scale=dispersion)
                - 0.167 * stats.gamma.pdf(t, 16.0))
    expected /= expected.sum(axis=0)
    np.testing.assert_allclose(kernels, expected, rtol=1e-4, atol=1e-6)
    same_dispersion = np.asarray(model.get_hrf(np.column_stack([[4.0, 5.0, 6.0, 7.0],
                                                                 np.ones(4)])))
    peaks = model.kernel_times[np.argmax(same_dispersion, axis=0)]
    assert np.all(np.diff(peaks) > 0)
    with pytest.raises(ValueError, match="per-voxel HRF parameters are required"):
        model.get_hrf()


def test_unique_hrf_transforms_are_bounded():
    model = SPMHRFModel(tr=1.0, unique_hrfs=True, min_hrf_delay=4.0, max_hrf_delay=8.0)
    transforms = model.parameter_transforms
    delay = transforms["hrf_delay"].forward_numpy(np.array([-50.0, 0.0, 50.0]))
    np.testing.assert_allclose(delay, [4.0, 6.0, 8.0], atol=1e-9)
    dispersion = transforms["hrf_dispersion"].forward_numpy(np.array([0.0]))
    np.testing.assert_allclose(dispersion, [(0.3 + 2.0) / 2])
    assert SPMHRFModel(tr=1.0).parameter_transforms == {}


# ---------------------------------------------------------------------------- convolution
@pytest.mark.parametrize("tr", [0.8, 2.5])
def test_shared_convolution_is_causal_and_equals_numpy(tr, rng):
    model = SPMHRFModel(tr=tr)
    kernel = model.get_hrf()
    n = 50
    t0 = 17
    impulse = np.zeros((n, 1))
    impulse[t0] = 1.0
    out = np.asarray(model.convolve(impulse))[:, 0]
    assert np.all(out[:t0] == 0.0)
    tail = min(len(kernel), n - t0)
    np.testing.assert_allclose(out[t0:t0 + tail], kernel[:tail], rtol=1e-6, atol=1e-8)
    signal = rng.standard_normal((n, 3))
    np.testing.assert_allclose(np.asarray(model.convolve(signal)),
                               convolve_columns(signal, np.tile(kernel[:, None], 3)),
                               rtol=1e-5, atol=1e-6)


def test_convolution_with_kernel_longer_than_signal(rng):
    model = SPMHRFModel(tr=0.5)
    signal = rng.standard_normal((12, 2))
    kernel = model.get_hrf()
    assert len(kernel) > len(signal)
    np.testing.assert_allclose(np.asarray(model.convolve(signal)),
                               convolve_columns(signal, np.tile(kernel[:, None], 2)),
                               rtol=1e-5, atol=1e-6)


def test_per_voxel_convolution_is_causal_and_equals_numpy(rng):
    model = SPMHRFModel(tr=1.0, unique_hrfs=True)
    parameters = np.array([[4.0, 0.7], [6.0, 1.0], [6.8, 1.6]])
    kernels = np.asarray(model.get_hrf(parameters))
    signal = rng.standard_normal((45, 3))
    out = np.asarray(model.convolve(signal, parameters))
    np.testing.assert_allclose(out, convolve_columns(signal, kernels), rtol=1e-5, atol=1e-5)
    impulse = np.zeros((45, 3))
    impulse[[5, 10, 20], [0, 1, 2]] = 1.0
    out = np.asarray(model.convolve(impulse, parameters))
    for column, t0 in enumerate([5, 10, 20]):
        assert np.all(out[:t0, column] == 0.0)
        tail = min(45 - t0, len(kernels))
        np.testing.assert_allclose(out[t0:t0 + tail, column], kernels[:tail, column],
                                   atol=1e-7)
        assert np.all(out[t0 + tail:, column] == 0.0)


def test_causal_convolution_matrix():
    matrix = causal_convolution_matrix([1.0, 0.5], 4)
    np.testing.assert_array_equal(matrix, [[1, 0, 0, 0], [0.5, 1, 0, 0], [0, 0.5, 1, 0],
                                           [0, 0, 0.5, 1]])
    x = np.arange(1.0, 5.0)
    np.testing.assert_array_equal(matrix @ x, np.convolve(x, [1.0, 0.5])[:4])


# ---------------------------------------------------------------------------- derivative
def test_derivative_kernel_is_canonical_plus_delta_times_spm_derivative():
    tr = 0.5
    times = SPMHRFModel(tr=tr).kernel_times
    canonical = spm12_formula(times, ratio=1 / 0.167)
    canonical /= canonical.sum()
    shifted = spm12_formula(times - 1.0, ratio=1 / 0.167)
    derivative = canonical - shifted / shifted.sum()
    for delta in (0.0, 0.7, -1.3):
        kernel = SPMHRFDerivativeModel(tr=tr, delta=delta).get_hrf()
        np.testing.assert_allclose(kernel, canonical + delta * derivative, rtol=1e-9,
                                   atol=1e-14)
    model = SPMHRFDerivativeModel(tr=tr, unique_hrfs=True)
    assert model.parameter_labels == ["hrf_delta"]
    kernels = np.asarray(model.get_hrf(np.array([[0.7], [0.0], [-1.3]])))
    for v, delta in enumerate((0.7, 0.0, -1.3)):
        np.testing.assert_allclose(kernels[:, v], canonical + delta * derivative, atol=1e-6)
    with pytest.raises(ValueError, match="per-voxel HRF parameters are required"):
        model.get_hrf()


@pytest.mark.parametrize("delta", [0.5, -0.5])
def test_derivative_shifts_the_peak_by_about_delta_seconds(delta):
    tr = 0.05
    canonical = SPMHRFModel(tr=tr)
    model = SPMHRFDerivativeModel(tr=tr, delta=delta)
    times = canonical.kernel_times
    shift = times[np.argmax(model.get_hrf())] - times[np.argmax(canonical.get_hrf())]
    assert np.sign(shift) == -np.sign(delta)  # delta > 0: earlier
    assert abs(shift + delta) <= 0.15


# ---------------------------------------------------------------------------- custom
def test_custom_hrf_is_used_as_given(rng):
    kernel = np.array([0.0, 0.5, 0.3, 0.4])  # not unit sum: no normalisation
    model = CustomHRFModel(kernel)
    np.testing.assert_array_equal(model.get_hrf(), kernel)
    assert model.parameter_labels == [] and not model.unique_hrfs
    signal = rng.standard_normal((20, 2))
    np.testing.assert_allclose(np.asarray(model.convolve(signal)),
                               convolve_columns(signal, np.tile(kernel[:, None], 2)),
                               atol=1e-6)
    per_voxel = CustomHRFModel(np.column_stack([kernel, kernel[::-1]]))
    np.testing.assert_allclose(np.asarray(per_voxel.convolve(signal)),
                               convolve_columns(signal, np.column_stack([kernel, kernel[::-1]])),
                               atol=1e-6)
    impulse = np.zeros((20, 2))
    impulse[8] = 1.0
    assert np.all(np.asarray(per_voxel.convolve(impulse))[:8] == 0.0)


@pytest.mark.parametrize("hrf, match", [
    ([np.nan, 1.0], "NaN"),
    (np.zeros((2, 2, 2)), "shape"),
    (np.zeros(0), "shape"),
])
def test_custom_hrf_bad_kernels(hrf, match):
    with pytest.raises(ValueError, match=match):
        CustomHRFModel(hrf)


def test_custom_per_voxel_hrf_needs_one_kernel_per_voxel():
    model = CustomHRFModel(np.ones((3, 2)))
    with pytest.raises(ValueError, match="2 voxel kernels but the response has 3 voxels"):
        model.convolve(np.zeros((10, 3)))


# ---------------------------------------------------------------------------- configs/errors
def test_config_round_trip():
    for model in (SPMHRFModel(tr=2.0, unique_hrfs=True, delay=5.5, max_hrf_delay=8.0),
                  SPMHRFDerivativeModel(tr=1.0, delta=0.3, unique_hrfs=True),
                  CustomHRFModel([[0.0, 0.1], [1.0, 0.9]])):
        rebuilt = hrf_model_from_config(model.get_config())
        assert type(rebuilt) is type(model)
        assert rebuilt.get_config() == model.get_config()
        assert rebuilt.parameter_labels == model.parameter_labels
        if not model.unique_hrfs:
            np.testing.assert_array_equal(rebuilt.get_hrf(), model.get_hrf())
    with pytest.raises(ValueError, match="unknown HRF model class 'os.system'"):
        hrf_model_from_config({"class": "os.system"})


@pytest.mark.parametrize("kwargs, match", [
    ({"tr": 0}, "tr must be positive"),
    ({"tr": -1.5}, "tr must be positive"),
    ({"tr": 2.0, "time_length": 1.0}, "time_length"),
    ({"tr": 1.0, "min_hrf_delay": 7.0, "max_hrf_delay": 3.0}, "min < max"),
    ({"tr": 1.0, "min_dispersion": 2.0, "max_dispersion": 1.0}, "min < max"),
])
def test_bad_hrf_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SPMHRFModel(**kwargs)


@pytest.mark.parametrize("cls", [SPMHRFModel, SPMHRFDerivativeModel])
def test_unknown_keyword_is_a_type_error_naming_it(cls):
    with pytest.raises(TypeError, match="delai"):
        cls(tr=1.0, delai=6.0)
