"""Keras 3 layers of the deep EEG-to-fMRI models.

Spectral layers (:class:`DCT3D`, :class:`iDCT3D`, :class:`variational_iDCT3D`), feature
maps (:class:`FourierFeatures`, :class:`RandomFourierFeatures`), EEG channel attention
(:class:`TopographicalAttention`), 3D blocks (:class:`ResBlock3D`,
:class:`LocallyConnected3D`) and a Bayesian dense layer (:class:`DenseFlipout`). Every
layer is registered for ``.keras`` saving under the ``braincoder`` package and round-trips
through ``get_config``/``from_config``.
"""

from ._layers_bayes import DenseFlipout, scale_kl_divergence
from ._layers_conv import LocallyConnected3D, ResBlock3D
from ._layers_fft import DCT3D, dct_matrix, iDCT3D, sample_von_mises, variational_iDCT3D
from ._layers_nn import FourierFeatures, RandomFourierFeatures, TopographicalAttention

__all__ = [
    "DCT3D",
    "iDCT3D",
    "variational_iDCT3D",
    "dct_matrix",
    "sample_von_mises",
    "FourierFeatures",
    "RandomFourierFeatures",
    "TopographicalAttention",
    "ResBlock3D",
    "LocallyConnected3D",
    "DenseFlipout",
    "scale_kl_divergence",
]
