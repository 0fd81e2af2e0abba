"""Save/load of encoding models (JSON + TSV, no pickle) and the table readers/writers."""

import json
import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from braincoder.hrf import SPMHRFModel
from braincoder.models import (
    EncodingModel,
    GaussianPRF,
    HRFEncodingModel,
    VonMisesPRF,
    get_model_class,
    list_models,
    load_model,
    save_model,
)
from braincoder.models.serialization import model_from_config
from braincoder.stimuli import make_grid_coordinates
from braincoder.utils.io import read_table, save_results, write_nifti, write_table

RNG = np.random.default_rng(3)
VALUES = {"x": 0.4, "y": -0.3, "sd": 1.2, "baseline": 0.2, "amplitude": 1.5, "mu": 2.0,
          "kappa": 2.0, "srf_amplitude": 0.3, "srf_size": 2.0, "neural_baseline": 1.0,
          "surround_baseline": 1.5, "hrf_delay": 5.5, "hrf_dispersion": 1.1}
VOXELS = pd.Index(["lh_v1", "rh_v1"], name="roi")
CLASSIC = [name for name in list_models()
           if isinstance(get_model_class(name), type)
           and issubclass(get_model_class(name), EncodingModel)]


def _example(name):
    """A model of every registered class with labelled parameters, weights and omega."""
    cls = get_model_class(name)
    kwargs = {}
    if issubclass(cls, HRFEncodingModel):
        kwargs["hrf_model"] = SPMHRFModel(tr=1.5, unique_hrfs=True, delay=5.8)
    if name.startswith(("gaussian_prf_2d", "dog_prf_2d", "dn_prf_2d")):
        kwargs["grid_coordinates"] = make_grid_coordinates(3, extent=2.0)
    model = cls(**kwargs)
    labels = model.get_parameter_labels()
    if name.startswith("linear"):
        paradigm = pd.DataFrame(RNG.normal(size=(20, 3)), columns=["a", "b", "c"])
        weights = pd.DataFrame(RNG.normal(size=(3, 2)), index=pd.Index(["a", "b", "c"],
                               name="feature"), columns=VOXELS)
        model.weights = model._format_weights(weights)
    elif "2d" in name:
        paradigm = RNG.uniform(size=(20, 9))
    else:
        paradigm = RNG.uniform(0.5, 5.0, size=20)
    if labels:
        values = [[VALUES.get(label, 1.0) * (1 + 0.1 * i) for label in labels] for i in range(2)]
        model.parameters = model._format_parameters(
            pd.DataFrame(values, index=VOXELS, columns=pd.Index(labels, name="parameter")))
    model.omega = np.array([[1.0, 0.2], [0.2, 0.5]])
    return model, paradigm


def _assert_same(model, loaded, paradigm):
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(model.predict(paradigm).to_numpy(),
                                  loaded.predict(paradigm).to_numpy())
    for attribute in ("parameters", "weights"):
        frame, other = getattr(model, attribute), getattr(loaded, attribute)
        if frame is None:
            assert other is None
            continue
        pd.testing.assert_frame_equal(frame, other)
        assert frame.index.names == other.index.names
        assert frame.columns.names == other.columns.names
    np.testing.assert_array_equal(model.omega, loaded.omega)
    assert loaded.get_config() == model.get_config()


def test_every_classic_model_is_covered():
    assert {"gaussian_prf", "gaussian_prf_2d_hrf", "linear_baseline_hrf"} <= set(CLASSIC)


@pytest.mark.parametrize("name", CLASSIC)
def test_round_trip_json_and_directory(name, tmp_path):
    model, paradigm = _example(name)
    _assert_same(model, EncodingModel.from_json(model.to_json()), paradigm)
    save_model(model, tmp_path / name)
    assert (tmp_path / name / "model.json").is_file()
    _assert_same(model, load_model(tmp_path / name), paradigm)
    _assert_same(model, type(model).load(tmp_path / name / "model.json"), paradigm)


def test_labels_multiindex_and_integer_voxels_round_trip(tmp_path):
    voxels = pd.MultiIndex.from_tuples([("V1", 3), ("V2", 7)], names=["area", "vertex"])
    model = GaussianPRF(parameters=pd.DataFrame(
        [[1.0, 2.0, 1.0, 0.0], [3.0, 1.0, 2.0, 1.0]], index=voxels,
        columns=["mu", "sd", "amplitude", "baseline"]))
    loaded = load_model(save_model(model, tmp_path / "m"))
    assert loaded.parameters.index.equals(voxels)
    assert loaded.parameters.index.names == ["area", "vertex"]
    integer = GaussianPRF(parameters=model.parameters.set_axis(pd.Index([5, 9], name="v")))
    again = EncodingModel.from_json(integer.to_json())
    assert again.parameters.index.dtype == np.int64
    assert list(again.parameters.index) == [5, 9]


def test_float32_values_reload_exactly(tmp_path):
    parameters = pd.DataFrame(RNG.uniform(0.5, 2.0, size=(4, 4)).astype(np.float32),
                              columns=["mu", "sd", "amplitude", "baseline"])
    model = GaussianPRF(parameters=parameters)
    loaded = load_model(save_model(model, tmp_path / "f32"))
    assert loaded.parameters.dtypes.eq(np.float32).all()
    np.testing.assert_array_equal(loaded.parameters.to_numpy(), parameters.to_numpy())


def test_spec_only_document_and_model_from_config():
    model, _ = _example("gaussian_prf_2d_hrf")
    document = json.loads(model.to_json(include_values=False))
    assert document["parameters"] is None
    rebuilt = model_from_config(document["spec"])
    assert rebuilt.get_parameter_labels() == model.get_parameter_labels()
    assert rebuilt.parameters is None


def test_class_mismatch_and_unregistered_class(tmp_path):
    text = VonMisesPRF(parameters=[[0.0, 1.0, 1.0, 0.0]]).to_json()
    with pytest.raises(TypeError, match="not a GaussianPRF"):
        GaussianPRF.from_json(text)

    class Unregistered(GaussianPRF):
        pass

    with pytest.raises(TypeError, match="not registered"):
        Unregistered().to_json()


# ---------------------------------------------------------------------- tampered files
def _document():
    return json.loads(GaussianPRFWithHRF_json())


def GaussianPRFWithHRF_json():  # noqa: N802
    cls = get_model_class("gaussian_prf_hrf")
    model = cls(hrf_model=SPMHRFModel(tr=2.0),
                parameters=[[1.0, 1.0, 1.0, 0.0], [2.0, 1.0, 1.0, 0.0]])
    return model.to_json()


def _payloads(sentinel):
    command = f"touch {sentinel}"
    evil = f"__import__('os').system('{command}')"
    cases = []
    for name in ("os.system", "builtins.eval", "subprocess.Popen", evil):
        document = _document()
        document["spec"]["model"] = name
        cases.append((document, ValueError, "unknown model"))
    for name in ("os.system", "builtins.eval", "HRFModel", "object"):
        document = _document()
        document["spec"]["hrf_model"]["class"] = name
        cases.append((document, ValueError, "unknown HRF model class"))
    document = _document()
    document["spec"]["hrf_model"]["__reduce__"] = command
    cases.append((document, TypeError, "__reduce__"))
    document = _document()
    document["spec"]["paradigm"] = evil
    cases.append((document, ValueError, "unexpected keys"))
    document = _document()
    document["py/object"] = "os.system"
    cases.append((document, ValueError, "unexpected keys"))
    document = _document()
    document["parameters"]["values"][0][0] = evil
    cases.append((document, ValueError, "numbers"))
    document = _document()
    document["parameters"]["index"] = {"name": None, "dtype": "object",
                                       "values": [{"__class__": "os.system"}, 1]}
    cases.append((document, ValueError, "labels must be JSON"))
    document = _document()
    document["parameters"]["index"]["dtype"] = "os.system"
    cases.append((document, ValueError, "unexpected keys|unsupported label dtype"))
    deep = [name for name in list_models() if name not in CLASSIC]
    if deep:  # registered models that are not EncodingModels save as .keras only
        document = _document()
        document["spec"]["model"] = deep[0]
        cases.append((document, TypeError, "not a classic encoding model"))
    return cases


def test_tampered_json_raises_and_runs_nothing(tmp_path):
    sentinel = tmp_path / "sentinel"
    for document, error, match in _payloads(sentinel):
        with pytest.raises(error, match=match):
            EncodingModel.from_json(json.dumps(document))
        assert not sentinel.exists()


def test_tampered_directory_raises_and_runs_nothing(tmp_path):
    sentinel = tmp_path / "sentinel"
    model, _ = _example("gaussian_prf")
    folder = save_model(model, tmp_path / "saved")
    tsv = folder / "parameters.tsv"
    original = tsv.read_text()
    for formula in (f"=cmd|' /C touch {sentinel}'!A0", f"__import__('os').system('touch "
                    f"{sentinel}')", "@SUM(1+1)*cmd"):
        lines = original.splitlines()
        cells = lines[1].split("\t")
        cells[1] = formula
        lines[1] = "\t".join(cells)
        tsv.write_text("\n".join(lines) + "\n")
        with pytest.raises(ValueError, match="non-numeric value"):
            load_model(folder)
        assert not sentinel.exists()
    tsv.write_text(original.replace("lh_v1", "other"))
    with pytest.raises(ValueError, match="row labels do not match"):
        load_model(folder)
    tsv.write_text(original)
    document = json.loads((folder / "model.json").read_text())
    document["parameters"]["file"] = "../../etc/passwd"
    (folder / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="file must be 'parameters.tsv'"):
        load_model(folder)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(folder)
    assert not sentinel.exists()
    with pytest.raises(FileNotFoundError, match="no model.json"):
        load_model(tmp_path / "nowhere")


def test_large_blocks_go_to_npz_and_reload_exactly(tmp_path):
    model, paradigm = _example("linear_baseline_hrf")
    folder = save_model(model, tmp_path / "npz", npz_threshold=4)
    assert (folder / "weights.npz").is_file() and (folder / "omega.tsv").is_file()
    assert not (folder / "weights.tsv").exists()
    document = json.loads((folder / "model.json").read_text())
    assert document["weights"]["file"] == "weights.npz"
    _assert_same(model, load_model(folder), paradigm)


class _Payload:
    """Unpickling this object would create the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_tampered_npz_raises_and_runs_nothing(tmp_path):
    sentinel = tmp_path / "sentinel"
    model, _ = _example("linear_baseline_hrf")
    folder = save_model(model, tmp_path / "saved", npz_threshold=0)
    payload = np.empty((3, 2), dtype=object)
    payload[0, 0] = _Payload(sentinel)
    np.savez(folder / "weights.npz", values=payload, allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_model(folder)
    np.savez(folder / "weights.npz", values=np.zeros((3, 2)), extra=np.zeros(1))
    with pytest.raises(ValueError, match="one array named 'values'"):
        load_model(folder)
    (folder / "weights.npz").write_text("PK not a zip")
    with pytest.raises(ValueError, match="weights.npz"):
        load_model(folder)
    assert not sentinel.exists()


# ---------------------------------------------------------------------- io
def test_read_table_formats(tmp_path):
    frame = pd.DataFrame(RNG.normal(size=(6, 3)), index=pd.RangeIndex(6, name="time"),
                         columns=["V1_a", "V1_b", "V2_a"])
    for suffix in ("tsv", "csv"):
        path = write_table(frame, tmp_path / f"data.{suffix}")
        read = read_table(path)
        np.testing.assert_array_equal(read.to_numpy(), frame.to_numpy())
        assert list(read.columns) == list(frame.columns)
        assert read.index.name == "time"
    np.save(tmp_path / "a.npy", frame.to_numpy())
    np.testing.assert_array_equal(read_table(tmp_path / "a.npy").to_numpy(), frame.to_numpy())
    images = RNG.normal(size=(4, 2, 3))
    np.save(tmp_path / "images.npy", images)
    np.testing.assert_array_equal(read_table(tmp_path / "images.npy").to_numpy(),
                                  images.reshape(4, 6))
    np.savez(tmp_path / "one.npz", anything=frame.to_numpy())
    np.savez(tmp_path / "named.npz", data=frame.to_numpy(), other=np.zeros(2))
    np.savez(tmp_path / "ambiguous.npz", a=np.zeros(2), b=np.zeros(2))
    for name in ("one.npz", "named.npz"):
        np.testing.assert_array_equal(read_table(tmp_path / name).to_numpy(), frame.to_numpy())
    with pytest.raises(ValueError, match="named 'data'"):
        read_table(tmp_path / "ambiguous.npz")


def test_read_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "missing.tsv")
    (tmp_path / "bad.tsv").write_text("time\tv1\tv2\n0\t1.0\t=cmd()\n1\t2.0\t3.0\n")
    with pytest.raises(ValueError, match="column 'v2' holds non-numeric values"):
        read_table(tmp_path / "bad.tsv")
    (tmp_path / "empty.tsv").write_text("time\n0\n")
    with pytest.raises(ValueError, match="empty"):
        read_table(tmp_path / "empty.tsv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError, match="unknown file type"):
        read_table(tmp_path / "x.xlsx")
    np.save(tmp_path / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        read_table(tmp_path / "objects.npy")


def test_nifti_without_nibabel_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)  # makes `import nibabel` fail
    with pytest.raises(ImportError, match=r"reading NIfTI .*pip install braincoder\[nifti\]"):
        read_table(tmp_path / "bold.nii.gz")
    with pytest.raises(ImportError, match=r"writing NIfTI .*pip install braincoder\[nifti\]"):
        write_nifti(pd.Series([1.0]), tmp_path / "bold.nii.gz", tmp_path / "r2.nii.gz")


def _bold_image(tmp_path, shape=(3, 4, 2, 5), seed=0):
    nibabel = pytest.importorskip("nibabel")
    volume = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [-3.0, 4.0, 1.5]
    path = tmp_path / "bold.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, affine), path)
    return nibabel, volume, affine, path


def test_nifti_read_with_mask_and_write_maps_back(tmp_path):
    nibabel, volume, affine, path = _bold_image(tmp_path)
    mask = np.zeros(volume.shape[:3], bool)
    mask[0, 1, 0] = mask[2, 3, 1] = mask[1, 0, 1] = True
    nibabel.save(nibabel.Nifti1Image(mask.astype(np.uint8), affine), tmp_path / "mask.nii")
    for given in (mask, tmp_path / "mask.nii"):
        frame = read_table(path, mask=given)
        assert frame.shape == (5, 3) and frame.columns.name == "voxel"
        # Columns are the voxels' C-order positions; values are their time courses.
        for position in frame.columns:
            i, j, k = np.unravel_index(position, volume.shape[:3])
            assert mask[i, j, k]
            np.testing.assert_allclose(frame[position], volume[i, j, k], rtol=1e-6)
    assert read_table(path).shape == (5, 24)

    # Per-voxel maps go back to the same place in the same space; NaN outside the mask.
    maps = pd.DataFrame({"x": [1.0, 2.0, 3.0], "sd": [0.5, 0.25, 0.125]},
                        index=frame.columns)
    written = nibabel.load(write_nifti(maps, path, tmp_path / "maps.nii.gz"))
    np.testing.assert_allclose(written.affine, affine)
    image = written.get_fdata()
    assert image.shape == (3, 4, 2, 2)
    assert np.isnan(image[~mask]).all()
    for position, row in maps.iterrows():
        np.testing.assert_allclose(image[np.unravel_index(position, mask.shape)], row)
    r2 = nibabel.load(write_nifti(maps["x"], path, tmp_path / "r2.nii")).get_fdata()
    assert r2.shape == (3, 4, 2) and r2[0, 1, 0] == maps["x"].iloc[0]


def test_nifti_bad_input(tmp_path):
    nibabel, volume, affine, path = _bold_image(tmp_path)
    nibabel.save(nibabel.Nifti1Image(volume[..., 0], affine), tmp_path / "3d.nii.gz")
    with pytest.raises(ValueError, match=r"expected a 4D image .* got shape \(3, 4, 2\)"):
        read_table(tmp_path / "3d.nii.gz")
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\)"):
        read_table(path, mask=np.ones((3, 4), bool))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "missing.nii.gz")
    values = pd.Series([1.0, 2.0])
    with pytest.raises(ValueError, match=r"integer positions 0 … 23"):
        write_nifti(values.set_axis([0, 24]), path, tmp_path / "out.nii.gz")
    with pytest.raises(ValueError, match="integer positions"):
        write_nifti(values.set_axis(["a", "b"]), path, tmp_path / "out.nii.gz")
    with pytest.raises(ValueError, match="repeat"):
        write_nifti(values.set_axis([3, 3]), path, tmp_path / "out.nii.gz")
    with pytest.raises(ValueError, match="writes .nii or .nii.gz"):
        write_nifti(values, path, tmp_path / "out.tsv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        write_nifti(values, tmp_path / "missing.nii", tmp_path / "out.nii")


def test_save_results_writes_tables_and_spec(tmp_path):
    parameters = pd.DataFrame([[1.0, 2.0]], index=pd.Index(["v"], name="voxel"),
                              columns=["mu", "sd"])
    r2 = pd.Series([0.5], index=parameters.index, name="r2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = save_results(tmp_path / "out", parameters=parameters, r2=r2,
                               spec={"model": "gaussian_prf"})
    assert sorted(written) == ["parameters", "r2", "spec"]
    pd.testing.assert_frame_equal(read_table(written["parameters"]), parameters)
    assert read_table(written["r2"])["r2"].tolist() == [0.5]
    assert json.loads(written["spec"].read_text()) == {"model": "gaussian_prf"}
