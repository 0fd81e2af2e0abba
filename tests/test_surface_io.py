"""Surface data in, maps out: GIfTI and CIFTI-2 readers and writers, BIDS names, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest

nibabel = pytest.importorskip("nibabel")

from nibabel.cifti2 import Cifti2Header, Cifti2Image, cifti2_axes  # noqa: E402
from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiMetaData  # noqa: E402

from braincoder.cli import main  # noqa: E402
from braincoder.hrf import SPMHRFModel  # noqa: E402
from braincoder.models import GaussianPRFWithHRF  # noqa: E402
from braincoder.optimize import ParameterFitter  # noqa: E402
from braincoder.utils.io import (  # noqa: E402
    bids_entities,
    common_entities,
    read_cifti,
    read_gifti,
    read_table,
    read_tr,
    write_cifti,
    write_gifti,
    write_maps,
    write_nifti,
)
from braincoder.utils.preprocessing import prepare_runs  # noqa: E402

TR = 1.5
N_VERTICES = 30  # per hemisphere
N_TIME = 60
PREFIX = "sub-01_ses-1_task-prf"


def _paradigm():
    up = np.linspace(-5, 5, 24)
    return pd.DataFrame({"x": np.concatenate([up, up[::-1][:18], np.linspace(-5, 5, 18)])})


def _truth(seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * N_VERTICES
    return pd.DataFrame({"mu": rng.uniform(-3.5, 3.5, n), "sd": rng.uniform(0.8, 2.0, n),
                         "amplitude": rng.uniform(2.0, 4.0, n), "baseline": np.zeros(n)})


def _runs(seed=0):
    """Two runs in scanner units with linear drifts: time × 60 vertices each."""
    model = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=TR))
    signal = model.predict(_paradigm(), _truth(seed)).to_numpy(np.float64)
    rng = np.random.default_rng(seed + 1)
    runs = []
    for run in range(2):
        drift = np.linspace(0, 1, N_TIME)[:, None] * rng.uniform(-2, 2, signal.shape[1])
        noise = 0.1 * rng.standard_normal(signal.shape)
        runs.append(100.0 + 5 * run + signal + drift + noise)
    return runs


def _gifti(values, path, hemi=None, tr_ms=TR * 1000):
    arrays = [GiftiDataArray(row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES",
                             datatype="NIFTI_TYPE_FLOAT32",
                             meta=GiftiMetaData({"TimeStep": f"{tr_ms:f}"}))
              for row in np.atleast_2d(values)]
    meta = GiftiMetaData({"AnatomicalStructurePrimary": hemi} if hemi else {})
    nibabel.save(GiftiImage(darrays=arrays, meta=meta), path)
    return path


def _brain_models():
    left = cifti2_axes.BrainModelAxis.from_surface(np.arange(N_VERTICES) + 2, 40, "CortexLeft")
    right = cifti2_axes.BrainModelAxis.from_surface(np.arange(N_VERTICES), 35, "CortexRight")
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, :2] = True
    voxels = cifti2_axes.BrainModelAxis.from_mask(mask, "thalamus_left", affine=np.eye(4))
    return left + right + voxels


def _cifti(values, path):
    series = cifti2_axes.SeriesAxis(0.0, TR, values.shape[0])
    image = Cifti2Image(values.astype(np.float32), Cifti2Header.from_axes((series,
                                                                           _brain_models())))
    image.nifti_header.set_intent("ConnDenseSeries")
    nibabel.save(image, path)
    return path


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fmriprep")
    runs = _runs()
    files = {"gifti": [], "cifti": [], "runs": runs}
    for run, values in enumerate(runs, start=1):
        for hemi, part in (("L", values[:, :N_VERTICES]), ("R", values[:, N_VERTICES:])):
            name = f"{PREFIX}_run-{run}_hemi-{hemi}_space-fsnative_bold.func.gii"
            files["gifti"].append(_gifti(part, folder / name))
        cifti_values = np.concatenate([values, values[:, :2] * 0 + 50.0 + values[:, :2]], 1)
        name = f"{PREFIX}_run-{run}_space-fsLR_den-91k_bold.dtseries.nii"
        files["cifti"].append(_cifti(cifti_values, folder / name))
    _paradigm().to_csv(folder / "paradigm.tsv", sep="\t")
    files["paradigm"] = folder / "paradigm.tsv"
    files["folder"] = folder
    return files


# ---------------------------------------------------------------------- readers
def test_read_gifti_labels_values_and_tr(surfaces):
    left, right = surfaces["gifti"][:2]
    bold = read_gifti([right, left])  # hemisphere order comes from the names, L first
    assert bold.shape == (N_TIME, 2 * N_VERTICES)
    assert bold.columns[0] == "L_000000" and bold.columns[-1] == f"R_{N_VERTICES - 1:06d}"
    assert bold.columns.name == "voxel" and bold.index.name == "time"
    np.testing.assert_allclose(bold.to_numpy(), surfaces["runs"][0].astype(np.float32))
    assert bold.attrs["tr"] == pytest.approx(TR)  # TimeStep in milliseconds
    assert read_tr(left) == pytest.approx(TR)
    multi = read_gifti({"L": left}, labels="multiindex")
    assert multi.columns.names == ["hemi", "vertex"]
    assert multi.columns[3] == ("L", 3)
    np.testing.assert_array_equal(read_table(left).to_numpy(), multi.to_numpy())


def test_read_gifti_hemisphere_from_metadata_and_seconds(tmp_path, surfaces):
    values = surfaces["runs"][0][:, :N_VERTICES]
    path = _gifti(values, tmp_path / "bold.func.gii", hemi="CortexRight", tr_ms=2.0)
    bold = read_gifti(path)
    assert bold.columns[0] == "R_000000"
    assert bold.attrs["tr"] == pytest.approx(2.0)  # small TimeStep values are seconds


def test_read_cifti_labels_values_and_tr(surfaces):
    bold = read_cifti(surfaces["cifti"][0])
    assert bold.shape == (N_TIME, 2 * N_VERTICES + 2)
    assert bold.columns[0] == "L_000002"  # vertex indices of the brain model are kept
    assert bold.columns[N_VERTICES] == "R_000000"
    assert list(bold.columns[-2:]) == ["THALAMUS_LEFT_001_001_000", "THALAMUS_LEFT_001_001_001"]
    assert bold.attrs["tr"] == pytest.approx(TR)
    assert read_tr(surfaces["cifti"][0]) == pytest.approx(TR)
    np.testing.assert_allclose(bold.iloc[:, :2 * N_VERTICES].to_numpy(),
                               surfaces["runs"][0].astype(np.float32))
    multi = read_cifti(surfaces["cifti"][0], labels="multiindex")
    assert multi.columns.names == ["structure", "vertex", "i", "j", "k"]
    assert multi.columns[0] == ("L", 2, -1, -1, -1)
    assert multi.columns[-1] == ("THALAMUS_LEFT", -1, 1, 1, 1)
    pd.testing.assert_frame_equal(read_table(surfaces["cifti"][0]), bold)


def test_bids_entities_and_common_entities():
    name = "sub-01_ses-1_task-prf_run-1_hemi-L_space-fsnative_bold.func.gii"
    assert bids_entities(name) == {"sub": "01", "ses": "1", "task": "prf", "run": "1",
                                   "hemi": "L", "space": "fsnative", "suffix": "bold",
                                   "extension": ".func.gii"}
    assert bids_entities("/data/sub-02_space-fsLR_den-91k_bold.dtseries.nii")["den"] == "91k"
    assert common_entities([name, name.replace("run-1", "run-2").replace("hemi-L", "hemi-R")]
                           ) == {"sub": "01", "ses": "1", "task": "prf", "space": "fsnative"}


# ---------------------------------------------------------------------- writers
def test_write_gifti_and_cifti_round_trip(tmp_path, surfaces):
    left, right = surfaces["gifti"][:2]
    labels = read_gifti([left, right]).columns
    rng = np.random.default_rng(3)
    kept = labels[::2]  # maps of a subset of vertices; the rest is NaN
    maps = pd.DataFrame(rng.normal(size=(len(kept), 2)), index=kept, columns=["x", "r2"])
    write_gifti(maps, left, tmp_path / "left.func.gii")
    write_gifti(maps, right, tmp_path / "right.func.gii")
    back = read_gifti([tmp_path / "left.func.gii", tmp_path / "right.func.gii"])
    assert list(back.index) == ["x", "r2"]
    np.testing.assert_allclose(back[kept].T.to_numpy(), maps.to_numpy(np.float32))
    assert back.drop(columns=kept).isna().all().all()

    bold = read_cifti(surfaces["cifti"][0], labels="multiindex")
    maps = pd.DataFrame({"mu": np.arange(bold.shape[1], dtype=float)}, index=bold.columns)
    write_cifti(maps.iloc[::-1], surfaces["cifti"][0], tmp_path / "mu.dscalar.nii")
    back = read_cifti(tmp_path / "mu.dscalar.nii", labels="multiindex")
    assert list(back.index) == ["mu"] and back.columns.equals(bold.columns)
    np.testing.assert_array_equal(back.loc["mu"].to_numpy(), maps["mu"].to_numpy())


# ---------------------------------------------------------------------- Python API
def test_python_api_fit_from_gifti_runs_to_maps(tmp_path, surfaces):
    files = surfaces["gifti"]
    runs = [read_gifti(files[:2]), read_gifti(files[2:])]
    data, paradigm = prepare_runs(runs, _paradigm(), order=1, scale="psc", combine="average")
    model = GaussianPRFWithHRF(hrf_model=SPMHRFModel(tr=runs[0].attrs["tr"]))
    fitter = ParameterFitter(model, data, paradigm)
    grid = fitter.fit_grid(mu=np.linspace(-5, 5, 21), sd=np.geomspace(0.5, 3, 8),
                           baseline=[0.0], amplitude=[1.0])
    grid = fitter.refine_baseline_and_amplitude(grid)
    parameters = fitter.fit(init_pars=grid, max_n_iterations=30, progressbar=False)
    assert list(parameters.index) == list(data.columns)
    truth = _truth()
    assert np.corrcoef(parameters["mu"], truth["mu"])[0, 1] > 0.95
    assert fitter.r2.median() > 0.8

    maps = parameters.join(fitter.r2.rename("r2"))
    written = write_maps(maps, files[:2], tmp_path, sources=files, layout="split")
    names = sorted(path.name for path in written)
    assert f"{PREFIX}_hemi-L_space-fsnative_desc-prf_mu.func.gii" in names
    assert f"{PREFIX}_hemi-R_space-fsnative_desc-prf_r2.func.gii" in names
    assert len(names) == 2 * 5  # two hemispheres × (4 parameters + R²)
    for column in maps.columns:
        back = read_gifti([tmp_path / f"{PREFIX}_hemi-{h}_space-fsnative_desc-prf_{column}"
                           ".func.gii" for h in "LR"])
        assert list(back.columns) == list(maps.index)
        np.testing.assert_allclose(back.loc[column].to_numpy(), maps[column].to_numpy(),
                                   rtol=1e-6)
    sidecar = json.loads((tmp_path / f"{PREFIX}_hemi-L_space-fsnative_desc-prf_mu.json"
                          ).read_text())
    assert sidecar["MapNames"] == ["mu"] and len(sidecar["Sources"]) == 4


# ---------------------------------------------------------------------- command line
def _fit(capsys, *argv):
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def test_cli_fits_two_gifti_runs_and_writes_maps(tmp_path, surfaces, capsys):
    out = tmp_path / "prf"
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf_hrf", "--data",
                     *surfaces["gifti"], "--paradigm", surfaces["paradigm"], "--detrend", "1",
                     "--psc", "--average-runs", "--grid-size", "15", "--max-iterations", "30",
                     "--out", out, "--quiet")
    assert code == 0, err
    parameters = read_table(out / "parameters.tsv")
    r2 = read_table(out / "r2.tsv")["r2"]
    assert np.corrcoef(parameters["mu"], _truth()["mu"])[0, 1] > 0.95
    for column in ("mu", "sd", "amplitude", "baseline", "r2"):
        back = read_gifti([out / f"{PREFIX}_hemi-{h}_space-fsnative_desc-prf_{column}.func.gii"
                           for h in "LR"])
        assert list(back.columns) == list(parameters.index.astype(str))
        expected = r2 if column == "r2" else parameters[column]
        np.testing.assert_allclose(back.iloc[0].to_numpy(), expected.to_numpy(), rtol=1e-5,
                                   atol=1e-6)
    sidecar = json.loads((out / f"{PREFIX}_hemi-R_space-fsnative_desc-prf_sd.json"
                          ).read_text())
    assert sidecar["Model"] == "gaussian_prf_hrf"
    assert sidecar["HRF"] is not None
    assert sidecar["FitOptions"]["tr"] == pytest.approx(TR)  # from the TimeStep metadata
    assert sidecar["FitOptions"]["psc"] and sidecar["FitOptions"]["detrend"] == 1
    import braincoder

    assert sidecar["BraincoderVersion"] == braincoder.__version__


def test_cli_fits_cifti_runs_concatenated_to_a_statmap(tmp_path, surfaces, capsys):
    out = tmp_path / "prf"
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf_hrf", "--data",
                     surfaces["cifti"][0], "--data", surfaces["cifti"][1], "--paradigm",
                     surfaces["paradigm"], "--high-pass", "60", "--zscore",
                     "--concatenate-runs", "--grid-size", "15", "--max-iterations", "20",
                     "--maps", "statmap", "--out", out, "--quiet")
    assert code == 0, err
    parameters = read_table(out / "parameters.tsv")
    statmap = out / f"{PREFIX}_space-fsLR_den-91k_desc-prf_statmap.dscalar.nii"
    back = read_cifti(statmap)
    assert list(back.index) == ["mu", "sd", "amplitude", "baseline", "r2"]
    assert list(back.columns) == list(parameters.index.astype(str))
    np.testing.assert_allclose(back.loc[["mu", "sd"]].T.to_numpy(),
                               parameters[["mu", "sd"]].to_numpy(), rtol=1e-5, atol=1e-6)
    assert np.corrcoef(parameters["mu"].iloc[:2 * N_VERTICES], _truth()["mu"])[0, 1] > 0.9
    assert (out / f"{PREFIX}_space-fsLR_den-91k_desc-prf_statmap.json").exists()


def test_write_maps_for_nifti_data_with_bids_names(tmp_path):
    affine = np.eye(4)
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2, 5), np.float32), affine),
                 tmp_path / "sub-03_task-prf_run-2_space-T1w_desc-preproc_bold.nii.gz")
    maps = pd.DataFrame({"x": [1.0, 2.0], "hrf_delay": [5.0, 6.0]}, index=[0, 7])
    written = write_maps(maps, tmp_path / "sub-03_task-prf_run-2_space-T1w_desc-preproc_bold"
                         ".nii.gz", tmp_path / "out")
    assert sorted(p.name for p in written) == [
        "sub-03_task-prf_run-2_space-T1w_desc-prf_hrfDelay.nii.gz",
        "sub-03_task-prf_run-2_space-T1w_desc-prf_x.nii.gz"]
    volume = nibabel.load(written[0]).get_fdata()
    assert volume.shape == (2, 2, 2) and volume.ravel()[7] == 2.0


# ---------------------------------------------------------------------- bad input
def test_mismatched_hemispheres_or_vertices_between_runs_name_the_file(tmp_path, surfaces,
                                                                        capsys):
    files = surfaces["gifti"]
    fewer = _gifti(surfaces["runs"][1][:, :N_VERTICES - 1],
                   tmp_path / f"{PREFIX}_run-3_hemi-L_space-fsnative_bold.func.gii")
    runs = [read_gifti(files[:2]), read_gifti([fewer, files[3]])]
    with pytest.raises(ValueError, match="run-3_hemi-L"):
        prepare_runs(runs, combine="average")
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf", "--data", *files[:2], fewer,
                     "--paradigm", surfaces["paradigm"], "--average-runs", "--out",
                     tmp_path / "o")
    assert code == 2 and "run-3_hemi-L" in err
    # run 2 has only the left hemisphere
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf", "--data", *files[:3],
                     "--paradigm", surfaces["paradigm"], "--average-runs", "--out",
                     tmp_path / "o")
    assert code == 2 and "run-2_hemi-L" in err and "same voxels" in err
    with pytest.raises(ValueError, match="run-2_hemi-L.*hemisphere L given twice"):
        read_gifti([files[0], files[2]])


def test_runs_of_different_lengths_need_an_explicit_choice(tmp_path, surfaces, capsys):
    short = [_gifti(surfaces["runs"][1][:50, :N_VERTICES],
                    tmp_path / f"{PREFIX}_run-4_hemi-L_space-fsnative_bold.func.gii"),
             _gifti(surfaces["runs"][1][:50, N_VERTICES:],
                    tmp_path / f"{PREFIX}_run-4_hemi-R_space-fsnative_bold.func.gii")]
    runs = [read_gifti(surfaces["gifti"][:2]), read_gifti(short)]
    with pytest.raises(ValueError, match="different lengths.*run-4_hemi-L.*50"):
        prepare_runs(runs, combine="average")
    data, _ = prepare_runs(runs, combine="average", truncate=True)
    assert len(data) == 50
    data, _ = prepare_runs(runs, combine="concatenate")
    assert len(data) == N_TIME + 50
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf", "--data",
                     *surfaces["gifti"][:2], *short, "--paradigm", surfaces["paradigm"],
                     "--out", tmp_path / "o")
    assert code == 2 and "choose --average-runs or --concatenate-runs" in err


def test_surface_and_volume_confusions_name_the_file(tmp_path, surfaces, capsys):
    gii, dtseries = surfaces["gifti"][0], surfaces["cifti"][0]
    volume = tmp_path / "bold.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.ones((2, 2, 2, 4), np.float32), np.eye(4)), volume)
    mask = np.ones((2, 2, 2), bool)
    with pytest.raises(ValueError, match=gii.name):
        read_table(gii, mask=mask)
    with pytest.raises(ValueError, match=dtseries.name):
        read_table(dtseries, mask=mask)
    maps = pd.Series([1.0], index=[0], name="x")
    for reference in (gii, dtseries):
        with pytest.raises(ValueError, match=reference.name):
            write_nifti(maps, reference, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match="bold.nii.gz: not a GIfTI"):
        read_gifti(volume)
    with pytest.raises(ValueError, match="bold.nii.gz: not a CIFTI-2"):
        read_cifti(volume)
    with pytest.raises(ValueError, match="bold.nii.gz: the reference is not a GIfTI"):
        write_gifti(maps, volume, tmp_path / "x.func.gii")
    with pytest.raises(ValueError, match="bold.nii.gz: the reference is not a CIFTI-2"):
        write_cifti(maps, volume, tmp_path / "x.dscalar.nii")
    with pytest.raises(ValueError, match=gii.name):
        write_cifti(maps, gii, tmp_path / "x.dscalar.nii")
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf", "--data", gii, "--mask",
                     volume, "--paradigm", surfaces["paradigm"], "--out", tmp_path / "o")
    assert code == 2 and gii.name in err and "mask" in err


def test_gifti_without_time_series_or_hemisphere_names_the_file(tmp_path):
    mesh = GiftiImage(darrays=[
        GiftiDataArray(np.zeros((4, 3), np.float32), intent="NIFTI_INTENT_POINTSET"),
        GiftiDataArray(np.array([[0, 1, 2], [1, 2, 3]], np.int32),
                       intent="NIFTI_INTENT_TRIANGLE")])
    nibabel.save(mesh, tmp_path / "sub-01_hemi-L_midthickness.surf.gii")
    with pytest.raises(ValueError, match="midthickness.surf.gii: holds no time-series data "
                       "arrays.*POINTSET"):
        read_gifti(tmp_path / "sub-01_hemi-L_midthickness.surf.gii")
    nibabel.save(GiftiImage(), tmp_path / "sub-01_hemi-R_empty.func.gii")
    with pytest.raises(ValueError, match="empty.func.gii: holds no time-series"):
        read_gifti(tmp_path / "sub-01_hemi-R_empty.func.gii")
    _gifti(np.ones((3, 4)), tmp_path / "bold.func.gii")
    with pytest.raises(ValueError, match="bold.func.gii: cannot tell the hemisphere"):
        read_gifti(tmp_path / "bold.func.gii")


def test_maps_with_unknown_labels_name_the_reference(tmp_path, surfaces):
    maps = pd.DataFrame({"x": [1.0]}, index=["L_000999"])
    with pytest.raises(ValueError, match=surfaces["gifti"][0].name + ".*L_000999"):
        write_gifti(maps, surfaces["gifti"][0], tmp_path / "x.func.gii")
    with pytest.raises(ValueError, match=surfaces["cifti"][0].name + ".*L_000999"):
        write_cifti(maps, surfaces["cifti"][0], tmp_path / "x.dscalar.nii")
    with pytest.raises(ValueError, match="do not cover 1 map rows"):
        write_maps(pd.DataFrame({"x": [1.0, 2.0]}, index=["L_000001", "R_000001"]),
                   surfaces["gifti"][:1], tmp_path)


def test_cli_fits_two_nifti_runs_with_tr_from_the_header(tmp_path, surfaces, capsys):
    names = []
    for run, values in enumerate(surfaces["runs"], start=1):
        image = nibabel.Nifti1Image(values.T.reshape(3, 4, 5, N_TIME).astype(np.float32),
                                    np.eye(4))
        image.header.set_zooms((2.0, 2.0, 2.0, TR))
        image.header.set_xyzt_units("mm", "sec")
        names.append(tmp_path / f"sub-01_task-prf_run-{run}_space-T1w_desc-preproc_bold.nii.gz")
        nibabel.save(image, names[-1])
    assert read_tr(names[0]) == pytest.approx(TR)
    out = tmp_path / "prf"
    code, err = _fit(capsys, "fit", "--model", "gaussian_prf_hrf", "--data", *names,
                     "--paradigm", surfaces["paradigm"], "--paradigm", surfaces["paradigm"],
                     "--detrend", "1", "--concatenate-runs", "--grid-size", "15",
                     "--max-iterations", "20", "--out", out, "--quiet")
    assert code == 0, err
    parameters = read_table(out / "parameters.tsv")
    assert np.corrcoef(parameters["mu"], _truth()["mu"])[0, 1] > 0.9
    mu = nibabel.load(out / "sub-01_task-prf_space-T1w_desc-prf_mu.nii.gz").get_fdata()
    np.testing.assert_allclose(mu.ravel()[parameters.index.astype(int)], parameters["mu"],
                               rtol=1e-5)
    assert (out / "parameters.nii.gz").exists() and (out / "r2.nii.gz").exists()
    sidecar = json.loads((out / "sub-01_task-prf_space-T1w_desc-prf_mu.json").read_text())
    assert sidecar["FitOptions"]["concatenate_runs"] and len(sidecar["Sources"]) == 2
