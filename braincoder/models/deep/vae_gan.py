"""VAE-GAN image reconstruction from visual-cortex fMRI.

A VAE-GAN (Larsen et al., 2016) learns a latent space of images: a visual encoder, a
generator and a discriminator whose intermediate features define the reconstruction
similarity. An :class:`fMRIEncoder` then maps voxel patterns into that latent space and
the generator turns them into images (the three-stage recipe of VanRullen & Reddy and of
Mozafari et al.; see :class:`braincoder.optimize.VAEGANTrainer`).
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pandas as pd
from keras import ops

from ...utils.formatting import format_data
from ..registry import register_model
from ._vae_gan_parts import (
    build_discriminator,
    build_generator,
    build_image_encoder,
    check_fmri,
    check_images,
    fMRIEncoder,
)

__all__ = ["VAEGAN", "fMRIEncoder"]

_PARTS = ("image_encoder", "generator", "discriminator", "fmri_encoder")


@register_model("vae_gan")
class VAEGAN:
    """Variational auto-encoder with a GAN discriminator, decoding images from fMRI.

    Parameters
    ----------
    latent_dim : int, default 32
        Dimension of the latent space.
    image_shape : tuple of int, default (28, 28, 1)
        ``(height, width, channels)``; height and width must be divisible by
        ``2 ** len(filters)``.
    filters : sequence of int, default (32, 64)
        Channels of the strided convolutions of the encoder and discriminator (the
        generator mirrors them).
    seed : int, optional
        Seed of the weight initialisers.
    fmri_encoder : fMRIEncoder, optional
        An encoder from voxels to the latent space (normally created by
        :meth:`braincoder.optimize.VAEGANTrainer.fit_fmri_encoder`).

    Attributes
    ----------
    image_encoder : keras.Model
        Images → ``[mean, log_variance]`` of the latent posterior.
    generator : keras.Model
        Latents → images in [0, 1].
    discriminator : keras.Model
        Images → ``[features, logit]``.
    fmri_encoder : fMRIEncoder or None
        Voxels → latents.
    linear_decoder : RidgeImageDecoder or None
        Linear voxel → pixel decoder blended into :meth:`reconstruct` (set by
        :meth:`braincoder.optimize.VAEGANTrainer.fit_blend`).
    blend_weight : float
        Weight :math:`w` of the generator's image in :meth:`reconstruct`:
        :math:`w \\, G(F(y)) + (1 - w) \\, R(y)` with :math:`R` the ``linear_decoder``
        (1.0, the generator alone, without one).

    Notes
    -----
    The encoder, generator and discriminator are functional Keras models; the fMRI encoder
    is a registered :class:`keras.Model` subclass. :meth:`save` writes one ``.keras`` file
    per part plus ``vae_gan.json`` into a directory; :meth:`load` reads them back with
    ``safe_mode=True``.

    References
    ----------
    Larsen, A. B. L., Sønderby, S. K., Larochelle, H., & Winther, O. (2016). Autoencoding
    beyond pixels using a learned similarity metric. ICML.

    Ren, Z., et al. (2021). Reconstructing seen image from brain activity by visually-guided
    cognitive representation and adversarial learning. NeuroImage 228, 117602.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep import VAEGAN
    >>> model = VAEGAN(latent_dim=4, filters=(4, 8), seed=0)
    >>> model.encode(np.zeros((2, 28, 28))).shape
    (2, 4)
    """

    def __init__(self, latent_dim=32, image_shape=(28, 28, 1), filters=(32, 64), seed=None,
                 fmri_encoder=None):
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) \
                or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        image_shape = tuple(int(s) for s in image_shape)
        filters = tuple(int(f) for f in filters)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (height, width, channels), got {image_shape}")
        if not filters or min(filters) < 1:
            raise ValueError(f"filters must be positive integers, got {filters}")
        factor = 2 ** len(filters)
        if image_shape[0] % factor or image_shape[1] % factor:
            raise ValueError(
                f"image height and width must be divisible by {factor} "
                f"(2 ** len(filters)), got {image_shape[:2]}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if fmri_encoder is not None and not isinstance(fmri_encoder, fMRIEncoder):
            raise TypeError(
                f"fmri_encoder must be an fMRIEncoder, got {type(fmri_encoder).__name__}"
            )
        self.latent_dim = int(latent_dim)
        self.image_shape = image_shape
        self.filters = filters
        self.seed = seed
        self.image_encoder = build_image_encoder(self.latent_dim, image_shape, filters, seed)
        self.generator = build_generator(self.latent_dim, image_shape, filters, seed)
        self.discriminator = build_discriminator(image_shape, filters, seed)
        if fmri_encoder is not None and fmri_encoder.latent_dim != self.latent_dim:
            raise ValueError(
                f"fmri_encoder outputs {fmri_encoder.latent_dim} dimensions, the VAE-GAN "
                f"latent has {self.latent_dim}"
            )
        self.fmri_encoder = fmri_encoder
        self.linear_decoder = None
        self.blend_weight = 1.0

    # ------------------------------------------------------------------ inference

    def encode(self, images, batch_size=256):
        """Latent means of images under the visual encoder.

        Parameters
        ----------
        images : array-like, shape (n, height, width) or (n, height, width, channels)
            Images in [0, 1].
        batch_size : int, default 256
            Images per forward pass.

        Returns
        -------
        ndarray, shape (n, latent_dim)
            Posterior means.

        Raises
        ------
        ValueError
            For images of the wrong shape, outside [0, 1], or non-finite.
        """
        images = check_images(images, self.image_shape)
        return np.concatenate([
            ops.convert_to_numpy(self.image_encoder(images[i : i + batch_size])[0])
            for i in range(0, max(len(images), 1), batch_size)
        ])

    def decode(self, latents, batch_size=256):
        """Generate images from latent vectors.

        Parameters
        ----------
        latents : array-like, shape (n, latent_dim)
            Latent vectors.
        batch_size : int, default 256
            Latents per forward pass.

        Returns
        -------
        ndarray, shape (n, height, width) or (n, height, width, channels)
            Images in [0, 1] (the channel axis is dropped for grey-scale images).

        Raises
        ------
        ValueError
            For a wrong shape or non-finite values.
        """
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(
                f"latents must have shape (n, {self.latent_dim}), got {latents.shape}"
            )
        if not np.isfinite(latents).all():
            raise ValueError("latents hold non-finite values")
        images = np.concatenate([
            ops.convert_to_numpy(self.generator(latents[i : i + batch_size]))
            for i in range(0, max(len(latents), 1), batch_size)
        ])
        return images[..., 0] if self.image_shape[2] == 1 else images

    def reconstruct_images(self, images):
        """Pass images through the visual encoder (posterior means) and the generator.

        Parameters
        ----------
        images : array-like, shape (n, height, width)
            Images in [0, 1].

        Returns
        -------
        ndarray
            Reconstructions, same shape as the generator output of :meth:`decode`.
        """
        return self.decode(self.encode(images))

    def fmri_to_latent(self, fmri):
        """Latent vectors predicted from voxel patterns by the fMRI encoder.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns (same voxels as at training; DataFrame columns matched by name).

        Returns
        -------
        DataFrame, shape (n_trials, latent_dim)
            Latents indexed like ``fmri``.

        Raises
        ------
        RuntimeError
            If there is no fMRI encoder.
        ValueError
            For NaN or voxels that differ from the encoder's (count or names).
        """
        if self.fmri_encoder is None:
            raise RuntimeError(
                "the VAE-GAN has no fMRI encoder; train one with "
                "VAEGANTrainer.fit_fmri_encoder(fmri, images)"
            )
        frame = check_fmri(fmri, self.fmri_encoder)
        values = frame.to_numpy(dtype=np.float32)
        latents = ops.convert_to_numpy(self.fmri_encoder(values, training=False))
        return pd.DataFrame(
            latents, index=frame.index, columns=pd.RangeIndex(self.latent_dim, name="latent")
        )

    def fit(self, fmri, images, unpaired_images=None, exclude_images=None,
            epochs=(100, 200, 100), blend=True, log_dir=None, seed=0, progressbar=True):
        """Train the three stages and the ridge blend with their default settings.

        Runs :class:`~braincoder.optimize.VAEGANTrainer`'s recipe: the visual prior on
        ``images`` (plus ``unpaired_images``), the fMRI encoder, the generator, then
        (``blend=True``) the blend with ridge chosen on held-out training trials. For
        other settings, use the trainer's stages directly.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Training responses.
        images : array-like, shape (n_trials, height, width[, channels])
            The images shown on those trials, values in [0, 1].
        unpaired_images : array-like, optional
            More images without fMRI for the visual prior (stage 1).
        exclude_images : array-like, optional
            Images that must not enter the prior (e.g. the test stimuli); an exact copy
            among the stage-1 images raises a ``ValueError``.
        epochs : tuple of three int, default (100, 200, 100)
            Epochs of the prior, the fMRI encoder and the generator.
        blend : bool, default True
            Blend the generator's images with a ridge decoder (weight chosen by validation).
        log_dir, seed, progressbar : optional
            As in :class:`~braincoder.optimize.VAEGANTrainer` and its stages.

        Returns
        -------
        VAEGAN
            The model itself, trained.

        Raises
        ------
        ValueError
            For badly shaped or non-finite inputs, or ``epochs`` not three positive
            integers.
        """
        from ...optimize.vaegan import VAEGANTrainer

        if len(tuple(epochs)) != 3:
            raise ValueError(f"epochs must hold three values (prior, fMRI encoder, "
                             f"generator), got {epochs!r}")
        prior_epochs, encoder_epochs, generator_epochs = (int(e) for e in epochs)
        trainer = VAEGANTrainer(self, log_dir=log_dir, seed=seed)
        # Paired inputs checked before the prior trains, not after it.
        n_trials = len(format_data(fmri, "fmri"))
        n_images = len(check_images(images, self.image_shape))
        if n_trials != n_images:
            raise ValueError(f"fmri has {n_trials} trials but images has {n_images}")
        trainer.fit_vae_gan(images, epochs=prior_epochs, progressbar=progressbar,
                            unpaired_images=unpaired_images, exclude_images=exclude_images)
        trainer.fit_fmri_encoder(fmri, images, epochs=encoder_epochs, progressbar=progressbar)
        trainer.fit_generator(fmri, images, epochs=generator_epochs, progressbar=progressbar)
        if blend:
            trainer.fit_blend(fmri, images)
        return self

    def reconstruct(self, fmri, n_samples=1, sd_scale=1.0, seed=0):
        """Reconstruct the images seen on each trial from voxel patterns.

        With ``n_samples`` = 1 each image is the generator's image of the predicted latent
        :math:`\\hat z = F(y)`. With ``n_samples`` = K > 1 it is the average of the
        generator's images of K latents :math:`\\hat z + s \\, \\sigma \\odot
        \\epsilon_k`, with :math:`\\sigma` the fMRI encoder's stored residual spread
        (``latent_sd`` of the :class:`fMRIEncoder`, estimated on held-out trials),
        :math:`s` = ``sd_scale`` and :math:`\\epsilon_k \\sim N(0, I)` drawn with
        ``seed`` and shared by all trials (a trial's image does not depend on the other
        rows): an estimate of the posterior-mean image rather than the image of the
        posterior-mean latent.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns, rows labelled by trial.
        n_samples : int, default 1
            Latent draws averaged per trial (1: no sampling).
        sd_scale : float, default 1.0
            Factor on the stored latent standard deviation (0: no spread).
        seed : int, default 0
            Seed of the latent draws.

        Returns
        -------
        images : ndarray, shape (n_trials, height, width)
            Reconstructed images in [0, 1].
        frame : DataFrame, shape (n_trials, height · width)
            The same images flattened row-major, indexed like ``fmri``, one column per
            pixel (the pixel order of :func:`braincoder.stimuli.make_grid_coordinates`).

        Raises
        ------
        RuntimeError
            If there is no fMRI encoder.
        ValueError
            For NaN or voxels that differ from the encoder's (count or names), for
            ``n_samples`` that is not a positive integer or a negative or non-finite
            ``sd_scale``.

        Examples
        --------
        >>> import numpy as np
        >>> from braincoder.models.deep import VAEGAN, fMRIEncoder
        >>> encoder = fMRIEncoder(6, 4, hidden=(), seed=0)
        >>> encoder.set_latent_sd(0.5)
        >>> model = VAEGAN(latent_dim=4, filters=(4, 8), seed=0, fmri_encoder=encoder)
        >>> images, frame = model.reconstruct(np.ones((3, 6)), n_samples=8, seed=1)
        >>> images.shape, frame.shape
        ((3, 28, 28), (3, 784))
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
                or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if isinstance(sd_scale, bool) or not np.isfinite(sd_scale) or sd_scale < 0:
            raise ValueError(f"sd_scale must be a finite number >= 0, got {sd_scale!r}")
        latents = self.fmri_to_latent(fmri)
        values = latents.to_numpy()
        linear = None
        if self.linear_decoder is not None and self.blend_weight < 1.0:
            linear = self.linear_decoder.reconstruct(check_fmri(fmri, self.fmri_encoder))[0]
        if n_samples == 1:
            images = self.decode(values)
        else:
            spread = float(sd_scale) * ops.convert_to_numpy(self.fmri_encoder.latent_sd)
            eps = np.random.default_rng(seed).standard_normal((n_samples, self.latent_dim))
            images = np.mean([
                self.decode(values + (spread * draw).astype(np.float32)) for draw in eps
            ], axis=0)
        if linear is not None:
            weight = np.float32(self.blend_weight)
            blended = weight * images + (1 - weight) * linear.reshape(images.shape)
            images = blended.astype(np.float32)
        frame = pd.DataFrame(
            images.reshape(len(images), -1),
            index=latents.index,
            columns=pd.RangeIndex(int(np.prod(images.shape[1:])), name="pixel"),
        )
        return images, frame

    # ------------------------------------------------------------------ persistence

    def get_config(self):
        """Return the constructor arguments (JSON-able).

        Returns
        -------
        dict
            ``latent_dim``, ``image_shape``, ``filters``, ``seed``.
        """
        return {
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "filters": list(self.filters),
            "seed": self.seed,
        }

    def save(self, path, overwrite=True):
        """Save the model to a directory: ``vae_gan.json`` and one ``.keras`` file per part.

        A blended linear decoder (:meth:`braincoder.optimize.VAEGANTrainer.fit_blend`) is
        saved in the sub-folder ``linear_decoder`` and its weight in ``vae_gan.json``.

        Parameters
        ----------
        path : str or path
            Directory (created if needed).
        overwrite : bool, default True
            Replace existing files.

        Raises
        ------
        FileExistsError
            If the directory already holds a saved model and ``overwrite`` is False.
        """
        path = os.fspath(path)
        config_file = os.path.join(path, "vae_gan.json")
        if os.path.exists(config_file) and not overwrite:
            raise FileExistsError(f"{path} already holds a saved VAE-GAN")
        os.makedirs(path, exist_ok=True)
        parts = [part for part in _PARTS if getattr(self, part) is not None]
        for part in _PARTS:
            target = os.path.join(path, f"{part}.keras")
            if part in parts:
                getattr(self, part).save(target, overwrite=True)
            elif os.path.exists(target):
                os.remove(target)
        linear_dir = os.path.join(path, "linear_decoder")
        if self.linear_decoder is not None:
            self.linear_decoder.save(linear_dir)
        elif os.path.isdir(linear_dir):
            shutil.rmtree(linear_dir)
        with open(config_file, "w", encoding="utf-8") as handle:
            json.dump({"config": self.get_config(), "parts": parts,
                       "blend_weight": float(self.blend_weight),
                       "linear_decoder": self.linear_decoder is not None}, handle, indent=2)

    @classmethod
    def load(cls, path):
        """Load a model saved with :meth:`save` (``safe_mode=True``, no compile).

        Parameters
        ----------
        path : str or path
            Directory written by :meth:`save`.

        Returns
        -------
        VAEGAN
            The model with its weights and, when saved, its fMRI encoder.

        Raises
        ------
        FileNotFoundError
            If ``vae_gan.json`` is missing.
        """
        path = os.fspath(path)
        config_file = os.path.join(path, "vae_gan.json")
        if not os.path.exists(config_file):
            raise FileNotFoundError(f"{config_file} not found; is {path} a saved VAE-GAN?")
        with open(config_file, encoding="utf-8") as handle:
            spec = json.load(handle)
        model = cls(**spec["config"])
        for part in spec["parts"]:
            loaded = keras.saving.load_model(
                os.path.join(path, f"{part}.keras"), compile=False, safe_mode=True
            )
            setattr(model, part, loaded)
        if spec.get("linear_decoder"):
            from ..image_decoders import RidgeImageDecoder

            model.linear_decoder = RidgeImageDecoder.load(os.path.join(path, "linear_decoder"))
        model.blend_weight = float(spec.get("blend_weight", 1.0))
        return model
