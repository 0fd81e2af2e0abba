"""Simulators and bundled demo data (no downloads)."""

from .eeg_fmri import EEGfMRIExperiment, normalize_eeg, simulate_eeg_fmri
from .embedding_fmri import EmbeddingExperiment, simulate_embedding_fmri
from .image_fmri import ImageFMRIExperiment, simulate_image_fmri, split_image_fmri
from .prf import PRFExperiment, bar_sweep_paradigm, simulate_prf_2d

__all__ = ["bar_sweep_paradigm", "simulate_prf_2d", "PRFExperiment"]
__all__ += ["simulate_embedding_fmri", "EmbeddingExperiment"]
__all__ += ["simulate_eeg_fmri", "EEGfMRIExperiment", "normalize_eeg"]
__all__ += ["simulate_image_fmri", "split_image_fmri", "ImageFMRIExperiment"]
