"""The model protocol: fitters use public methods only, capabilities tell the truth.

* Outside ``braincoder/models`` no module reads a private member of a model nor probes one
  with ``getattr``.
* ``model.capabilities`` of every registered encoding model matches what the model does
  (checked numerically: linearity in the paradigm and the amplitude, the baseline, the
  gain parameters, closed-form Jacobians against automatic differentiation).
* The protocol's tensor methods give the same numbers as ``predict``.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from braincoder.hrf import SPMHRFModel
from braincoder.models import FittableModel, ModelCapabilities, get_model_class
from braincoder.models.registry import BUILTIN_MODELS
from braincoder.stimuli import ImageStimulus, make_grid_coordinates

PACKAGE = Path(__file__).resolve().parents[1] / "braincoder"
FORBIDDEN = [re.compile(r"model\._[a-z]"), re.compile(r"self\.model\._"),
             re.compile(r"getattr\([^,]*model")]
#: Lines allowed to match, with the reason: the object is a Keras model, not an encoding model.
ALLOWED = {("_layers_bayes.py", "model._flatten_layers(include_self=False, recursive=True)")}

ENCODING = sorted(name for name, info in BUILTIN_MODELS.items() if info.kind == "encoding")
HRF_MODELS = [name for name in ENCODING if BUILTIN_MODELS[name].hrf]
N_T, N_UNITS, N_VOXELS, N_FEATURES = 24, 4, 3, 3


# ---------------------------------------------------------------------- source scan
def _offending_lines():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "models":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not any(pattern.search(line) for pattern in FORBIDDEN):
                continue
            if any(path.name == name and text in line for name, text in ALLOWED):
                continue
            found.append(f"braincoder/{relative}:{number}: {line.strip()}")
    return found


def test_no_private_model_members_outside_the_models():
    offenders = _offending_lines()
    assert not offenders, ("use the model protocol (braincoder.models.protocol) instead of "
                           "private members or getattr probes:\n" + "\n".join(offenders))


def test_the_scan_finds_what_it_forbids():
    lines = ["theta = model._transform_forward(x)", "self.model._predict(p, t)",
             'hrf = getattr(model, "hrf_model", None)']
    assert all(any(p.search(line) for p in FORBIDDEN) for line in lines)
    assert not any(p.search("model.predict_tensor(p, t)") for p in FORBIDDEN)


# ---------------------------------------------------------------------- model builds
def _build(name, unique_hrfs=False):
    cls = get_model_class(name)
    kwargs = {}
    if cls.image_stimulus:
        kwargs["grid_coordinates"] = make_grid_coordinates(5, extent=2.0)
    if BUILTIN_MODELS[name].hrf:
        kwargs["hrf_model"] = SPMHRFModel(tr=1.0, unique_hrfs=unique_hrfs)
    return cls(**kwargs)


def _paradigm(model, rng):
    if model.capabilities.image_stimulus:
        return pd.DataFrame(rng.uniform(0, 1, (N_T, model.capabilities.stimulus_dimensions)))
    if not model.capabilities.has_parameters or "baseline" == model.get_parameter_labels()[0]:
        return pd.DataFrame(rng.normal(size=(N_T, N_FEATURES)))
    return pd.DataFrame(rng.uniform(0.2, 3.0, (N_T, 1)))


def _parameters(model, paradigm, rng):
    """Random values from the model's default grid (so valid), one row per unit."""
    if not model.capabilities.has_parameters:
        return None
    n = N_VOXELS if model.capabilities.parameter_rows_are_voxels else N_UNITS
    grid = model.default_grid(paradigm, size=5, n_sd=4)
    values = {label: rng.choice(grid[label], n) for label in grid}
    for label in ("baseline", "amplitude"):
        if label in values:
            values[label] = rng.uniform(0.5, 2.0, n)
    return pd.DataFrame(values)[model.get_parameter_labels()]


def _weights(model, rng):
    if model.capabilities.has_parameters:
        return None
    return pd.DataFrame(rng.normal(size=(N_FEATURES, N_VOXELS)))


def _case(name, unique_hrfs=False, seed=0):
    rng = np.random.default_rng(seed)
    model = _build(name, unique_hrfs)
    paradigm = _paradigm(model, rng)
    parameters = _parameters(model, paradigm, rng)
    weights = _weights(model, rng)
    if model.capabilities.parameter_rows_are_voxels:
        weights = pd.DataFrame(rng.normal(size=(N_FEATURES, N_VOXELS)))
    return model, paradigm, parameters, weights


CASES = [(name, False) for name in ENCODING] + [(name, True) for name in HRF_MODELS]


def _array(frame):
    return None if frame is None else frame.to_numpy(np.float32)


# ---------------------------------------------------------------------- capabilities
def test_every_encoding_model_satisfies_the_protocol():
    for name in ENCODING:
        model = _build(name)
        assert isinstance(model, FittableModel), name
        assert isinstance(model.capabilities, ModelCapabilities), name


@pytest.mark.parametrize(("name", "unique_hrfs"), CASES)
def test_capabilities_describe_the_model(name, unique_hrfs):
    model, paradigm, parameters, weights = _case(name, unique_hrfs)
    caps = model.capabilities
    labels = model.get_parameter_labels()
    assert caps.has_hrf == BUILTIN_MODELS[name].hrf
    assert caps.per_voxel_hrf_parameters == (caps.has_hrf and unique_hrfs)
    assert caps.per_voxel_hrf == caps.per_voxel_hrf_parameters  # SPM kernels are 1D
    assert list(caps.hrf_parameter_labels) == (labels[-2:] if unique_hrfs else [])
    assert caps.image_stimulus == isinstance(model.stimulus, ImageStimulus)
    assert caps.stimulus_dimensions == model.stimulus.n_dimensions
    assert caps.has_parameters == bool(labels)
    assert caps.parameter_rows_are_voxels == name.startswith("linear_baseline")
    assert caps.closed_form_weights == (not caps.per_voxel_hrf or not name.startswith("linear"))
    assert caps.isotropic_gaussian_rf == name.startswith("gaussian_prf_2d")
    assert caps.closed_form_jacobian == name.startswith("gaussian_prf_2d")
    assert caps.baseline_label == ("baseline" if "baseline" in labels else None)
    if caps.baseline_label is not None and not caps.parameter_rows_are_voxels:
        shifted = parameters.copy()
        shifted[caps.baseline_label] += 1.0
        difference = (model.predict(paradigm, shifted, weights)
                      - model.predict(paradigm, parameters, weights))
        np.testing.assert_allclose(difference.to_numpy(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("name", [name for name in ENCODING if not name.startswith("linear")])
def test_linearity_claims_hold(name):
    model, paradigm, parameters, _ = _case(name)
    caps = model.capabilities
    theta = tf.constant(_array(parameters))
    stimulus = tf.constant(paradigm.to_numpy(np.float32))
    neural = model.neural_tensor(stimulus, theta).numpy()
    if caps.linear_in_paradigm:
        rf = model.receptive_field_tensor(theta).numpy()
        np.testing.assert_allclose(neural, paradigm.to_numpy(np.float32) @ rf, rtol=1e-4,
                                   atol=1e-6)
    else:
        with pytest.raises(TypeError, match="not linear in the paradigm"):
            model.receptive_field_tensor(theta)
    # Scaling the gain parameters scales the response above its no-stimulus level.
    gains = dict(caps.gain_parameters)
    scaled = parameters.copy()
    for label, power in gains.items():
        scaled[label] *= 3.0 ** power
    blank = np.zeros_like(paradigm.to_numpy())

    def above(frame):
        return (model.predict(paradigm, frame) - model.predict(blank, frame).to_numpy())

    np.testing.assert_allclose(above(scaled).to_numpy(), 3.0 * above(parameters).to_numpy(),
                               rtol=2e-3, atol=1e-5)
    if caps.linear_in_amplitude:
        assert gains == {"amplitude": 1}


@pytest.mark.parametrize("name", ["gaussian_prf_2d", "gaussian_prf_2d_hrf"])
def test_closed_form_jacobian_matches_autodiff(name):
    model, _, parameters, _ = _case(name)
    theta = tf.constant(_array(parameters))
    field, derivatives = model.receptive_field_jacobian(theta)
    np.testing.assert_allclose(field.numpy(), model.receptive_field_tensor(theta).numpy(),
                               rtol=1e-5)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(theta)
        rf = model.receptive_field_tensor(theta)
        sums = [tf.reduce_sum(rf[pixel]) for pixel in (0, 7, 12)]
    for pixel, total in zip((0, 7, 12), sums, strict=True):
        gradient = tape.gradient(total, theta).numpy()
        for column, derivative in enumerate(derivatives):
            expected = gradient[:, column]
            got = np.zeros_like(expected) if derivative is None else derivative.numpy()[pixel]
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(TypeError, match="closed-form"):
        _build("dog_prf_2d").receptive_field_jacobian(theta)


def test_per_voxel_kernels_forbid_closed_form_weights():
    from braincoder.hrf import CustomHRFModel
    from braincoder.models import LinearModelWithBaselineHRF

    kernels = np.abs(np.random.default_rng(0).normal(size=(6, N_VOXELS)))
    model = LinearModelWithBaselineHRF(hrf_model=CustomHRFModel(kernels))
    assert model.capabilities.per_voxel_hrf
    assert not model.capabilities.closed_form_weights
    with pytest.raises(ValueError, match="closed form"):
        model.weight_design(pd.DataFrame(np.eye(N_T, N_FEATURES)), None)


# ---------------------------------------------------------------------- methods vs predict
@pytest.mark.parametrize(("name", "unique_hrfs"), CASES)
def test_tensor_methods_agree_with_predict(name, unique_hrfs):
    model, paradigm, parameters, weights = _case(name, unique_hrfs, seed=1)
    expected = model.predict(paradigm, parameters, weights).to_numpy()
    stimulus = paradigm.to_numpy(np.float32)
    theta = model.parameter_array(model.resolve_parameters(parameters))
    if model.capabilities.parameter_rows_are_voxels or not model.capabilities.has_parameters:
        got = model.predict_tensor(stimulus, theta, _array(weights)).numpy()
    else:
        got = model.predict_tensor(stimulus, theta).numpy()
        if not model.capabilities.has_hrf:
            baseline = model.baseline_tensor(tf.constant(theta))
            neural = model.neural_tensor(tf.constant(stimulus), tf.constant(theta)).numpy()
            rebuilt = neural + (0.0 if baseline is None else baseline.numpy()[None, :])
            np.testing.assert_allclose(rebuilt, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "unique_hrfs"), CASES)
def test_parameter_methods(name, unique_hrfs):
    model, paradigm, parameters, _ = _case(name, unique_hrfs, seed=2)
    labels = model.get_parameter_labels()
    if not labels or model.capabilities.parameter_rows_are_voxels:
        return
    unbounded = model.transform_parameters_backward(parameters)
    natural = model.transform_tensor_forward(tf.constant(unbounded.to_numpy(np.float32)))
    np.testing.assert_allclose(natural.numpy(), parameters.to_numpy(), rtol=1e-4, atol=1e-5)
    lower, upper = model.get_parameter_bounds(paradigm)
    assert lower.shape == upper.shape == (len(labels),)
    assert (lower < upper).all()
    grid = model.default_grid(paradigm)
    assert list(grid) == labels
    model.check_parameters(parameters)
    positive = [label for label, transform in model.get_parameter_transforms().items()
                if np.isfinite(transform.lower)]
    if positive:
        bad = parameters.copy()
        bad.loc[1, positive[0]] = model.get_parameter_transforms()[positive[0]].lower - 1.0
        with pytest.raises(ValueError, match=positive[0]):
            model.check_parameters(bad, "init_pars")


def test_default_grid_spans_the_stimulus():
    model = _build("gaussian_prf")
    paradigm = pd.DataFrame(np.linspace(2.0, 8.0, N_T))
    grid = model.default_grid(paradigm, size=7, n_sd=5)
    np.testing.assert_allclose(grid["mu"], np.linspace(2.0, 8.0, 7))
    assert grid["sd"].size == 5 and grid["sd"].min() > 0
    assert list(grid["baseline"]) == [0.0] and list(grid["amplitude"]) == [1.0]
    image = _build("gaussian_prf_2d")
    grid = image.default_grid(size=4, n_sd=3, sd_range=(0.5, 1.5))
    np.testing.assert_allclose(grid["x"], np.linspace(-2.0, 2.0, 4))
    np.testing.assert_allclose(grid["sd"], np.geomspace(0.5, 1.5, 3))


# ---------------------------------------------------------------------- HRF component
PAIRS = [("gaussian_prf", "gaussian_prf_hrf"), ("log_gaussian_prf", "log_gaussian_prf_hrf"),
         ("gaussian_prf_2d", "gaussian_prf_2d_hrf"), ("dog_prf_2d", "dog_prf_2d_hrf"),
         ("linear_baseline", "linear_baseline_hrf")]


@pytest.mark.parametrize("unique_hrfs", [False, True])
@pytest.mark.parametrize(("base_name", "hrf_name"), PAIRS)
def test_base_models_take_an_hrf_component(base_name, hrf_name, unique_hrfs):
    from braincoder.models import EncodingModel

    reference, paradigm, parameters, weights = _case(hrf_name, unique_hrfs)
    cls = get_model_class(base_name)
    kwargs = {"grid_coordinates": reference.grid_coordinates} if cls.image_stimulus else {}
    model = cls(hrf_model=reference.hrf_model, **kwargs)
    assert model.get_parameter_labels() == reference.get_parameter_labels()
    assert model.capabilities == reference.capabilities
    pd.testing.assert_frame_equal(model.predict(paradigm, parameters, weights),
                                  reference.predict(paradigm, parameters, weights))
    rebuilt = EncodingModel.from_json(model.to_json(include_values=False))
    assert type(rebuilt) is cls and rebuilt.get_config() == model.get_config()
    # Decoding compares data with the HRF-free response, as for the ...WithHRF class.
    theta = model.parameter_array(model.resolve_parameters(parameters))
    stimuli = paradigm.to_numpy(np.float32)[:5]
    columns = np.arange(N_VOXELS if weights is not None else N_UNITS, dtype=np.int32)
    np.testing.assert_allclose(
        model.stimulus_response_tensor(stimuli, theta, _array(weights), columns).numpy(),
        reference.stimulus_response_tensor(stimuli, theta, _array(weights), columns).numpy(),
        rtol=1e-6)


def test_an_hrf_component_is_optional():
    from braincoder.models import GaussianPRF

    assert not GaussianPRF().capabilities.has_hrf
    assert "hrf_model" not in GaussianPRF().get_config()
    with pytest.raises(ValueError, match="needs an hrf_model"):
        GaussianPRF(flexible_hrf_parameters=True)
    with pytest.raises(TypeError, match="HRFModel"):
        GaussianPRF(hrf_model="spm")
