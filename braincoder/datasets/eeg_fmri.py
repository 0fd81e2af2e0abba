"""Simulated simultaneous EEG-fMRI: EEG band power (the paradigm) and BOLD volumes (the data).

A few latent sources drive both modalities. In the EEG they modulate the log band power of
channels and frequencies (on top of a 1/f background, with subject-specific channel gains);
in the BOLD signal a partly non-linear function of each source (a linear plus a quadratic
term) is convolved with the SPM HRF and projected onto a smooth spatial map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..hrf import spm_hrf

__all__ = ["EEGfMRIExperiment", "simulate_eeg_fmri", "normalize_eeg", "hrf_convolve"]

HISTORY_SECONDS = 16.0
NONLINEAR_WEIGHT = 0.6


@dataclass
class EEGfMRIExperiment:
    """Output of :func:`simulate_eeg_fmri`.

    Attributes
    ----------
    eeg : ndarray, shape (n_samples, n_channels, n_freqs, n_windows)
        Band power per channel, frequency and time window (window 0 is the most recent).
    index : MultiIndex
        Per-sample (subject, volume) labels, shared by ``bold``.
    bold : DataFrame, shape (n_samples, n_voxels)
        BOLD data, voxels in C order of ``volume_shape``.
    volumes : ndarray, shape (n_samples, x, y, z, 1)
        The same BOLD data as volumes.
    subjects : ndarray, shape (n_samples,)
        Subject of each sample.
    labels : ndarray, shape (n_samples,)
        Binary label per sample: the BOLD response of source 0 above its subject median.
    sources : ndarray, shape (n_samples, n_sources)
        Latent source time courses.
    responses : ndarray, shape (n_samples, n_sources)
        BOLD responses of the sources (HRF-convolved non-linear drive).
    maps : ndarray, shape (n_sources, x, y, z)
        Spatial BOLD maps of the sources.
    mixing : ndarray, shape (n_sources, n_channels, n_freqs)
        Effect of each source on EEG log band power.
    clean_volumes : ndarray, shape (n_samples, x, y, z, 1)
        Noise-free BOLD volumes.
    tr : float
        Repetition time in seconds.
    window_length : int
        Number of TRs averaged in each EEG window.
    """

    eeg: np.ndarray
    index: pd.MultiIndex
    bold: pd.DataFrame
    volumes: np.ndarray
    subjects: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    responses: np.ndarray
    maps: np.ndarray
    mixing: np.ndarray
    clean_volumes: np.ndarray
    tr: float
    window_length: int


def _smooth_maps(rng, n_sources, volume_shape):
    grids = np.meshgrid(*[np.arange(n) for n in volume_shape], indexing="ij")
    maps = np.zeros((n_sources, *volume_shape))
    for k in range(n_sources):
        for _ in range(2):
            centre = rng.uniform(0.2, 0.8, size=3) * (np.asarray(volume_shape) - 1)
            width = rng.uniform(0.12, 0.25) * max(volume_shape)
            sign = 1.0 if _ == 0 else -0.6
            dist = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
            maps[k] += sign * np.exp(-dist / (2 * width**2))
    return maps


def _ar1(rng, n, phi):
    values = np.zeros(n)
    noise = rng.normal(size=n) * np.sqrt(1 - phi**2)
    for t in range(1, n):
        values[t] = phi * values[t - 1] + noise[t]
    return (values - values.mean()) / values.std()


def hrf_convolve(values, tr, axis=0):
    """Causally convolve time series with the unit-sum SPM HRF sampled at ``tr``.

    Parameters
    ----------
    values : ndarray
        Time series, time along ``axis``.
    tr : float
        Sampling interval in seconds.
    axis : int, default 0
        Time axis.

    Returns
    -------
    ndarray
        Convolved series, same shape (the first samples see only the available past).
    """
    kernel = spm_hrf(np.arange(0.0, 32.0, tr))
    kernel = np.asarray(kernel, dtype=float) / np.sum(kernel)
    moved = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    out = np.zeros_like(moved)
    for lag, weight in enumerate(kernel):
        out[lag:] += weight * moved[: len(moved) - lag]
    return np.moveaxis(out, 0, axis)


def normalize_eeg(eeg, subjects):
    """Log-transform band power and z-score every feature within each subject.

    Parameters
    ----------
    eeg : ndarray, shape (n_samples, ...)
        Positive band power.
    subjects : array-like, shape (n_samples,)
        Subject of each sample.

    Returns
    -------
    ndarray
        float32 array of the same shape.

    Raises
    ------
    ValueError
        If the lengths differ or power is not positive.
    """
    eeg = np.asarray(eeg, dtype=float)
    subjects = np.asarray(subjects)
    if len(eeg) != len(subjects):
        raise ValueError(f"eeg has {len(eeg)} samples but subjects has {len(subjects)}")
    if not np.all(eeg > 0):
        raise ValueError("eeg band power must be positive to be log-transformed")
    out = np.log(eeg)
    for subject in np.unique(subjects):
        rows = subjects == subject
        out[rows] = (out[rows] - out[rows].mean(0)) / (out[rows].std(0) + 1e-8)
    return out.astype("float32")


def simulate_eeg_fmri(
    n_subjects=4,
    n_volumes=200,
    n_channels=32,
    n_freqs=8,
    n_windows=4,
    volume_shape=(10, 10, 10),
    tr=2.0,
    n_sources=3,
    snr=2.0,
    seed=0,
):
    """Simulate EEG band power and BOLD volumes driven by shared latent sources.

    Parameters
    ----------
    n_subjects : int, default 4
        Number of subjects.
    n_volumes : int, default 200
        Volumes per subject.
    n_channels, n_freqs, n_windows : int, default 32, 8, 4
        EEG channels, frequency bands and time windows per sample (the windows tile the
        16 s before each volume).
    volume_shape : tuple of 3 int, default (10, 10, 10)
        BOLD volume shape.
    tr : float, default 2.0
        Repetition time in seconds.
    n_sources : int, default 3
        Number of latent sources.
    snr : float, default 2.0
        Ratio of the standard deviations of the BOLD signal and the noise.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    EEGfMRIExperiment
        EEG, BOLD (frame and volumes), labels and ground truth.

    Raises
    ------
    ValueError
        For non-positive sizes, ``tr`` or ``snr``.

    Notes
    -----
    EEG: :math:`\\log P_{cft} = -\\log f + \\sum_k A_{kcf} s_k(t) + \\epsilon` with
    subject-specific channel gains. BOLD: :math:`y_v(t) = \\sum_k M_{kv}\\,
    (h * g(s_k))(t) + \\eta` with :math:`g(s) = 0.4 s + 0.6 (s^2 - 1)/\\sqrt{2}`.

    Examples
    --------
    >>> from braincoder.datasets import simulate_eeg_fmri
    >>> sim = simulate_eeg_fmri(n_subjects=2, n_volumes=20, volume_shape=(4, 4, 4))
    >>> sim.eeg.shape, sim.volumes.shape
    ((40, 32, 8, 4), (40, 4, 4, 4, 1))
    """
    sizes = dict(
        n_subjects=n_subjects, n_volumes=n_volumes, n_channels=n_channels, n_freqs=n_freqs,
        n_windows=n_windows, n_sources=n_sources,
    )
    for what, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    volume_shape = tuple(int(n) for n in volume_shape)
    if len(volume_shape) != 3 or min(volume_shape) < 1:
        raise ValueError(f"volume_shape must be three positive integers, got {volume_shape}")
    if tr <= 0 or snr <= 0:
        raise ValueError(f"tr and snr must be positive, got tr={tr!r}, snr={snr!r}")
    rng = np.random.default_rng(seed)
    window_length = max(1, int(round(HISTORY_SECONDS / tr / n_windows)))
    burn = n_windows * window_length + int(32 / tr)
    n_total = n_volumes + burn

    channel_pos = np.linspace(0, 2 * np.pi, n_channels, endpoint=False)
    freqs = np.arange(1, n_freqs + 1)
    mixing = np.zeros((n_sources, n_channels, n_freqs))
    for k in range(n_sources):
        centre = rng.uniform(0, 2 * np.pi)
        topo = np.exp(2.0 * (np.cos(channel_pos - centre) - 1))
        band = np.exp(-0.5 * ((freqs - rng.uniform(1, n_freqs)) / 1.2) ** 2)
        mixing[k] = 0.5 * topo[:, None] * band[None, :]
    maps = _smooth_maps(rng, n_sources, volume_shape)
    background = -np.log(freqs)[None, :, None]

    eeg, clean, sources, responses, subjects, volume_ids = [], [], [], [], [], []
    for subject in range(n_subjects):
        src = np.stack([_ar1(rng, n_total, 0.8) for _ in range(n_sources)], axis=1)
        gains = rng.normal(0.0, 0.5, size=(n_channels, 1, 1))
        log_power = (
            background + gains + np.einsum("kcf,tk->cft", mixing, src)
            + 0.3 * rng.normal(size=(n_channels, n_freqs, n_total))
        )
        power = np.exp(log_power)
        cumulative = np.concatenate(
            [np.zeros((n_channels, n_freqs, 1)), np.cumsum(power, axis=-1)], axis=-1
        )
        ends = np.arange(burn, n_total)[:, None] - np.arange(n_windows)[None, :] * window_length
        windows = (cumulative[..., ends + 1] - cumulative[..., ends + 1 - window_length])
        windows = np.moveaxis(windows / window_length, 2, 0)
        drive = (1 - NONLINEAR_WEIGHT) * src + NONLINEAR_WEIGHT * (src**2 - 1) / np.sqrt(2)
        bold_sources = hrf_convolve(drive, tr)[burn:]
        signal = np.einsum("tk,kxyz->txyz", bold_sources, maps)
        eeg.append(windows)
        clean.append(signal)
        sources.append(src[burn:])
        responses.append(bold_sources)
        subjects.append(np.full(n_volumes, subject))
        volume_ids.append(np.arange(n_volumes))
    clean = np.concatenate(clean)
    noise_sd = clean.std() / snr
    noisy = clean + rng.normal(scale=noise_sd, size=clean.shape)
    sources = np.concatenate(sources)
    responses = np.concatenate(responses)
    subjects = np.concatenate(subjects)
    labels = np.zeros(len(subjects), dtype=int)
    for subject in range(n_subjects):
        rows = subjects == subject
        labels[rows] = responses[rows, 0] > np.median(responses[rows, 0])
    index = pd.MultiIndex.from_arrays(
        [subjects, np.concatenate(volume_ids)], names=["subject", "volume"]
    )
    n_voxels = int(np.prod(volume_shape))
    bold = pd.DataFrame(
        noisy.reshape(len(noisy), n_voxels).astype("float32"),
        index=index,
        columns=pd.RangeIndex(n_voxels, name="voxel"),
    )
    return EEGfMRIExperiment(
        eeg=np.concatenate(eeg).astype("float32"),
        index=index,
        bold=bold,
        volumes=noisy[..., None].astype("float32"),
        subjects=subjects,
        labels=labels,
        sources=sources,
        responses=responses,
        maps=maps,
        mixing=mixing,
        clean_volumes=clean[..., None].astype("float32"),
        tr=float(tr),
        window_length=window_length,
    )
