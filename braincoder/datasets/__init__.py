"""Simulators and bundled demo data (no downloads)."""

from ..utils.data import load_szinte2024
from .eeg_fmri import EEGfMRIExperiment, normalize_eeg, simulate_eeg_fmri
from .embedding_fmri import EmbeddingExperiment, simulate_embedding_fmri
from .image_fmri import (
    ImageFMRIExperiment,
    image_hashes,
    load_digit_images,
    simulate_image_fmri,
    split_image_fmri,
)
from .prf import PRFExperiment, bar_sweep_paradigm, simulate_prf_2d

__all__ = ["bar_sweep_paradigm", "simulate_prf_2d", "PRFExperiment"]
__all__ += ["simulate_embedding_fmri", "EmbeddingExperiment"]
__all__ += ["simulate_eeg_fmri", "EEGfMRIExperiment", "normalize_eeg"]
__all__ += ["simulate_image_fmri", "split_image_fmri", "ImageFMRIExperiment"]
__all__ += ["load_digit_images", "image_hashes"]
__all__ += ["load_szinte2024"]
