"""VAEGANTrainer: the three training stages of fMRI-to-image decoding with a VAE-GAN.

1. :meth:`VAEGANTrainer.fit_vae_gan` trains the visual encoder, generator and
   discriminator on images (KL + feature-wise reconstruction in the discriminator's last
   convolution + adversarial loss).
2. :meth:`VAEGANTrainer.fit_fmri_encoder` trains the fMRI encoder to reproduce the visual
   encoder's latent means of the same images (distillation) against a latent
   discriminator.
3. :meth:`VAEGANTrainer.fit_generator` fine-tunes the generator (and discriminator) on
   fMRI-derived latents.

Each stage is a Keras model with a custom ``train_step`` (its own optimizers, TensorFlow
``GradientTape``) driven by ``keras.Model.fit``: progress bar, TensorBoard scalars and image
grids, early stopping on the validation pixel correlation with the best weights restored.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..utils.formatting import format_data
from ..utils.metrics import pearson_per_sample
from ._monitor import Monitor, resolve_log_dir
from ._vaegan_stages import FMRIEncoderStage, GeneratorStage, VAEGANStage

__all__ = ["VAEGANTrainer"]

logger = logging.getLogger(__name__)

#: Default ridge alphas and candidate generator weights of :meth:`VAEGANTrainer.fit_blend`.
_BLEND_ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-1, 10))
_BLEND_WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))


class _ValidationCallback(keras.callbacks.Callback):
    """Adds ``val_pcc`` (mean pixel correlation) to the logs; image grids go to the monitor."""

    def __init__(self, reconstruct, inputs, images, monitor, image_every, stage):
        super().__init__()
        self.reconstruct = reconstruct
        self.inputs = inputs
        self.images = images
        self.monitor = monitor
        self.image_every = image_every
        self.stage = stage

    def on_epoch_end(self, epoch, logs=None):
        if self.inputs is None or logs is None:
            return
        recon = self.reconstruct(self.inputs)
        pcc = pearson_per_sample(self.images.reshape(len(recon), -1), recon.reshape(len(recon), -1))
        logs["val_pcc"] = float(np.nanmean(pcc)) if np.isfinite(pcc).any() else 0.0
        if self.monitor.run_dir is not None and epoch % self.image_every == 0:
            true = self.images[:8].reshape(recon[:8].shape)
            grid = np.concatenate([true, recon[:8]], axis=2)  # true | reconstruction
            if grid.ndim == 3:
                grid = grid[..., None]
            self.monitor.images(epoch, f"{self.stage}/reconstructions", grid)


def _check_positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


class VAEGANTrainer:
    """Trains a :class:`~braincoder.models.deep.VAEGAN` and its fMRI encoder in three stages.

    Parameters
    ----------
    model : VAEGAN
        The model to train (updated in place).
    fmri_encoder : fMRIEncoder, optional
        Encoder from voxels to latents; by default :meth:`fit_fmri_encoder` creates one
        (``hidden=(256,)``, ``dropout=0.3``) and attaches it to ``model``.
    log_dir : str or path, optional
        TensorBoard directory: each stage writes a timestamped run folder with scalars
        (losses, ``val_pcc``) and image grids (true | reconstruction).
    seed : int, default 0
        Seed of Keras (``keras.utils.set_random_seed``), shuffling, sampling and splits.

    Attributes
    ----------
    history : dict of str to DataFrame
        Per-epoch logs of each stage run (``"vae_gan"``, ``"fmri_encoder"``,
        ``"generator"``).
    samples_per_second : dict of str to float
        Training throughput of each stage.
    run_dirs : dict of str to str
        TensorBoard run folder of each stage.
    n_prior_images : int or None
        Distinct images (paired and unpaired, before augmentation, including the
        validation part) the last :meth:`fit_vae_gan` learnt the visual prior from.

    Raises
    ------
    TypeError
        For a model that is not a VAEGAN or an encoder that is not an fMRIEncoder.

    Examples
    --------
    >>> from braincoder.datasets import simulate_image_fmri
    >>> from braincoder.models.deep import VAEGAN
    >>> from braincoder.optimize import VAEGANTrainer
    >>> sim = simulate_image_fmri(n_voxels_per_area=(20, 10, 10))
    >>> trainer = VAEGANTrainer(VAEGAN(latent_dim=4, filters=(4, 8), seed=0), seed=0)
    >>> _ = trainer.fit_vae_gan(sim.images[:32], epochs=1, progressbar=False)
    >>> _ = trainer.fit_fmri_encoder(sim.responses[:32], sim.images[:32], epochs=1,
    ...                              progressbar=False)
    >>> trainer.model.reconstruct(sim.responses[32:34])[0].shape
    (2, 28, 28)
    """

    def __init__(self, model, fmri_encoder=None, log_dir=None, seed=0):
        from ..models.deep.vae_gan import VAEGAN, fMRIEncoder

        if not isinstance(model, VAEGAN):
            raise TypeError(f"model must be a VAEGAN, got {type(model).__name__}")
        if fmri_encoder is not None:
            if not isinstance(fmri_encoder, fMRIEncoder):
                raise TypeError(
                    f"fmri_encoder must be an fMRIEncoder, got {type(fmri_encoder).__name__}"
                )
            if fmri_encoder.latent_dim != model.latent_dim:
                raise ValueError(
                    f"fmri_encoder outputs {fmri_encoder.latent_dim} dimensions, the VAE-GAN "
                    f"latent has {model.latent_dim}"
                )
            model.fmri_encoder = fmri_encoder
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.model = model
        self.log_dir = log_dir
        self.seed = int(seed)
        self.history = {}
        self.samples_per_second = {}
        self.run_dirs = {}
        self.n_prior_images = None

    # ------------------------------------------------------------------ helpers

    def _split(self, n, validation_split):
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        n_val = int(round(validation_split * n))
        if validation_split > 0:
            n_val = max(n_val, 1)
        if n - n_val < 1:
            raise ValueError(f"validation_split={validation_split} leaves no training samples")
        order = np.random.default_rng(self.seed).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _paired(self, fmri, images, validation_data, validation_split, encoder):
        """Return checked (train_x, train_images, val_x, val_images) for the fMRI stages."""
        from ..models.deep._vae_gan_parts import check_fmri, check_images

        frame = format_data(fmri, "fmri")
        images = check_images(images, self.model.image_shape)
        if len(frame) != len(images):
            raise ValueError(f"fmri has {len(frame)} trials but images has {len(images)}")
        if encoder is not None:
            frame = check_fmri(frame, encoder)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be an (fmri, images) pair")
            val_frame = format_data(validation_data[0], "validation fmri")
            val_images = check_images(validation_data[1], self.model.image_shape,
                                      "validation images")
            if val_frame.shape[1] != frame.shape[1]:
                raise ValueError(
                    f"validation fmri has {val_frame.shape[1]} voxels, fmri {frame.shape[1]}"
                )
            if len(val_frame) != len(val_images):
                raise ValueError("validation fmri and images differ in length")
            return frame, images, val_frame.to_numpy(np.float32), val_images
        train, val = self._split(len(frame), validation_split)
        val_x = frame.to_numpy(np.float32)[val] if len(val) else None
        return frame.iloc[train], images[train], val_x, images[val] if len(val) else None

    def _run(self, stage, name, dataset, n_samples, epochs, reconstruct, val_inputs, val_images,
             early_stopping_patience, image_every, progressbar):
        callbacks = []
        run_dir = None
        if self.log_dir is not None and self.log_dir is not False:
            run_dir = resolve_log_dir(self.log_dir, name)
            self.run_dirs[name] = run_dir
        monitor = Monitor(run_dir, epochs, progressbar, f"VAEGANTrainer.{name}",
                          what=f"VAEGANTrainer.{name}")
        # The validation score is added to the logs before the monitor records them.
        callbacks.append(_ValidationCallback(reconstruct, val_inputs, val_images, monitor,
                                             image_every, name))
        callbacks.append(monitor)
        if early_stopping_patience is not None and val_inputs is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_pcc", mode="max", patience=early_stopping_patience,
                restore_best_weights=True,
            ))
        start = time.perf_counter()
        with monitor:
            stage.fit(dataset, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0)
        elapsed = time.perf_counter() - start
        n_epochs = len(monitor.records)
        self.samples_per_second[name] = n_samples * n_epochs / elapsed if elapsed else np.nan
        frame = pd.DataFrame(monitor.records, index=pd.RangeIndex(n_epochs, name="epoch"))
        self.history[name] = frame[sorted(frame.columns)]
        logger.info("VAEGANTrainer.%s: %d epochs, %.0f samples/s", name, n_epochs,
                    self.samples_per_second[name])
        return self.history[name]

    def _dataset(self, arrays, batch_size):
        return (
            tf.data.Dataset.from_tensor_slices(arrays)
            .shuffle(len(arrays[0]), seed=self.seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )

    @staticmethod
    def _check_common(epochs, batch_size, learning_rate, early_stopping_patience, image_every):
        _check_positive_int(epochs, "epochs")
        _check_positive_int(batch_size, "batch_size")
        _check_positive_int(image_every, "image_every")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if early_stopping_patience is not None and early_stopping_patience < 0:
            raise ValueError(
                f"early_stopping_patience must be >= 0 or None, got {early_stopping_patience!r}"
            )

    # ------------------------------------------------------------------ stage 1

    def _stage1_images(self, images, unpaired_images, exclude_images):
        """Check and de-duplicate the stage-1 images; raise if one is an excluded image."""
        from ..datasets.image_fmri import image_hashes
        from ..models.deep._vae_gan_parts import check_images

        images = check_images(images, self.model.image_shape)
        if unpaired_images is not None:
            unpaired = check_images(unpaired_images, self.model.image_shape,
                                    "unpaired_images")
            seen = set(image_hashes(images))
            keep = []
            for position, key in enumerate(image_hashes(unpaired)):
                if key not in seen:
                    seen.add(key)
                    keep.append(position)
            images = np.concatenate([images, unpaired[keep]])
        if exclude_images is not None:
            excluded = set(image_hashes(
                check_images(exclude_images, self.model.image_shape, "exclude_images")
            ))
            overlap = [i for i, key in enumerate(image_hashes(images)) if key in excluded]
            if overlap:
                raise ValueError(
                    f"{len(overlap)} stage-1 image(s) are identical to excluded images "
                    f"(first at position {overlap[0]} of images followed by the kept "
                    "unpaired_images); remove the test stimuli from the stage-1 images"
                )
        return images

    def fit_vae_gan(self, images, epochs=100, batch_size=32, learning_rate=1e-3,
                    kl_weight=0.1, feature_weight=1.0, pixel_weight=1.0, adversarial_weight=0.1,
                    validation_split=0.1, early_stopping_patience=20, image_every=10,
                    progressbar=True, augment_copies=0, augment_shift=2, augment_rotation=10.0,
                    unpaired_images=None, exclude_images=None):
        """Stage 1: train the visual encoder, generator and discriminator on images.

        This stage needs no fMRI: it learns a visual prior (a latent space and a
        generator of plausible images) from any image set. Training it on many more
        images than the experiment's paired trials (``unpaired_images``, e.g.
        :func:`~braincoder.datasets.load_digit_images`) gives the decoder image knowledge
        that the linear decoders, fitted on the paired trials only, do not have. Pass the
        test stimuli as ``exclude_images`` to have it checked that none of them is among
        the stage-1 images.

        With :math:`x` an image, :math:`(\\mu, \\log\\sigma^2)` the encoder output,
        :math:`\\tilde x = G(\\mu + \\sigma\\epsilon)`, :math:`x_p = G(z_p)` with
        :math:`z_p \\sim N(0, I)` and :math:`D_l` the discriminator's last convolution:
        the encoder minimises ``kl_weight`` · KL + feature + ``pixel_weight`` · pixel MSE,
        the generator ``feature_weight`` · (feature + ``pixel_weight`` · pixel) +
        ``adversarial_weight`` · GAN loss, the discriminator the GAN loss
        (real vs :math:`\\tilde x` and :math:`x_p`); feature is the mean squared difference
        of :math:`D_l(x)` and :math:`D_l(\\tilde x)`; KL is divided by the number of pixels.
        Each part has its own Adam optimizer.

        Parameters
        ----------
        images : array-like, shape (n, height, width)
            Training images in [0, 1].
        epochs : int, default 100
            Maximum epochs.
        batch_size : int, default 32
            Images per batch.
        learning_rate : float, default 1e-3
            Adam learning rate (the discriminator uses half of it).
        kl_weight, feature_weight, pixel_weight, adversarial_weight : float
            Loss weights (see above).
        validation_split : float, default 0.1
            Fraction of images held out to compute ``val_pcc`` (auto-encoding pixel
            correlation); 0 disables validation and early stopping.
        early_stopping_patience : int or None, default 20
            Epochs without ``val_pcc`` improvement before stopping; best weights restored.
        image_every : int, default 10
            Epochs between TensorBoard image grids.
        progressbar : bool, default True
            tqdm bar over epochs.
        augment_copies : int, default 0
            Randomly shifted and rotated copies of every training image added to the
            training set (see :func:`~braincoder.models.deep._vae_gan_parts.augment_images`,
            seeded by ``seed``); validation images are never augmented. 0 disables it.
        augment_shift : int, default 2
            Largest random shift of the copies, in pixels.
        augment_rotation : float, default 10.0
            Largest random rotation of the copies, in degrees.
        unpaired_images : array-like, shape (m, height, width), optional
            Further images without fMRI (any number ``m``, e.g. a large image
            collection), trained on together with ``images``; exact copies of an image of
            ``images`` (or of an earlier unpaired image) are dropped, so the paired
            stimuli may be part of the collection. The number of distinct stage-1 images
            is stored in :attr:`n_prior_images`.
        exclude_images : array-like, shape (k, height, width), optional
            Images that must not be in stage 1 (the test stimuli): a ``ValueError`` is
            raised if any image of ``images`` or ``unpaired_images`` is an exact copy of
            one of them (compared by :func:`~braincoder.datasets.image_hashes`).

        Returns
        -------
        DataFrame
            Per-epoch ``loss`` (encoder objective), ``kl_loss``, ``feature_loss``,
            ``pixel_loss``, ``generator_loss``, ``discriminator_loss`` and ``val_pcc``.

        Raises
        ------
        ValueError
            For images (paired, unpaired or excluded) of the wrong shape, outside [0, 1]
            or with NaN, a stage-1 image identical to an excluded image, or bad settings.
        """
        self._check_common(epochs, batch_size, learning_rate, early_stopping_patience,
                           image_every)
        from ..models.deep._vae_gan_parts import augment_images

        images = self._stage1_images(images, unpaired_images, exclude_images)
        if isinstance(augment_copies, bool) or not isinstance(augment_copies, (int, np.integer)) \
                or augment_copies < 0:
            raise ValueError(f"augment_copies must be an integer >= 0, got {augment_copies!r}")
        if isinstance(augment_shift, bool) or not isinstance(augment_shift, (int, np.integer)) \
                or not 0 <= augment_shift < min(self.model.image_shape[:2]):
            raise ValueError(
                f"augment_shift must be an integer in [0, image size), got {augment_shift!r}"
            )
        if not 0.0 <= augment_rotation <= 180.0:
            raise ValueError(f"augment_rotation must be in [0, 180], got {augment_rotation!r}")
        weights = {"kl_weight": kl_weight, "feature_weight": feature_weight,
                   "pixel_weight": pixel_weight, "adversarial_weight": adversarial_weight}
        for key, value in weights.items():
            if not value >= 0:
                raise ValueError(f"{key} must be >= 0, got {value!r}")
        train, val = self._split(len(images), validation_split)
        self.n_prior_images = len(images)
        keras.utils.set_random_seed(self.seed)
        stage = VAEGANStage(self.model, seed=self.seed, **weights)
        stage.compile_stage(learning_rate)
        val_images = images[val] if len(val) else None
        train_images = images[train]
        if augment_copies:
            train_images = np.concatenate([train_images, augment_images(
                train_images, augment_copies, augment_shift, augment_rotation, seed=self.seed
            )])
        return self._run(
            stage, "vae_gan", self._dataset((train_images,), batch_size), len(train_images),
            epochs,
            self.model.reconstruct_images, val_images, val_images, early_stopping_patience,
            image_every, progressbar,
        )

    # ------------------------------------------------------------------ stage 2

    def fit_fmri_encoder(self, fmri, images, epochs=200, batch_size=32, learning_rate=1e-3,
                         adversarial_weight=0.05, image_weight=0.0, weight_decay=1e-3,
                         validation_split=0.1, validation_data=None, early_stopping_patience=30,
                         image_every=10, progressbar=True, ridge_init_alphas=None):
        """Stage 2: train the fMRI encoder to predict the visual encoder's latents.

        The target of each trial is the latent mean :math:`\\mu(x)` of its image under the
        (frozen) visual encoder. The fMRI encoder minimises the mean squared latent error
        plus ``adversarial_weight`` times a GAN loss against a small latent discriminator
        (real: :math:`\\mu(x)`; fake: the fMRI latents), which has its own optimizer. With
        ``image_weight`` > 0 it also minimises ``image_weight`` times the pixel MSE between
        each trial's image and the (frozen) generator's image of the fMRI latent.

        After training, the root-mean-square error of the fMRI latents against
        :math:`\\mu(x)` on the validation trials, per latent dimension, is stored with
        :meth:`~braincoder.models.deep.fMRIEncoder.set_latent_sd` (left unchanged without
        validation trials); ``VAEGAN.reconstruct(fmri, n_samples=K)`` averages the images
        of latents drawn with this spread.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns.
        images : array-like, shape (n_trials, height, width)
            The image of each trial, in [0, 1].
        epochs : int, default 200
            Maximum epochs.
        batch_size : int, default 32
            Trials per batch.
        learning_rate : float, default 1e-3
            AdamW learning rate.
        adversarial_weight : float, default 0.05
            Weight of the latent adversarial term.
        image_weight : float, default 0.0
            Weight of the pixel error through the frozen generator.
        weight_decay : float, default 1e-3
            AdamW decoupled weight decay of the fMRI encoder.
        validation_split : float, default 0.1
            Fraction of trials held out for ``val_pcc`` (ignored with ``validation_data``).
        validation_data : (DataFrame, array), optional
            Held-out ``(fmri, images)``.
        early_stopping_patience : int or None, default 30
            Epochs without ``val_pcc`` improvement before stopping; best weights restored.
        image_every : int, default 10
            Epochs between TensorBoard image grids.
        progressbar : bool, default True
            tqdm bar over epochs.
        ridge_init_alphas : sequence of float, optional
            Initialise a linear fMRI encoder (``hidden=()``) with the closed-form ridge
            regression of the latent targets on the standardised training voxels, alpha
            chosen per latent dimension by 5-fold cross-validation on the training trials
            among these values (one value: no cross-validation); gradient training then
            starts from this solution. None (default) keeps the random initialisation.

        Returns
        -------
        DataFrame
            Per-epoch ``loss``, ``latent_loss``, ``image_loss`` (0 unless
            ``image_weight`` > 0), ``adversarial_loss``, ``latent_discriminator_loss`` and
            ``val_pcc``.

        Raises
        ------
        ValueError
            For NaN, mismatched lengths, voxels differing from an existing encoder, images
            of the wrong shape or range, or bad settings.
        """
        self._check_common(epochs, batch_size, learning_rate, early_stopping_patience,
                           image_every)
        for key, value in [("adversarial_weight", adversarial_weight),
                           ("image_weight", image_weight), ("weight_decay", weight_decay)]:
            if not value >= 0:
                raise ValueError(f"{key} must be >= 0, got {value!r}")
        if ridge_init_alphas is not None:
            alphas = np.atleast_1d(np.asarray(ridge_init_alphas, dtype=np.float64))
            if alphas.ndim != 1 or alphas.size == 0 or not np.isfinite(alphas).all() \
                    or (alphas < 0).any():
                raise ValueError(
                    f"ridge_init_alphas must be one or more finite values >= 0, got "
                    f"{ridge_init_alphas!r}"
                )
            if self.model.fmri_encoder is not None and self.model.fmri_encoder.hidden:
                raise ValueError("ridge_init_alphas needs a linear fMRI encoder (hidden=())")
        encoder = self.model.fmri_encoder
        frame, train_images, val_x, val_images = self._paired(
            fmri, images, validation_data, validation_split, encoder
        )
        if encoder is None:
            from ..models.deep.vae_gan import fMRIEncoder

            encoder = fMRIEncoder(frame.shape[1], self.model.latent_dim, seed=self.seed)
            self.model.fmri_encoder = encoder
        encoder.set_standardization(frame)
        targets = self.model.encode(train_images)
        if ridge_init_alphas is not None:
            if encoder.hidden:
                raise ValueError("ridge_init_alphas needs a linear fMRI encoder (hidden=())")
            from .ridge import fit_ridge

            values = frame.to_numpy(np.float64)
            scaled = (values - keras.ops.convert_to_numpy(encoder.input_mean)) \
                / keras.ops.convert_to_numpy(encoder.input_scale)
            solution = fit_ridge(scaled, targets, alphas=alphas,
                                 cv=5 if alphas.size > 1 else None)
            encoder.head.kernel.assign(solution.weights.astype(np.float32))
            encoder.head.bias.assign(np.ravel(solution.intercept).astype(np.float32))
        keras.utils.set_random_seed(self.seed)
        stage = FMRIEncoderStage(self.model, adversarial_weight=adversarial_weight,
                                 image_weight=image_weight, seed=self.seed)
        stage.compile_stage(learning_rate, weight_decay)
        x = frame.to_numpy(np.float32)
        dataset = self._dataset((x, targets, train_images), batch_size)
        history = self._run(
            stage, "fmri_encoder", dataset, len(x), epochs,
            self._reconstruct_array, val_x, val_images, early_stopping_patience, image_every,
            progressbar,
        )
        if val_x is not None:
            predicted = keras.ops.convert_to_numpy(encoder(val_x, training=False))
            residual = predicted.astype(np.float64) - self.model.encode(val_images)
            encoder.set_latent_sd(np.sqrt(np.mean(np.square(residual), axis=0)))
        return history

    def _reconstruct_array(self, values):
        latents = keras.ops.convert_to_numpy(self.model.fmri_encoder(values, training=False))
        return self.model.decode(latents)

    # ------------------------------------------------------------------ stage 3

    def fit_generator(self, fmri, images, epochs=100, batch_size=32, learning_rate=2e-4,
                      feature_weight=1.0, pixel_weight=1.0, adversarial_weight=0.05,
                      validation_split=0.1, validation_data=None, early_stopping_patience=20,
                      image_every=10, progressbar=True, latent_noise=0.0):
        """Stage 3: fine-tune the generator on latents predicted from fMRI.

        With :math:`\\hat z = F(y)` from the (frozen) fMRI encoder and
        :math:`\\hat x = G(\\hat z)`, the generator minimises ``pixel_weight`` · pixel MSE
        + ``feature_weight`` · feature loss (discriminator's last convolution) +
        ``adversarial_weight`` · GAN loss; the discriminator (own optimizer) learns real
        images vs :math:`\\hat x`. With ``latent_noise`` = :math:`s` > 0 the generator
        sees :math:`\\hat z + s \\, \\sigma \\odot \\epsilon` instead, with
        :math:`\\sigma` the fMRI encoder's ``latent_sd`` (its held-out latent error, set by
        :meth:`fit_fmri_encoder`) and :math:`\\epsilon \\sim N(0, I)` drawn afresh for every
        batch: the training latents, fitted by the encoder, are more accurate than those
        of new trials, and the noise teaches the generator the mean image over latents
        as uncertain as those of new trials.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns (the fMRI encoder's voxels).
        images : array-like, shape (n_trials, height, width)
            The image of each trial, in [0, 1].
        epochs : int, default 100
            Maximum epochs.
        batch_size : int, default 32
            Trials per batch.
        learning_rate : float, default 2e-4
            Adam learning rate.
        feature_weight, pixel_weight, adversarial_weight : float
            Loss weights.
        validation_split : float, default 0.1
            Fraction of trials held out for ``val_pcc`` (ignored with ``validation_data``).
        validation_data : (DataFrame, array), optional
            Held-out ``(fmri, images)``.
        early_stopping_patience : int or None, default 20
            Epochs without ``val_pcc`` improvement before stopping; best weights restored.
        image_every : int, default 10
            Epochs between TensorBoard image grids.
        progressbar : bool, default True
            tqdm bar over epochs.
        latent_noise : float, default 0.0
            Scale of the Gaussian latent noise in units of the encoder's ``latent_sd``
            (0: none; without a stored ``latent_sd`` the noise is zero).

        Returns
        -------
        DataFrame
            Per-epoch ``loss`` (``pixel_weight`` · pixel MSE: the feature term is measured
            in the discriminator's moving feature space, so it is reported apart),
            ``pixel_loss``, ``feature_loss``,
            ``generator_loss``, ``discriminator_loss`` and ``val_pcc``.

        Raises
        ------
        RuntimeError
            If no fMRI encoder has been trained.
        ValueError
            For NaN, mismatched lengths or voxels, images of the wrong shape or range, or
            bad settings.
        """
        self._check_common(epochs, batch_size, learning_rate, early_stopping_patience,
                           image_every)
        for key, value in [("feature_weight", feature_weight), ("pixel_weight", pixel_weight),
                           ("adversarial_weight", adversarial_weight)]:
            if not value >= 0:
                raise ValueError(f"{key} must be >= 0, got {value!r}")
        if isinstance(latent_noise, bool) or not np.isfinite(latent_noise) or latent_noise < 0:
            raise ValueError(f"latent_noise must be a finite number >= 0, got {latent_noise!r}")
        if self.model.fmri_encoder is None:
            raise RuntimeError("fit_generator needs an fMRI encoder; run fit_fmri_encoder first")
        frame, train_images, val_x, val_images = self._paired(
            fmri, images, validation_data, validation_split, self.model.fmri_encoder
        )
        keras.utils.set_random_seed(self.seed)
        stage = GeneratorStage(self.model, feature_weight=feature_weight,
                               pixel_weight=pixel_weight, adversarial_weight=adversarial_weight,
                               latent_noise=latent_noise, seed=self.seed)
        stage.compile_stage(learning_rate)
        x = frame.to_numpy(np.float32)
        return self._run(
            stage, "generator", self._dataset((x, train_images), batch_size), len(x), epochs,
            self._reconstruct_array, val_x, val_images, early_stopping_patience, image_every,
            progressbar,
        )

    # ------------------------------------------------------------------ blend

    def fit_blend(self, fmri, images, alphas=_BLEND_ALPHAS, weights=_BLEND_WEIGHTS,
                  validation_split=0.1, validation_data=None):
        """Blend the generator's images with a ridge decoder, weight chosen on held-out trials.

        A :class:`~braincoder.models.image_decoders.RidgeImageDecoder` (voxels → pixels,
        alpha per pixel by cross-validation among ``alphas``) is fitted on the training
        part of the trials; for every candidate :math:`w` in ``weights`` the images
        :math:`w \\, G(F(y)) + (1 - w) \\, R(y)` of the validation trials are scored by
        their mean pixel correlation, and the best :math:`w` is kept. The validation part
        is the one :meth:`fit_fmri_encoder` and :meth:`fit_generator` hold out with the
        same ``validation_split`` and seed, so no trial scored here trained the fMRI
        encoder, the generator or the ridge decoder. The ridge decoder is then refitted on
        all trials and attached to the model with the weight
        (``model.linear_decoder``, ``model.blend_weight``), which
        :meth:`~braincoder.models.deep.VAEGAN.reconstruct` applies. The two decoders err
        differently (the generator is biased towards the prior's images, ridge is noisy
        but unbiased), so the blend is usually better than either.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns (the fMRI encoder's voxels).
        images : array-like, shape (n_trials, height, width)
            The image of each trial, in [0, 1].
        alphas : sequence of float, default ``10 ** arange(-1, 10)``
            Candidate ridge alphas.
        weights : sequence of float, default ``0, 0.1, ..., 1``
            Candidate weights of the generator's image, each in [0, 1].
        validation_split : float, default 0.1
            Fraction of trials held out to choose the weight (ignored with
            ``validation_data``); must be > 0.
        validation_data : (DataFrame, array), optional
            Held-out ``(fmri, images)`` instead; the ridge decoder is then fitted on all of
            ``fmri``.

        Returns
        -------
        DataFrame
            ``val_pcc`` per candidate weight (index ``weight``); also stored as
            ``history["blend"]``.

        Raises
        ------
        RuntimeError
            If no fMRI encoder has been trained.
        ValueError
            For weights outside [0, 1], no validation trials, NaN, mismatched lengths or
            voxels, or images of the wrong shape or range.
        """
        from ..models.image_decoders import RidgeImageDecoder

        if self.model.fmri_encoder is None:
            raise RuntimeError("fit_blend needs an fMRI encoder; run fit_fmri_encoder first")
        grid = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if grid.ndim != 1 or grid.size == 0 or not ((grid >= 0) & (grid <= 1)).all():
            raise ValueError(f"weights must be one or more values in [0, 1], got {weights!r}")
        if validation_data is None and not validation_split > 0:
            raise ValueError("fit_blend needs validation trials: validation_split > 0")
        frame, train_images, val_x, val_images = self._paired(
            fmri, images, validation_data, validation_split, self.model.fmri_encoder
        )
        shape = val_images.shape[:3]
        ridge = RidgeImageDecoder(alphas=alphas).fit(frame, train_images.reshape(
            (len(train_images),) + shape[1:]))
        linear = ridge.reconstruct(pd.DataFrame(val_x, columns=frame.columns))[0]
        generated = self._reconstruct_array(val_x).reshape(shape)
        truth = val_images.reshape(len(val_images), -1)
        scores = [float(np.nanmean(pearson_per_sample(
            truth, (w * generated + (1 - w) * linear).reshape(len(truth), -1)
        ))) for w in grid]
        history = pd.DataFrame({"val_pcc": scores}, index=pd.Index(grid, name="weight"))
        self.history["blend"] = history
        if validation_data is None:
            everything = np.asarray(images, dtype=np.float64)
            ridge = RidgeImageDecoder(alphas=alphas).fit(
                format_data(fmri, "fmri"), everything.reshape((len(everything),) + shape[1:]))
        self.model.linear_decoder = ridge
        self.model.blend_weight = float(grid[int(np.argmax(scores))])
        logger.info("VAEGANTrainer.fit_blend: weight %.2f of the generator (val PCC %.3f)",
                    self.model.blend_weight, max(scores))
        return history
