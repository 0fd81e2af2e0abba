"""fMRI autoencoder: BOLD volume → latent → BOLD volume (Keras 3).

Its encoder gives the latent target of :class:`~braincoder.models.deep.EEG_to_fMRI`. The
encoder depth follows a neural-architecture specification ``na_spec`` shared with the EEG
encoder; :func:`check_na_spec` validates it and the shapes it produces.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ...layers import LocallyConnected3D, ResBlock3D
from ..registry import register_model
from .base import DeepEncodingModel

__all__ = ["fMRI_AE", "check_na_spec", "build_encoder_layers", "run_encoder"]

DEFAULT_NA_SPEC = ([(3, 3, 3), (3, 3, 3)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (2, 2, 2))
DROPOUT_RATE = 0.5


def _positive_triple(value, what):
    try:
        triple = tuple(value)
    except TypeError:
        raise ValueError(f"{what} must be a tuple of 3 positive integers, got {value!r}") from None
    if len(triple) != 3:
        raise ValueError(f"{what} must have length 3, got {value!r} (length {len(triple)})")
    if any(isinstance(v, bool) or int(v) != v or v < 1 for v in triple):
        raise ValueError(f"{what} must hold positive integers, got {value!r}")
    return tuple(int(v) for v in triple)


def check_na_spec(na_spec, input_shape, local=True, what="input_shape"):
    """Validate a neural-architecture specification against an input shape.

    Parameters
    ----------
    na_spec : tuple
        ``(kernel_sizes, strides, maxpool, pool_kernel, pool_stride)``: one kernel size and
        one stride (3-tuples) per encoder layer, whether max pooling is applied between
        layers, and the pooling kernel and stride (3-tuples).
    input_shape : tuple of 3 int
        Spatial shape entering the encoder.
    local : bool, default True
        Convolutions with ``same`` padding (True) or locally connected layers with ``valid``
        padding (False).
    what : str, default "input_shape"
        Name of the input shape in error messages.

    Returns
    -------
    spec : tuple
        The normalised specification (tuples of int, bool).
    shapes : list of tuple
        Spatial shape after each layer (and its pooling).

    Raises
    ------
    ValueError
        If the specification is malformed (not 5 entries, different numbers of kernels and
        strides, entries not of length 3, non-positive sizes) or a layer or pooling does not
        fit the shape reaching it.
    """
    if not isinstance(na_spec, (tuple, list)) or len(na_spec) != 5:
        raise ValueError(
            "na_spec must be (kernel_sizes, strides, maxpool, pool_kernel, pool_stride), "
            f"got {na_spec!r}"
        )
    kernels, strides, maxpool, pool_kernel, pool_stride = na_spec
    if len(kernels) == 0 or len(kernels) != len(strides):
        raise ValueError(
            f"na_spec needs one stride per kernel size and at least one layer, got "
            f"{len(kernels)} kernel sizes and {len(strides)} strides"
        )
    kernels = tuple(_positive_triple(k, f"na_spec kernel size {i}") for i, k in enumerate(kernels))
    strides = tuple(_positive_triple(s, f"na_spec stride {i}") for i, s in enumerate(strides))
    if not isinstance(maxpool, (bool, np.bool_)):
        raise ValueError(f"na_spec maxpool must be a bool, got {maxpool!r}")
    pool_kernel = _positive_triple(pool_kernel, "na_spec pool kernel")
    pool_stride = _positive_triple(pool_stride, "na_spec pool stride")
    shape = _positive_triple(input_shape, what)
    shapes = []
    for i, (kernel, stride) in enumerate(zip(kernels, strides, strict=True)):
        if local:
            shape = tuple(math.ceil(n / s) for n, s in zip(shape, stride, strict=True))
        else:
            if any(n < k for n, k in zip(shape, kernel, strict=True)):
                raise ValueError(
                    f"{what} {tuple(input_shape)}: layer {i} kernel {kernel} does not fit the "
                    f"shape {shape} reaching it"
                )
            shape = tuple((n - k) // s + 1 for n, k, s in zip(shape, kernel, stride, strict=True))
        if maxpool and i < len(kernels) - 1:
            if any(n < k for n, k in zip(shape, pool_kernel, strict=True)):
                raise ValueError(
                    f"{what} {tuple(input_shape)} is incompatible with pooling: after layer {i} "
                    f"the shape is {shape}, smaller than the pool kernel {pool_kernel}"
                )
            shape = tuple(
                (n - k) // s + 1 for n, k, s in zip(shape, pool_kernel, pool_stride, strict=True)
            )
        shapes.append(shape)
    return (kernels, strides, bool(maxpool), pool_kernel, pool_stride), shapes


def build_encoder_layers(
    spec, n_channels, local, batch_norm, skip_connections, dropout, weight_decay, seed, prefix
):
    """Create the layers of an encoder stack described by a checked ``na_spec``.

    Parameters
    ----------
    spec : tuple
        Output of :func:`check_na_spec`.
    n_channels : int
        Filters per layer.
    local : bool
        Convolutions (True) or locally connected layers (False).
    batch_norm, skip_connections, dropout : bool
        Block options (residual blocks when ``skip_connections`` and ``local``).
    weight_decay : float
        L2 penalty of the kernels.
    seed : int or None
        Base seed of the initialisers.
    prefix : str
        Layer name prefix.

    Returns
    -------
    list of list of keras.layers.Layer
        One list of layers per encoder stage (applied in order, ``training`` passed to
        batch normalisation, dropout and residual blocks).
    """
    kernels, strides, maxpool, pool_kernel, pool_stride = spec
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    stages = []
    for i, (kernel, stride) in enumerate(zip(kernels, strides, strict=True)):
        layer_seed = None if seed is None else seed + 10 * i
        stage = []
        if skip_connections and local:
            stage.append(
                ResBlock3D(
                    n_channels, kernel, stride, batch_norm=batch_norm, skip_connections=True,
                    weight_decay=weight_decay, seed=layer_seed, name=f"{prefix}_block_{i}",
                )
            )
        else:
            if local:
                stage.append(
                    keras.layers.Conv3D(
                        n_channels, kernel, strides=stride, padding="same",
                        kernel_initializer=keras.initializers.HeNormal(seed=layer_seed),
                        kernel_regularizer=regularizer, name=f"{prefix}_conv_{i}",
                    )
                )
            else:
                stage.append(
                    LocallyConnected3D(
                        n_channels, kernel, stride, weight_decay=weight_decay, seed=layer_seed,
                        name=f"{prefix}_local_{i}",
                    )
                )
            if batch_norm:
                stage.append(keras.layers.BatchNormalization(name=f"{prefix}_bn_{i}"))
            stage.append(keras.layers.Activation("relu", name=f"{prefix}_relu_{i}"))
        if dropout:
            stage.append(
                keras.layers.Dropout(DROPOUT_RATE, seed=layer_seed, name=f"{prefix}_dropout_{i}")
            )
        if maxpool and i < len(kernels) - 1:
            stage.append(
                keras.layers.MaxPooling3D(pool_kernel, pool_stride, name=f"{prefix}_pool_{i}")
            )
        stages.append(stage)
    return stages


_TRAINING_LAYERS = (keras.layers.BatchNormalization, keras.layers.Dropout, ResBlock3D)


def run_encoder(stages, values, training):
    """Apply encoder stages from :func:`build_encoder_layers`.

    Parameters
    ----------
    stages : list of list of keras.layers.Layer
        Encoder layers.
    values : tensor, shape (batch, x, y, z, channels)
        Input.
    training : bool
        Training mode.

    Returns
    -------
    tensor
        Encoder output.
    """
    for stage in stages:
        for layer in stage:
            if isinstance(layer, _TRAINING_LAYERS):
                values = layer(values, training=training)
            else:
                values = layer(values)
    return values


def _tuple(value):
    return tuple(int(v) for v in value)


@register_model("fmri_ae")
@keras.saving.register_keras_serializable(package="braincoder")
class fMRI_AE(DeepEncodingModel, keras.Model):  # noqa: N801 - public name of the reference
    """fMRI autoencoder: an encoder stack to a latent volume and a dense decoder back.

    Parameters
    ----------
    latent_shape : tuple of int
        Shape of the latent representation (shared with the EEG encoder).
    input_shape : tuple of 3 int
        fMRI volume shape (x, y, z).
    kernel_size, stride_size : tuple
        Deprecated, no effect (the architecture follows ``na_spec``).
    n_channels : int
        Filters per encoder layer.
    max_pool : bool, default True
        Apply max pooling between encoder layers. The reference documentation describes
        this argument as a weight decay; here it is what its name says: pooling (with the
        ``na_spec`` pool kernel and stride) happens between layers only when both
        ``max_pool`` and the ``maxpool`` entry of ``na_spec`` are True, so ``max_pool=False``
        switches pooling off whatever the specification says.
    batch_norm : bool, default True
        Batch normalisation after each encoder layer.
    weight_decay : float, default 0.0
        L2 penalty of kernels.
    skip_connections : bool, default False
        Residual blocks (conv-BN-relu-conv-BN + skip) instead of single convolutions.
    dropout : bool, default False
        Dropout (p = 0.5) after each encoder layer.
    n_stacks : int, default 2
        Deprecated, no effect.
    local : bool, default True
        Convolutional layers (``same`` padding) if True, locally connected layers
        (:class:`braincoder.layers.LocallyConnected3D`, ``valid`` padding) if False. The
        name suggests the opposite; this follows the reference documentation literally.
    local_attention : bool, default False
        Deprecated, no effect.
    outfilter : {0, 1, 2}, default 0
        Output filter: 0, a 1×1×1 Conv3D; 1, a 3×3×3 Conv3D; 2, none.
    seed : int, optional
        Seed of the initialisers and dropout.
    _build_decoder : bool, default True
        Build the decoder (False gives an encoder only; ``"volume"`` is then absent).
    na_spec : tuple, optional
        ``(kernel_sizes, strides, maxpool, pool_kernel, pool_stride)``, see
        :func:`check_na_spec`; default two 3×3×3 layers, stride 1, max pooling 2×2×2.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.

    Raises
    ------
    ValueError
        For a malformed ``na_spec``, a volume shape incompatible with it, or a bad
        ``outfilter``, before any layer is built.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep import fMRI_AE
    >>> ae = fMRI_AE((2, 2, 2), (8, 8, 8), None, None, 4, seed=0)
    >>> ae.predict(np.zeros((3, 8, 8, 8, 1))).shape
    (3, 512)
    """

    paradigm_name = "volumes"
    paradigm_axes = ("x voxels", "y voxels", "z voxels", "channels")

    def __init__(
        self,
        latent_shape,
        input_shape,
        kernel_size=None,
        stride_size=None,
        n_channels=4,
        max_pool=True,
        batch_norm=True,
        weight_decay=0.000,
        skip_connections=False,
        dropout=False,
        n_stacks=2,
        local=True,
        local_attention=False,
        outfilter=0,
        seed=None,
        _build_decoder=True,
        na_spec=None,
        name=None,
        trainable=True,
    ):
        # Deprecated arguments, kept as attributes for reference but without effect.
        deprecated = dict(
            kernel_size=kernel_size, stride_size=stride_size, n_stacks=n_stacks,
            local_attention=local_attention,
        )
        if na_spec is None:
            na_spec = DEFAULT_NA_SPEC
        if (
            isinstance(na_spec, (tuple, list))
            and len(na_spec) == 5
            and isinstance(na_spec[2], (bool, np.bool_))
        ):
            na_spec = (*na_spec[:2], bool(na_spec[2]) and bool(max_pool), *na_spec[3:])
        volume_shape = _positive_triple(input_shape, "input_shape")
        spec, _ = check_na_spec(na_spec, volume_shape, local=local)
        if outfilter not in (0, 1, 2):
            raise ValueError(f"outfilter must be 0, 1 or 2, got {outfilter!r}")
        latent_shape = tuple(int(v) for v in latent_shape)
        if not latent_shape or min(latent_shape) < 1:
            raise ValueError(f"latent_shape must hold positive integers, got {latent_shape}")
        super().__init__(name=name or "fmri_ae", trainable=trainable)
        self.latent_shape = latent_shape
        self.volume_shape = volume_shape
        self.paradigm_shape = (*volume_shape, 1)
        self.n_channels = int(n_channels)
        self.batch_norm, self.weight_decay = bool(batch_norm), float(weight_decay)
        self.skip_connections, self.dropout = bool(skip_connections), bool(dropout)
        self.local, self.outfilter, self.seed = bool(local), int(outfilter), seed
        self.max_pool = bool(max_pool)
        for key, value in deprecated.items():
            setattr(self, key, value)
        self.build_decoder_flag = bool(_build_decoder)
        self.na_spec = spec
        base = None if seed is None else seed
        self.stages = build_encoder_layers(
            spec, self.n_channels, self.local, self.batch_norm, self.skip_connections,
            self.dropout, self.weight_decay, base, "fmri_encoder",
        )
        glorot = keras.initializers.GlorotUniform
        self.flatten = keras.layers.Flatten(name="fmri_flatten")
        self.to_latent = keras.layers.Dense(
            int(np.prod(latent_shape)), kernel_initializer=glorot(seed=_offset(seed, 1000)),
            name="fmri_latent",
        )
        self.decoder = None
        self.out_filter = None
        if self.build_decoder_flag:
            self.decoder = keras.layers.Dense(
                int(np.prod(volume_shape)), kernel_initializer=glorot(seed=_offset(seed, 2000)),
                name="fmri_decoder",
            )
            if self.outfilter < 2:
                self.out_filter = keras.layers.Conv3D(
                    1, 1 if self.outfilter == 0 else 3, padding="same",
                    kernel_initializer=keras.initializers.Constant(1.0)
                    if self.outfilter == 0 else glorot(seed=_offset(seed, 3000)),
                    name="fmri_outfilter",
                )
        self(np.zeros((1, *self.paradigm_shape), dtype="float32"), training=False)

    def encode(self, volumes, training=False):
        """Encode volumes into the latent representation.

        Parameters
        ----------
        volumes : tensor, shape (batch, x, y, z, 1)
            Volumes.
        training : bool, default False
            Training mode.

        Returns
        -------
        tensor, shape ``(batch, *latent_shape)``
            Latent codes.
        """
        values = run_encoder(self.stages, ops.cast(volumes, "float32"), training)
        latent = self.to_latent(self.flatten(values))
        return ops.reshape(latent, (-1, *self.latent_shape))

    def decode(self, latent):
        """Decode latent codes into volumes.

        Parameters
        ----------
        latent : tensor, shape ``(batch, *latent_shape)``
            Latent codes.

        Returns
        -------
        tensor, shape (batch, x, y, z, 1)
            Volumes.
        """
        flat = ops.reshape(latent, (-1, int(np.prod(self.latent_shape))))
        values = ops.reshape(self.decoder(flat), (-1, *self.volume_shape, 1))
        return values if self.out_filter is None else self.out_filter(values)

    def call(self, inputs, training=False):
        """Encode and decode.

        Parameters
        ----------
        inputs : tensor, shape (batch, x, y, z, 1)
            Volumes.
        training : bool, default False
            Training mode.

        Returns
        -------
        dict
            ``"latent"`` and (with a decoder) ``"volume"``.
        """
        latent = self.encode(inputs, training=training)
        outputs = {"latent": latent}
        if self.decoder is not None:
            outputs["volume"] = self.decode(latent)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean squared reconstruction error plus weight decay.

        Parameters
        ----------
        x : tensor
            Inputs (unused).
        y : dict
            ``{"volume": volumes}``.
        y_pred : dict
            Model outputs.
        sample_weight : None
            Not supported (ignored).
        training : bool, default True
            Unused.

        Returns
        -------
        tensor
            Scalar loss.
        """
        del x, sample_weight, training
        loss = ops.mean(ops.square(y["volume"] - y_pred["volume"]))
        if self.losses:
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss

    def get_config(self):
        """Return the constructor arguments (JSON-able).

        Returns
        -------
        dict
            Configuration for :meth:`from_config`.
        """
        kernels, strides, maxpool, pool_kernel, pool_stride = self.na_spec
        return {
            "name": self.name,
            "trainable": self.trainable,
            "latent_shape": list(self.latent_shape),
            "input_shape": list(self.volume_shape),
            "n_channels": self.n_channels,
            "max_pool": self.max_pool,
            "batch_norm": self.batch_norm,
            "weight_decay": self.weight_decay,
            "skip_connections": self.skip_connections,
            "dropout": self.dropout,
            "local": self.local,
            "outfilter": self.outfilter,
            "seed": self.seed,
            "_build_decoder": self.build_decoder_flag,
            "na_spec": [
                [list(k) for k in kernels], [list(s) for s in strides], maxpool,
                list(pool_kernel), list(pool_stride),
            ],
        }

    @classmethod
    def from_config(cls, config):
        """Build a model from :meth:`get_config` output.

        Parameters
        ----------
        config : dict
            Configuration.

        Returns
        -------
        fMRI_AE
            A new model.
        """
        return cls(**config)


def _offset(seed, offset):
    return None if seed is None else seed + offset
