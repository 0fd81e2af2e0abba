"""The two roles a registered model plays: encoder or decoder.

An **encoder** predicts brain responses from what was shown (a paradigm, or EEG for
:class:`~braincoder.models.deep.EEG_to_fMRI`); a **decoder** predicts what was shown from
brain responses (images, stimulus values or embeddings). Both are saved with ``save(path)``
and read back by the one loader, :func:`braincoder.models.load_model`, or the class's own
``load(path)``. Encoding models with parameters are fitted by the fitters of
:mod:`braincoder.optimize` (the :class:`~braincoder.models.protocol.FittableModel`
protocol), deep encoders and every decoder by their ``fit``.

:func:`model_role` tells the role of a registered name without importing the model (from
the registry's table); a few registered parts of larger models (the VAE-GAN's fMRI
encoder) have no role of their own.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Encoder", "Decoder", "model_role", "ROLES"]

#: Registry name → role, for every built-in model with a role of its own.
ROLES = {
    "eeg_to_fmri": "encoder",
    "fmri_ae": "encoder",
    "embedding_decoder": "decoder",
    "ridge_embedding_decoder": "decoder",
    "ridge_image_decoder": "decoder",
    "prf_inversion_decoder": "decoder",
    "vae_gan": "decoder",
}


@runtime_checkable
class Encoder(Protocol):
    """What every encoder offers: responses predicted from what was shown.

    Encoding models (:class:`~braincoder.models.EncodingModel`) and the deep encoders
    (:class:`~braincoder.models.deep.EEG_to_fMRI`, :class:`~braincoder.models.deep.fMRI_AE`)
    satisfy it.
    """

    def predict(self, *args, **kwargs):
        """Predicted responses (time or sample × voxel)."""

    def save(self, path, *args, **kwargs):
        """Write the model to ``path`` (no pickle)."""

    @classmethod
    def load(cls, path, *args, **kwargs):
        """Read a model written by :meth:`save`."""


@runtime_checkable
class Decoder(Protocol):
    """What every decoder offers: what was shown, reconstructed from responses."""

    def fit(self, *args, **kwargs):
        """Learn the mapping from responses (sample × voxel) to stimuli."""

    def reconstruct(self, *args, **kwargs):
        """Reconstructed stimuli (images, values or embeddings), one per sample."""

    def save(self, path, *args, **kwargs):
        """Write the decoder to ``path`` (no pickle)."""

    @classmethod
    def load(cls, path, *args, **kwargs):
        """Read a decoder written by :meth:`save`."""


def model_role(name):
    """Return the role of a registered model: ``"encoder"``, ``"decoder"`` or None.

    Parameters
    ----------
    name : str
        Registry name (see :func:`~braincoder.models.list_models`).

    Returns
    -------
    str or None
        ``"encoder"`` for encoding models and deep encoders, ``"decoder"`` for decoders,
        None for registered parts of larger models.

    Raises
    ------
    ValueError
        If ``name`` is not registered.

    Examples
    --------
    >>> from braincoder.models.roles import model_role
    >>> model_role("gaussian_prf_2d_hrf"), model_role("vae_gan")
    ('encoder', 'decoder')
    """
    from .registry import model_info

    info = model_info(name)
    if info.kind == "encoding":
        return "encoder"
    return ROLES.get(name)
