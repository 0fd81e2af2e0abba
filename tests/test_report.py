"""Fit reports: one self-contained HTML page with embedded PNG figures and voxel labels."""

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from braincoder.cli import main
from braincoder.datasets import simulate_prf_2d
from braincoder.models import GaussianPRF
from braincoder.optimize import ParameterFitter
from braincoder.report import _PER_VOXEL_ITERATIONS, _first
from braincoder.utils.io import write_table


class _Page(HTMLParser):
    """Collect images, external references and the text (table cells) of a page."""

    def __init__(self):
        super().__init__()
        self.images, self.external, self.cells, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if str(attrs.get(key, "")).startswith(("http:", "https:", "//")):
                self.external.append(attrs[key])
        if tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _png_count(page):
    return sum(src.startswith("data:image/png;base64,") for src in page.images)


def _voxel_rows(page):
    """{rank: (voxel label, R²)} from the 'best/median/worst' table."""
    rows = {}
    for key, value in zip(page.cells[:-1], page.cells[1:], strict=True):
        if key in ("best", "median", "worst"):
            label, r2 = value.removeprefix("voxel ").split(", R² ")
            rows[key] = (label, float(r2))
    return rows


@pytest.fixture(scope="module")
def fitted_2d():
    experiment = simulate_prf_2d(n_voxels=30, grid_size=8, frames_per_sweep=10,
                                 unique_hrfs=True, seed=3)
    data = experiment.data.copy()
    data.columns = pd.Index([f"V1_{i:03d}" for i in range(data.shape[1])], name="voxel")
    fitter = ParameterFitter(experiment.model, data, experiment.paradigm)
    grid = fitter.fit_grid(x=np.linspace(-4, 4, 5), y=np.linspace(-4, 4, 5), sd=[0.7, 1.5],
                           baseline=[0.0], amplitude=[1.0], hrf_delay=[6.0],
                           hrf_dispersion=[1.0])
    grid = fitter.refine_baseline_and_amplitude(grid)
    fitter.fit(init_pars=grid, max_n_iterations=15, progressbar=False)
    return fitter


def test_2d_report_has_its_figures_and_voxel_labels(fitted_2d, tmp_path):
    fitter = fitted_2d
    path = fitter.report(tmp_path / "sub" / "report.html", timings={"grid": 1.5, "fit": 2.0})
    page = _parse(path)
    # R² + mixture, centres and size/eccentricity, data vs prediction, HRF parameters, and
    # a histogram of per-voxel iterations when the fitter stores them.
    expected = 4 + (_first(fitter, _PER_VOXEL_ITERATIONS) is not None)
    assert _png_count(page) == len(page.images) == expected
    assert page.external == []
    rows = _voxel_rows(page)
    assert set(rows) == {"best", "median", "worst"}
    for label, r2 in rows.values():
        assert label in fitter.data.columns
        assert r2 == pytest.approx(fitter.r2[label], abs=1e-4)
    assert rows["best"][0] == fitter.r2.idxmax()
    assert rows["best"][1] >= rows["median"][1] >= rows["worst"][1]
    assert "time: grid" in page.cells and "1.50 s" in page.cells
    assert str(fitter.n_iterations) in page.cells
    assert fitter.stop_reason in page.cells
    assert f"{fitter.n_converged} of 30" in page.cells


def test_1d_report_shows_preferred_value_against_width(tmp_path):
    rng = np.random.default_rng(0)
    truth = pd.DataFrame({"mu": np.linspace(1, 9, 12), "sd": 1.5, "amplitude": 1.0,
                          "baseline": 0.0}, index=pd.Index([f"n{i}" for i in range(12)]))
    paradigm = rng.uniform(0, 10, 80)
    model = GaussianPRF(parameters=truth)
    data = model.simulate(paradigm, noise=0.2, seed=1)
    fitter = ParameterFitter(model, data, paradigm)
    grid = fitter.fit_grid(mu=np.linspace(0, 10, 11), sd=[1.0, 2.0], amplitude=[1.0],
                           baseline=[0.0])
    fitter.fit(init_pars=fitter.refine_baseline_and_amplitude(grid), max_n_iterations=10,
               progressbar=False)
    page = _parse(fitter.report(tmp_path / "r.html"))
    expected = 3 + (_first(fitter, _PER_VOXEL_ITERATIONS) is not None)  # no HRF parameters
    assert _png_count(page) == expected
    assert set(_voxel_rows(page)) == {"best", "median", "worst"}


def test_report_needs_a_fit(tmp_path):
    rng = np.random.default_rng(0)
    model = GaussianPRF()
    fitter = ParameterFitter(model, rng.normal(size=(20, 3)), rng.uniform(0, 10, 20))
    with pytest.raises(ValueError, match="no fitted or grid parameters"):
        fitter.report(tmp_path / "r.html")


def test_fit_command_writes_the_report(fitted_2d, tmp_path, capsys):
    fitter = fitted_2d
    write_table(fitter.data, tmp_path / "bold.tsv")
    np.save(tmp_path / "design.npy", fitter.paradigm.to_numpy())
    write_table(fitter.model.grid_coordinates, tmp_path / "grid.tsv")
    code = main(["fit", "--model", "gaussian_prf_2d_hrf", "--data", str(tmp_path / "bold.tsv"),
                 "--paradigm", str(tmp_path / "design.npy"), "--grid-coordinates",
                 str(tmp_path / "grid.tsv"), "--tr", "1.5", "--out", str(tmp_path / "out"),
                 "--grid-size", "4", "--n-sd", "2", "--max-iterations", "5", "--quiet",
                 "--report", str(tmp_path / "report.html")])
    assert code == 0, capsys.readouterr().err
    page = _parse(tmp_path / "report.html")
    assert _png_count(page) >= 3
    assert any(cell.startswith("time: grid search") for cell in page.cells)
    assert {label for label, _ in _voxel_rows(page).values()} <= set(fitter.data.columns)
