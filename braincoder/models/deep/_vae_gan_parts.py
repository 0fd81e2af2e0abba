"""Building blocks of the VAE-GAN: the convolutional sub-models, the fMRI encoder, checks.

:func:`build_image_encoder`, :func:`build_generator` and :func:`build_discriminator` return
functional Keras models (saved as ``.keras`` files and reloaded with ``safe_mode=True``);
:class:`fMRIEncoder` maps voxel patterns to the latent space. They are assembled by
:class:`braincoder.models.deep.VAEGAN`.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
from keras import layers, ops

from ...utils.formatting import format_data
from ..registry import register_model
from ._embedding_ridge import _check_voxels, _labels_from_json, _labels_to_json
from .base import CheckedInputMixin

__all__ = [
    "fMRIEncoder",
    "build_image_encoder",
    "build_generator",
    "build_discriminator",
    "check_images",
    "check_fmri",
    "augment_images",
]


def _init(seed, offset):
    return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)


def build_image_encoder(latent_dim, image_shape, filters, seed=None):
    """Visual encoder: strided convolutions → latent mean and log-variance.

    Parameters
    ----------
    latent_dim : int
        Latent dimension.
    image_shape : tuple of int
        ``(height, width, channels)``.
    filters : sequence of int
        Channels of the strided (stride 2) convolutions.
    seed : int, optional
        Seed of the initialisers.

    Returns
    -------
    keras.Model
        Inputs images; outputs ``[mean, log_variance]``, each (batch, latent_dim).
    """
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=_init(seed, i),
                          name=f"conv_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"act_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    mean = layers.Dense(latent_dim, kernel_initializer=_init(seed, 10), name="mean")(x)
    log_var = layers.Dense(latent_dim, kernel_initializer="zeros", name="log_variance")(x)
    return keras.Model(inputs, [mean, log_var], name="image_encoder")


def build_generator(latent_dim, image_shape, filters, seed=None):
    """Build the generator (decoder): dense → transposed convolutions → sigmoid image.

    Parameters
    ----------
    latent_dim : int
        Latent dimension.
    image_shape : tuple of int
        ``(height, width, channels)``; height and width divisible by ``2 ** len(filters)``.
    filters : sequence of int
        Channels of the encoder convolutions (used in reverse order).
    seed : int, optional
        Seed of the initialisers.

    Returns
    -------
    keras.Model
        Inputs latents (batch, latent_dim); output images in [0, 1].
    """
    factor = 2 ** len(filters)
    height, width, channels = image_shape
    inputs = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(
        (height // factor) * (width // factor) * filters[-1],
        activation="relu",
        kernel_initializer=_init(seed, 20),
        name="project",
    )(inputs)
    x = layers.Reshape((height // factor, width // factor, filters[-1]), name="reshape")(x)
    for i, width_i in enumerate(list(filters[:-1])[::-1]):
        x = layers.Conv2DTranspose(width_i, 4, strides=2, padding="same", activation="relu",
                                   kernel_initializer=_init(seed, 21 + i), name=f"deconv_{i}")(x)
    outputs = layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                     activation="sigmoid", kernel_initializer=_init(seed, 30),
                                     name="image")(x)
    return keras.Model(inputs, outputs, name="generator")


def build_discriminator(image_shape, filters, seed=None):
    """Discriminator: convolutions (features of the last one are the similarity space) → logit.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width, channels)``.
    filters : sequence of int
        Channels of the strided convolutions.
    seed : int, optional
        Seed of the initialisers.

    Returns
    -------
    keras.Model
        Inputs images; outputs ``[features, logit]`` with features the flattened output of
        the last convolution (the layer in which reconstructions are compared).
    """
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, 4, strides=2, padding="same",
                          kernel_initializer=_init(seed, 40 + i), name=f"conv_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"act_{i}")(x)
    features = layers.Flatten(name="features")(x)
    logit = layers.Dense(1, kernel_initializer=_init(seed, 50), name="logit")(features)
    return keras.Model(inputs, [features, logit], name="discriminator")


def check_images(images, image_shape, what="images"):
    """Return images as float32 (n, height, width, channels), checking shape, range, NaN.

    Parameters
    ----------
    images : array-like, shape (n, height, width) or (n, height, width, channels)
        Images in [0, 1].
    image_shape : tuple of int
        Expected ``(height, width, channels)``.
    what : str, default "images"
        Name for messages.

    Returns
    -------
    ndarray, shape (n, height, width, channels)
        float32 images.

    Raises
    ------
    ValueError
        For a wrong shape, non-finite values or values outside [0, 1].
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3 and image_shape[2] == 1:
        array = array[..., None]
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{what} must have shape (n, {image_shape[0]}, {image_shape[1]}) or "
            f"(n, {', '.join(str(s) for s in image_shape)}), got {np.shape(images)}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{what} hold {int(bad.sum())} non-finite values")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"{what} must lie in [0, 1], found values in [{array.min():.3g}, {array.max():.3g}]"
        )
    return array


def augment_images(images, copies=1, max_shift=2, max_rotation=10.0, seed=0):
    """Randomly shifted and rotated copies of images (training-set augmentation).

    Each copy of each image is rotated by an angle drawn uniformly in
    ``[-max_rotation, max_rotation]`` degrees about the image centre (bilinear
    interpolation, zero outside) and then shifted by integers drawn uniformly in
    ``[-max_shift, max_shift]`` pixels along each axis (zero fill). Values are clipped to
    [0, 1].

    Parameters
    ----------
    images : array-like, shape (n, height, width) or (n, height, width, channels)
        Images in [0, 1].
    copies : int, default 1
        Augmented copies per image (the originals are not included).
    max_shift : int, default 2
        Largest shift in pixels (0 for none).
    max_rotation : float, default 10.0
        Largest rotation in degrees (0 for none).
    seed : int, default 0
        Seed of the random shifts and angles.

    Returns
    -------
    ndarray, shape (copies · n, ...)
        float32 augmented images, same trailing shape as ``images``; copy ``k`` of image
        ``i`` is row ``k · n + i``.

    Raises
    ------
    ValueError
        For images that are not 3- or 4-dimensional, non-finite or outside [0, 1], or for
        negative or non-integer settings.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep._vae_gan_parts import augment_images
    >>> augment_images(np.zeros((3, 28, 28)), copies=2).shape
    (6, 28, 28)
    """
    from scipy import ndimage

    array = np.asarray(images, dtype=np.float32)
    if array.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, height, width[, channels]), got "
                         f"{array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("images hold non-finite values")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError("images must lie in [0, 1]")
    for what, value in [("copies", copies), ("max_shift", max_shift)]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
    if not 0.0 <= max_rotation <= 180.0:
        raise ValueError(f"max_rotation must be in [0, 180] degrees, got {max_rotation!r}")
    rng = np.random.default_rng(seed)
    n = len(array)
    angles = rng.uniform(-max_rotation, max_rotation, size=copies * n)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(copies * n, 2))
    out = np.empty((copies * n,) + array.shape[1:], dtype=np.float32)
    for row in range(copies * n):
        image = array[row % n]
        if max_rotation > 0:
            image = ndimage.rotate(image, angles[row], axes=(0, 1), reshape=False, order=1,
                                   mode="constant", cval=0.0)
        shifted = np.zeros_like(image)
        dy, dx = (int(v) for v in shifts[row])
        h, w = image.shape[:2]
        shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        out[row] = shifted
    return np.clip(out, 0.0, 1.0)


def check_fmri(fmri, encoder, what="fmri"):
    """Return a finite trial × voxel frame whose voxels are the encoder's.

    Parameters
    ----------
    fmri : DataFrame or array-like, shape (n_trials, n_voxels)
        Voxel patterns.
    encoder : fMRIEncoder
        Encoder whose voxel count and (once fitted) names the data must match.
    what : str, default "fmri"
        Name for messages.

    Returns
    -------
    DataFrame
        The data with columns in the encoder's voxel order.

    Raises
    ------
    ValueError
        For NaN, or voxels differing in number or names.
    """
    frame = format_data(fmri, what)
    return _check_voxels(frame, encoder.n_voxels, encoder.voxel_names, "fMRI encoder")


@register_model("fmri_encoder")
@keras.saving.register_keras_serializable(package="braincoder")
class fMRIEncoder(CheckedInputMixin, keras.Model):  # noqa: N801 - braincoder's public name
    """Maps voxel patterns (V1–V3) to the VAE-GAN latent space.

    Voxels are standardised with means and scales learnt at fit time (stored in the
    model), then pass through ``hidden`` dense layers (ReLU, dropout before each layer)
    and a linear head of ``latent_dim`` units.

    Parameters
    ----------
    n_voxels : int
        Number of input voxels.
    latent_dim : int
        Latent dimension of the VAE-GAN.
    hidden : sequence of int, default (256,)
        Widths of the hidden layers (empty for a linear map).
    dropout : float, default 0.3
        Dropout rate during training.
    seed : int, optional
        Seed of the initialisers and dropout.
    voxel_names : dict, optional
        Voxel labels learnt at fit time, as stored in a saved configuration.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.

    Attributes
    ----------
    voxel_names : Index or None
        Voxels of the training data (None before fitting).
    latent_sd : keras.Variable, shape (latent_dim,)
        Non-trainable residual standard deviation of the predicted latents per dimension
        (zeros until set with :meth:`set_latent_sd`, normally by
        :meth:`braincoder.optimize.VAEGANTrainer.fit_fmri_encoder` on its validation
        trials); saved with the weights. :meth:`braincoder.models.deep.VAEGAN.reconstruct`
        draws latents with this spread when ``n_samples`` > 1.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep import fMRIEncoder
    >>> encoder = fMRIEncoder(50, 8, hidden=(16,), seed=0)
    >>> tuple(encoder(np.zeros((2, 50), dtype="float32")).shape)
    (2, 8)
    """

    def __init__(self, n_voxels, latent_dim, hidden=(256,), dropout=0.3, seed=None,
                 voxel_names=None, name=None, trainable=True):
        for what, value in [("n_voxels", n_voxels), ("latent_dim", latent_dim)]:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        hidden = tuple(int(width) for width in hidden)
        if any(width < 1 for width in hidden):
            raise ValueError(f"hidden widths must be positive integers, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        super().__init__(name=name, trainable=trainable)
        self.n_voxels = int(n_voxels)
        self.latent_dim = int(latent_dim)
        self.hidden = hidden
        self.dropout = float(dropout)
        self.seed = seed
        self.voxel_names = _labels_from_json(voxel_names)
        self.dense_layers = [
            layers.Dense(width, activation="relu", kernel_initializer=_init(seed, 60 + i),
                         name=f"hidden_{i}")
            for i, width in enumerate(hidden)
        ]
        self.head = layers.Dense(self.latent_dim, kernel_initializer=_init(seed, 70), name="head")
        self.dropout_layers = [
            layers.Dropout(self.dropout, seed=None if seed is None else seed + 80 + i,
                           name=f"dropout_{i}")
            for i in range(len(hidden) + 1)
        ]
        self.build((None, self.n_voxels))

    def _sample_spec(self):
        return (self.n_voxels,), "fmri", ("voxels",)

    def build(self, input_shape):
        """Create the standardisation weights and the dense layers.

        Parameters
        ----------
        input_shape : tuple
            ``(batch, n_voxels)``.
        """
        if self.built:
            return
        self.input_mean = self.add_weight(shape=(self.n_voxels,), initializer="zeros",
                                          trainable=False, name="input_mean")
        self.input_scale = self.add_weight(shape=(self.n_voxels,), initializer="ones",
                                           trainable=False, name="input_scale")
        self.latent_sd = self.add_weight(shape=(self.latent_dim,), initializer="zeros",
                                         trainable=False, name="latent_sd")
        width = self.n_voxels
        for layer in self.dense_layers:
            layer.build((None, width))
            width = layer.units
        self.head.build((None, width))
        self.built = True

    def call(self, inputs, training=False):
        """Map voxel patterns to latent vectors.

        Parameters
        ----------
        inputs : tensor, shape (batch, n_voxels)
            Raw voxel patterns (standardised inside).
        training : bool, default False
            Apply dropout.

        Returns
        -------
        tensor, shape (batch, latent_dim)
            Latent vectors.
        """
        values = (ops.cast(inputs, "float32") - self.input_mean) / self.input_scale
        for layer, drop in zip(self.dense_layers, self.dropout_layers, strict=False):
            values = layer(drop(values, training=training))
        return self.head(self.dropout_layers[-1](values, training=training))

    def set_standardization(self, fmri):
        """Learn voxel means and scales from training data and store the voxel names.

        Parameters
        ----------
        fmri : DataFrame, shape (n_trials, n_voxels)
            Training voxel patterns.
        """
        values = fmri.to_numpy(dtype=np.float64)
        scale = values.std(axis=0)
        self.input_mean.assign(values.mean(axis=0).astype(np.float32))
        self.input_scale.assign(np.where(scale > 0, scale, 1.0).astype(np.float32))
        self.voxel_names = pd.Index(fmri.columns)

    def set_latent_sd(self, latent_sd):
        """Store the residual standard deviation of the predicted latents.

        Parameters
        ----------
        latent_sd : float or array-like, shape (latent_dim,)
            Standard deviation per latent dimension (a scalar applies to all), >= 0.

        Raises
        ------
        ValueError
            For a wrong shape, non-finite or negative values.

        Examples
        --------
        >>> from braincoder.models.deep import fMRIEncoder
        >>> encoder = fMRIEncoder(10, 3, hidden=(), seed=0)
        >>> encoder.set_latent_sd([0.1, 0.2, 0.3])
        >>> [round(float(v), 2) for v in encoder.latent_sd.numpy()]
        [0.1, 0.2, 0.3]
        """
        values = np.asarray(latent_sd, dtype=np.float64)
        if values.ndim == 0:
            values = np.full(self.latent_dim, float(values))
        if values.shape != (self.latent_dim,):
            raise ValueError(
                f"latent_sd must be a scalar or have shape ({self.latent_dim},), got "
                f"{values.shape}"
            )
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("latent_sd must hold finite values >= 0")
        self.latent_sd.assign(values.astype(np.float32))

    def get_config(self):
        """Return the constructor arguments and the fitted voxel names (JSON-able).

        Returns
        -------
        dict
            Configuration for :meth:`from_config`.
        """
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_voxels": self.n_voxels,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "seed": self.seed,
            "voxel_names": None if self.voxel_names is None else _labels_to_json(self.voxel_names),
        }

    @classmethod
    def from_config(cls, config):
        """Build an encoder from :meth:`get_config` output.

        Parameters
        ----------
        config : dict
            Configuration.

        Returns
        -------
        fMRIEncoder
            A new encoder (weights are restored by the loader).
        """
        return cls(**config)
