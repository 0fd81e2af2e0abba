"""Deep encoding and decoding models (Keras 3), registered beside the classic models."""

from .base import DeepEncodingModel
from .classifiers import LinearClassifier, view_EEG_classifier
from .eeg_to_fmri import EEG_to_fMRI
from .embedding import EmbeddingDecoder, RidgeEmbeddingDecoder
from .fmri_ae import fMRI_AE
from .vae_gan import VAEGAN, fMRIEncoder

__all__ = []
__all__ += ["EmbeddingDecoder", "RidgeEmbeddingDecoder"]
__all__ += ["fMRI_AE", "EEG_to_fMRI", "LinearClassifier", "view_EEG_classifier"]
__all__ += ["DeepEncodingModel"]
__all__ += ["VAEGAN", "fMRIEncoder"]
