"""Simulators and bundled demo data (no downloads)."""

from .embedding_fmri import EmbeddingExperiment, simulate_embedding_fmri
from .prf import PRFExperiment, bar_sweep_paradigm, simulate_prf_2d

__all__ = ["bar_sweep_paradigm", "simulate_prf_2d", "PRFExperiment"]
__all__ += ["simulate_embedding_fmri", "EmbeddingExperiment"]
