"""Keras training models of the three VAE-GAN stages (custom ``train_step``, own optimizers).

Private to :mod:`braincoder.optimize.vaegan`; never saved (the trained parts belong to the
:class:`~braincoder.models.deep.VAEGAN`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

__all__ = ["VAEGANStage", "FMRIEncoderStage", "GeneratorStage"]


def _gan_loss(logits, real):
    """Binary cross-entropy of discriminator logits against all-real or all-fake labels."""
    return ops.mean(ops.softplus(-logits) if real else ops.softplus(logits))


def _first(data):
    return data[0] if isinstance(data, (tuple, list)) else data


class _Stage(keras.Model):
    """Base: loss trackers exposed as metrics, optimizers built before training."""

    tracked = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}

    @property
    def metrics(self):
        """list: The loss trackers (reset at every epoch)."""
        return list(self.trackers.values())

    def _record(self, values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _finish_compile(self, pairs):
        for optimizer, variables in pairs:
            optimizer.build(variables)
        # fit() requires a compiled model; the stage's own optimizers do the updates.
        self.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)

    def call(self, inputs, training=False):
        """Unused (training happens in ``train_step``); returns the inputs."""
        return inputs


class VAEGANStage(_Stage):
    """Stage 1: encoder, generator and discriminator on images."""

    tracked = ("loss", "kl_loss", "feature_loss", "pixel_loss", "generator_loss",
               "discriminator_loss")

    def __init__(self, model, kl_weight, feature_weight, pixel_weight, adversarial_weight,
                 seed):
        super().__init__()
        self.encoder = model.image_encoder
        self.generator = model.generator
        self.discriminator = model.discriminator
        self.kl_weight = float(kl_weight)
        self.feature_weight = float(feature_weight)
        self.pixel_weight = float(pixel_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.n_pixels = float(tf.reduce_prod(model.image_shape))
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compile_stage(self, learning_rate):
        """Create one Adam optimizer per part (the discriminator at half the rate)."""
        self.encoder_optimizer = keras.optimizers.Adam(learning_rate)
        self.generator_optimizer = keras.optimizers.Adam(learning_rate)
        self.discriminator_optimizer = keras.optimizers.Adam(0.5 * learning_rate)
        self._finish_compile([
            (self.encoder_optimizer, self.encoder.trainable_variables),
            (self.generator_optimizer, self.generator.trainable_variables),
            (self.discriminator_optimizer, self.discriminator.trainable_variables),
        ])

    def train_step(self, data):
        """One update of encoder, generator and discriminator on a batch of images."""
        x = _first(data)
        with tf.GradientTape(persistent=True) as tape:
            mean, log_var = self.encoder(x, training=True)
            log_var = ops.clip(log_var, -10.0, 10.0)
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            x_tilde = self.generator(mean + ops.exp(0.5 * log_var) * eps, training=True)
            z_prior = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            x_prior = self.generator(z_prior, training=True)
            f_real, l_real = self.discriminator(x, training=True)
            f_tilde, l_tilde = self.discriminator(x_tilde, training=True)
            _, l_prior = self.discriminator(x_prior, training=True)
            kl = ops.mean(
                ops.sum(-0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var)), axis=1)
            ) / self.n_pixels
            feature = ops.mean(ops.square(ops.stop_gradient(f_real) - f_tilde))
            pixel = ops.mean(ops.square(x - x_tilde))
            reconstruction = feature + self.pixel_weight * pixel
            encoder_loss = self.kl_weight * kl + reconstruction
            generator_loss = self.feature_weight * reconstruction + self.adversarial_weight * (
                _gan_loss(l_tilde, True) + _gan_loss(l_prior, True)
            )
            discriminator_loss = _gan_loss(l_real, True) + 0.5 * (
                _gan_loss(l_tilde, False) + _gan_loss(l_prior, False)
            )
        for loss, part, optimizer in [
            (encoder_loss, self.encoder, self.encoder_optimizer),
            (generator_loss, self.generator, self.generator_optimizer),
            (discriminator_loss, self.discriminator, self.discriminator_optimizer),
        ]:
            grads = tape.gradient(loss, part.trainable_variables)
            optimizer.apply_gradients(zip(grads, part.trainable_variables, strict=True))
        del tape
        return self._record({
            "loss": encoder_loss, "kl_loss": kl, "feature_loss": feature, "pixel_loss": pixel,
            "generator_loss": generator_loss, "discriminator_loss": discriminator_loss,
        })


class FMRIEncoderStage(_Stage):
    """Stage 2: fMRI encoder distils the visual encoder's latents (plus latent GAN).

    With ``image_weight > 0`` the pixel error of the (frozen) generator's image of the fMRI
    latent is added, so that latent errors are weighted by their effect on the image.
    """

    tracked = ("loss", "latent_loss", "image_loss", "adversarial_loss",
               "latent_discriminator_loss")

    def __init__(self, model, adversarial_weight, image_weight, seed):
        super().__init__()
        self.fmri_encoder = model.fmri_encoder
        self.generator = model.generator
        self.adversarial_weight = float(adversarial_weight)
        self.image_weight = float(image_weight)
        init = keras.initializers.GlorotUniform
        self.latent_discriminator = keras.Sequential(
            [
                keras.Input(shape=(model.latent_dim,)),
                keras.layers.Dense(64, activation="relu", kernel_initializer=init(seed=seed)),
                keras.layers.Dense(1, kernel_initializer=init(seed=seed + 1)),
            ],
            name="latent_discriminator",
        )

    def compile_stage(self, learning_rate, weight_decay):
        """AdamW for the fMRI encoder (decay on kernels), Adam for the latent discriminator."""
        self.encoder_optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
        self.encoder_optimizer.exclude_from_weight_decay(var_names=["bias"])
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate)
        self._finish_compile([
            (self.encoder_optimizer, self.fmri_encoder.trainable_variables),
            (self.discriminator_optimizer, self.latent_discriminator.trainable_variables),
        ])

    def train_step(self, data):
        """One update of the fMRI encoder and the latent discriminator."""
        fmri, target, x = data
        with tf.GradientTape(persistent=True) as tape:
            latent = self.fmri_encoder(fmri, training=True)
            latent_loss = ops.mean(ops.square(latent - target))
            if self.image_weight > 0:
                image_loss = ops.mean(ops.square(self.generator(latent, training=False) - x))
            else:
                image_loss = ops.zeros(())
            d_real = self.latent_discriminator(target, training=True)
            d_fake = self.latent_discriminator(latent, training=True)
            adversarial = _gan_loss(d_fake, True)
            loss = (latent_loss + self.image_weight * image_loss
                    + self.adversarial_weight * adversarial)
            d_loss = _gan_loss(d_real, True) + _gan_loss(d_fake, False)
        for value, part, optimizer in [
            (loss, self.fmri_encoder, self.encoder_optimizer),
            (d_loss, self.latent_discriminator, self.discriminator_optimizer),
        ]:
            grads = tape.gradient(value, part.trainable_variables)
            optimizer.apply_gradients(zip(grads, part.trainable_variables, strict=True))
        del tape
        return self._record({
            "loss": loss, "latent_loss": latent_loss, "image_loss": image_loss,
            "adversarial_loss": adversarial,
            "latent_discriminator_loss": d_loss,
        })


class GeneratorStage(_Stage):
    """Stage 3: generator fine-tuned on fMRI latents; the discriminator keeps learning.

    With ``latent_noise > 0`` Gaussian noise of ``latent_noise`` times the fMRI encoder's
    stored ``latent_sd`` is added to the latents of each batch.
    """

    tracked = ("loss", "pixel_loss", "feature_loss", "generator_loss", "discriminator_loss")

    def __init__(self, model, feature_weight, pixel_weight, adversarial_weight,
                 latent_noise=0.0, seed=None):
        super().__init__()
        self.fmri_encoder = model.fmri_encoder
        self.generator = model.generator
        self.discriminator = model.discriminator
        self.feature_weight = float(feature_weight)
        self.pixel_weight = float(pixel_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.latent_noise = float(latent_noise)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compile_stage(self, learning_rate):
        """One Adam optimizer for the generator, one for the discriminator."""
        self.generator_optimizer = keras.optimizers.Adam(learning_rate)
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate)
        self._finish_compile([
            (self.generator_optimizer, self.generator.trainable_variables),
            (self.discriminator_optimizer, self.discriminator.trainable_variables),
        ])

    def train_step(self, data):
        """One update of the generator and discriminator on fMRI-derived latents."""
        fmri, x = data
        latent = ops.stop_gradient(self.fmri_encoder(fmri, training=False))
        if self.latent_noise > 0:
            # Latent errors as on held-out trials: the generator learns the mean image
            # over the latents compatible with the prediction.
            eps = keras.random.normal(ops.shape(latent), seed=self.seed_generator)
            latent = latent + self.latent_noise * self.fmri_encoder.latent_sd * eps
        with tf.GradientTape(persistent=True) as tape:
            x_hat = self.generator(latent, training=True)
            f_real, l_real = self.discriminator(x, training=True)
            f_hat, l_hat = self.discriminator(x_hat, training=True)
            pixel = ops.mean(ops.square(x - x_hat))
            feature = ops.mean(ops.square(ops.stop_gradient(f_real) - f_hat))
            loss = self.pixel_weight * pixel
            g_loss = (loss + self.feature_weight * feature
                      + self.adversarial_weight * _gan_loss(l_hat, True))
            d_loss = _gan_loss(l_real, True) + _gan_loss(l_hat, False)
        for value, part, optimizer in [
            (g_loss, self.generator, self.generator_optimizer),
            (d_loss, self.discriminator, self.discriminator_optimizer),
        ]:
            grads = tape.gradient(value, part.trainable_variables)
            optimizer.apply_gradients(zip(grads, part.trainable_variables, strict=True))
        del tape
        return self._record({
            "loss": loss, "pixel_loss": pixel, "feature_loss": feature,
            "generator_loss": g_loss, "discriminator_loss": d_loss,
        })
