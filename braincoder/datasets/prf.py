"""Simulated population receptive-field experiments (bar sweeps over a pixel grid)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..stimuli import make_grid_coordinates

__all__ = ["bar_sweep_paradigm", "simulate_prf_2d", "PRFExperiment"]


def bar_sweep_paradigm(
    grid_size=30, n_sweeps=8, frames_per_sweep=30, bar_width=1.25, extent=5.0, blank_frames=0
):
    """Bar-sweep mapping paradigm: a bar crossing the visual field in several directions.

    Sweep ``k`` moves a bar of ``bar_width`` degrees perpendicular to the direction
    ``k · 360° / n_sweeps`` from one edge of the field to the other in ``frames_per_sweep``
    frames (the classic retinotopic-mapping design).

    Parameters
    ----------
    grid_size : int, default 30
        Pixels per side.
    n_sweeps : int, default 8
        Number of sweeps (directions evenly spaced over 360°).
    frames_per_sweep : int, default 30
        Frames (TRs) per sweep.
    bar_width : float, default 1.25
        Bar width in degrees.
    extent : float, default 5.0
        Half-width of the field in degrees.
    blank_frames : int, default 0
        Frames without stimulus after each sweep.

    Returns
    -------
    paradigm : DataFrame, shape (n_sweeps · (frames_per_sweep + blank_frames), grid_size²)
        Binary images, indexed by ``time`` (frames), one column per pixel.
    grid_coordinates : DataFrame, shape (grid_size², 2)
        Pixel positions (``x``, ``y``).

    Examples
    --------
    >>> from braincoder.datasets import bar_sweep_paradigm
    >>> paradigm, grid = bar_sweep_paradigm(grid_size=10, n_sweeps=2, frames_per_sweep=5)
    >>> paradigm.shape, grid.shape
    ((10, 100), (100, 2))
    """
    grid = make_grid_coordinates(grid_size, extent)
    xy = grid.to_numpy()
    frames = []
    for sweep in range(n_sweeps):
        angle = 2 * np.pi * sweep / n_sweeps
        direction = np.array([np.cos(angle), np.sin(angle)])
        projection = xy @ direction
        positions = np.linspace(-extent * np.sqrt(2), extent * np.sqrt(2), frames_per_sweep)
        for position in positions:
            frames.append((np.abs(projection - position) <= bar_width / 2).astype(np.float32))
        frames.extend([np.zeros(len(xy), np.float32)] * blank_frames)
    paradigm = pd.DataFrame(
        np.array(frames), index=pd.RangeIndex(len(frames), name="time"), columns=grid.index
    )
    return paradigm, grid


@dataclass
class PRFExperiment:
    """A simulated pRF experiment.

    Attributes
    ----------
    paradigm : DataFrame
        Time × pixel stimulus.
    grid_coordinates : DataFrame
        Pixel × (``x``, ``y``).
    data : DataFrame
        Time × voxel simulated BOLD.
    parameters : DataFrame
        Voxel × parameter true values.
    model : EncodingModel
        The model that generated the data.
    noise_sd : Series
        Noise standard deviation per voxel.
    predictions : DataFrame
        Noise-free responses.
    noise_ceiling : float
        Expected R² of the true model (mean over voxels of var(signal) / var(data)).
    """

    paradigm: pd.DataFrame
    grid_coordinates: pd.DataFrame
    data: pd.DataFrame
    parameters: pd.DataFrame
    model: object
    noise_sd: pd.Series
    predictions: pd.DataFrame
    noise_ceiling: float


def simulate_prf_2d(
    n_voxels=1000,
    tr=1.5,
    grid_size=30,
    n_sweeps=8,
    frames_per_sweep=30,
    noise_ratio=1.0,
    unique_hrfs=False,
    extent=5.0,
    position_limit=None,
    seed=0,
):
    """Simulate 2D Gaussian pRF voxels (with the SPM HRF) responding to bar sweeps.

    True parameters: ``x, y ~ U(−limit, limit)`` (``limit = position_limit`` or
    ``0.9·extent``), ``sd ~ U(0.5, 3)``,
    ``amplitude ~ U(1, 3) · sd·√(2π) / pixel area`` (a peak response of 1 to 3 per unit of
    stimulus with the normalised RFs), ``baseline = 0``; with ``unique_hrfs`` also
    ``hrf_delay ~ U(4.5, 6.8)`` and ``hrf_dispersion = 1``. Gaussian noise has, per voxel,
    variance ``noise_ratio`` times the variance of the voxel's signal, so the noise-ceiling
    R² is ``1 / (1 + noise_ratio)``.

    Parameters
    ----------
    n_voxels : int, default 1000
        Number of voxels.
    tr : float, default 1.5
        Repetition time (s).
    grid_size, n_sweeps, frames_per_sweep : int
        Paradigm size (see :func:`bar_sweep_paradigm`).
    noise_ratio : float, default 1.0
        Noise variance over signal variance.
    unique_hrfs : bool, default False
        Give each voxel its own HRF delay.
    extent : float, default 5.0
        Half-width of the visual field (degrees).
    position_limit : float, optional
        Largest absolute x and y of the pRF centres (default ``0.9 · extent``).
    seed : int, default 0
        Seed of parameters and noise.

    Returns
    -------
    PRFExperiment
        Paradigm, grid, data, true parameters, model and noise levels.

    Examples
    --------
    >>> from braincoder.datasets import simulate_prf_2d
    >>> experiment = simulate_prf_2d(n_voxels=5, grid_size=10, frames_per_sweep=10)
    >>> experiment.data.shape
    (80, 5)
    """
    from ..hrf import SPMHRFModel
    from ..models import GaussianPRF2DWithHRF

    rng = np.random.default_rng(seed)
    paradigm, grid = bar_sweep_paradigm(grid_size, n_sweeps, frames_per_sweep, extent=extent)
    hrf_model = SPMHRFModel(tr=tr, unique_hrfs=unique_hrfs)
    model = GaussianPRF2DWithHRF(grid_coordinates=grid, hrf_model=hrf_model)
    limit = 0.9 * extent if position_limit is None else float(position_limit)
    values = {
        "x": rng.uniform(-limit, limit, n_voxels),
        "y": rng.uniform(-limit, limit, n_voxels),
        "sd": rng.uniform(0.5, 3.0, n_voxels),
        "baseline": np.zeros(n_voxels),
        "amplitude": rng.uniform(1.0, 3.0, n_voxels),
    }
    # The model's RFs are normalised (divided by sd·√(2π)/pixel area): scale the amplitude
    # so that the peak response is still U(1, 3) per unit of stimulus, as before.
    values["amplitude"] *= values["sd"] * np.sqrt(2.0 * np.pi) / model.pixel_area
    if unique_hrfs:
        values["hrf_delay"] = rng.uniform(4.5, 6.8, n_voxels)
        values["hrf_dispersion"] = np.ones(n_voxels)
    parameters = pd.DataFrame(values, index=pd.RangeIndex(n_voxels, name="voxel"))
    parameters.columns.name = "parameter"
    predictions = model.predict(paradigm, parameters)
    signal_sd = predictions.std(axis=0).to_numpy()
    noise_sd = np.sqrt(noise_ratio) * signal_sd
    data = predictions + rng.standard_normal(predictions.shape) * noise_sd
    ceiling = float(np.mean(signal_sd**2 / (signal_sd**2 + noise_sd**2)))
    return PRFExperiment(
        paradigm=paradigm,
        grid_coordinates=grid,
        data=data,
        parameters=parameters,
        model=model,
        noise_sd=pd.Series(noise_sd, index=parameters.index, name="noise_sd"),
        predictions=predictions,
        noise_ceiling=ceiling,
    )
