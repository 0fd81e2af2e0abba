"""Fitters: weights (closed-form ridge), parameters (grid + LM/Adam), noise, stimuli, deep."""

from .deep import DeepFitter
from .embedding import EmbeddingFitter
from .parameters import ParameterFitter
from .residuals import ResidualFitter
from .ridge import RidgeSolution, fit_ridge
from .stimulus import StimulusFitter
from .vaegan import VAEGANTrainer
from .weights import WeightFitter

__all__ = ["ParameterFitter", "WeightFitter", "fit_ridge", "RidgeSolution"]
__all__ += ["EmbeddingFitter"]
__all__ += ["ResidualFitter", "StimulusFitter"]
__all__ += ["DeepFitter"]
__all__ += ["VAEGANTrainer"]
