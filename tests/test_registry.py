"""Model registry: every model registered by name, get_model, and its errors."""

import subprocess
import sys

import pytest

import braincoder.models as models
from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    EncodingModel,
    get_model,
    get_model_class,
    list_models,
    register_model,
)
from braincoder.models.registry import _REGISTRY, BUILTIN_MODELS, model_info

CLASSIC = {
    "linear": "LinearModel",
    "linear_baseline": "LinearModelWithBaseline",
    "linear_baseline_hrf": "LinearModelWithBaselineHRF",
    "gaussian_prf": "GaussianPRF",
    "gaussian_prf_hrf": "GaussianPRFWithHRF",
    "von_mises_prf": "VonMisesPRF",
    "log_gaussian_prf": "LogGaussianPRF",
    "log_gaussian_prf_hrf": "LogGaussianPRFWithHRF",
    "gaussian_prf_2d": "GaussianPRF2D",
    "gaussian_prf_2d_hrf": "GaussianPRF2DWithHRF",
    "dog_prf_2d": "DifferenceOfGaussiansPRF2D",
    "dog_prf_2d_hrf": "DifferenceOfGaussiansPRF2DWithHRF",
    "dn_prf_2d": "DivisiveNormalizationGaussianPRF2D",
    "dn_prf_2d_hrf": "DivisiveNormalizationGaussianPRF2DWithHRF",
}
DEEP = ("eeg_to_fmri", "fmri_ae", "embedding_decoder")


def _run_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def constructor_kwargs(name, grid):
    kwargs = {}
    if "2d" in name:
        kwargs["grid_coordinates"] = grid
    if name.endswith("_hrf"):
        kwargs["hrf_model"] = SPMHRFModel(tr=2.0)
    return kwargs


def test_every_classic_model_is_registered_under_its_name():
    names = list_models()
    assert names == sorted(names)
    for name, class_name in CLASSIC.items():
        cls = get_model_class(name)
        assert cls is getattr(models, class_name)
        assert cls.registry_name == name
        assert issubclass(cls, EncodingModel)


@pytest.mark.parametrize("name", DEEP)
def test_deep_models_are_registered(name):
    assert name in list_models()
    assert get_model_class(name).registry_name == name


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_get_model_builds_every_classic_model(name, grid):
    model = get_model(name, **constructor_kwargs(name, grid))
    assert type(model) is getattr(models, CLASSIC[name])
    assert model.get_config()["model"] == name
    if name.endswith("_hrf"):
        assert model.hrf_model.tr == 2.0


def test_get_model_passes_keyword_arguments(grid):
    unique = SPMHRFModel(tr=1.5, unique_hrfs=True)
    model = get_model("gaussian_prf_2d_hrf", grid_coordinates=grid, hrf_model=unique)
    assert model.hrf_model is unique
    assert model.get_parameter_labels()[-2:] == ["hrf_delay", "hrf_dispersion"]
    assert model.grid_coordinates.equals(grid)
    model = get_model("gaussian_prf", paradigm=[1.0, 2.0, 3.0])
    assert model.paradigm.shape == (3, 1)


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown model 'gausian_prf'; known models: .*") as info:
        get_model("gausian_prf")
    for name in CLASSIC:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="unknown model"):
        get_model_class("GaussianPRF")  # class names are not registry names


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_unknown_keyword_is_a_type_error_naming_it(name, grid):
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_voxelz'"):
        get_model(name, n_voxelz=3, **constructor_kwargs(name, grid))


def test_register_model_rejects_clashes_and_bad_names():
    with pytest.raises(ValueError, match="'gaussian_prf' is already registered to GaussianPRF"):
        @register_model("gaussian_prf")
        class Other(EncodingModel):
            parameter_labels = ["baseline"]

    assert get_model_class("gaussian_prf") is models.GaussianPRF
    with pytest.raises(TypeError, match="non-empty string"):
        register_model("")
    with pytest.raises(TypeError, match="non-empty string"):
        register_model(None)


def test_register_and_build_a_new_model():
    try:
        @register_model("constant_test_model")
        class ConstantModel(EncodingModel):
            parameter_labels = ["baseline"]

            def _neural(self, paradigm, parameters):
                return paradigm[:, :1] * 0.0 + parameters[:, 0] * 0.0

        assert "constant_test_model" in list_models()
        model = get_model("constant_test_model")
        assert isinstance(model, ConstantModel)
        prediction = model.predict([[1.0], [2.0]], [[3.0], [4.0]])
        assert prediction.to_numpy().tolist() == [[3.0, 4.0], [3.0, 4.0]]
    finally:
        _REGISTRY.pop("constant_test_model", None)
    assert "constant_test_model" not in list_models()


def test_listing_does_not_depend_on_imports():
    # A fresh interpreter: the list is complete before any model module is imported, and
    # the same after importing every submodule.
    lines = _run_python(
        "import sys\n"
        "from braincoder.models.registry import list_models\n"
        "before = list_models()\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)\n"
        "import braincoder.models.deep, braincoder.models.image_decoders\n"
        "import braincoder.models.linear, braincoder.models.prf_1d, braincoder.models.prf_2d\n"
        "print(before == list_models())\n"
        "print(' '.join(before))\n"
    )
    assert lines[:2] == ["False", "True"]
    names = lines[2].split()
    assert {"ridge_image_decoder", "prf_inversion_decoder", "vae_gan"} <= set(names)
    assert names == sorted(BUILTIN_MODELS)


@pytest.mark.parametrize("module", ["braincoder", "braincoder.models.registry",
                                    "braincoder.models"])
def test_importing_the_registry_does_not_import_tensorflow(module):
    lines = _run_python(f"import sys, {module}\n"
                        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    assert lines == ["[]"]


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_static_table_agrees_with_the_classes(name):
    info = model_info(name)
    cls = get_model_class(name)
    module, _, qualname = info.target.partition(":")
    assert (cls.__module__, cls.__qualname__) == (module, qualname)
    assert cls.registry_name == name
    labels = getattr(cls, "parameter_labels", None)
    if info.kind == "encoding":
        assert issubclass(cls, EncodingModel)
        assert tuple(labels) == info.parameter_labels
        assert info.hrf == issubclass(cls, models.HRFEncodingModel)
    else:
        assert not (isinstance(cls, type) and issubclass(cls, EncodingModel))
        assert info.parameter_labels == ()
    assert info.description


def test_every_decorated_class_is_in_the_static_table():
    # A model registered in the library's source must be declared in BUILTIN_MODELS too.
    import re
    from pathlib import Path

    import braincoder

    root = Path(braincoder.__file__).parent
    decorated = set()
    for path in root.rglob("*.py"):
        decorated |= set(re.findall(r'^@register_model\("(\w+)"\)', path.read_text(),
                                    flags=re.MULTILINE))
    assert decorated == set(BUILTIN_MODELS)


def test_user_models_are_listed_with_their_labels():
    try:
        @register_model("two_label_test_model")
        class TwoLabels(EncodingModel):
            parameter_labels = ["gain", "baseline"]

        info = model_info("two_label_test_model")
        assert info.parameter_labels == ("gain", "baseline") and info.kind == "encoding"
        assert get_model_class("two_label_test_model") is TwoLabels
    finally:
        _REGISTRY.pop("two_label_test_model", None)
    with pytest.raises(ValueError, match="unknown model 'two_label_test_model'"):
        model_info("two_label_test_model")
