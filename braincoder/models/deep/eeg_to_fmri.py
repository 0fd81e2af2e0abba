"""EEG-to-fMRI synthesis: EEG band power (channels × frequency × time) → BOLD volume.

An EEG encoder (the same ``na_spec`` encoder stack as :class:`fMRI_AE`) maps EEG to a
latent of ``latent_shape``; trained with the latent of a fitted :class:`fMRI_AE` as an extra
target, it lands in the autoencoder's latent space. A dense or DCT-based decoder produces
the volume; an optional σ̂ output turns the loss into a Gaussian negative log-likelihood.
"""

from __future__ import annotations

import inspect
import math

import keras
import numpy as np
from keras import ops

from ...layers import (
    DCT3D,
    DenseFlipout,
    FourierFeatures,
    RandomFourierFeatures,
    TopographicalAttention,
    iDCT3D,
    variational_iDCT3D,
)
from ..registry import register_model
from .base import DeepEncodingModel
from .fmri_ae import (
    _offset,
    _positive_triple,
    build_encoder_layers,
    check_na_spec,
    fMRI_AE,
    run_encoder,
)

__all__ = ["EEG_to_fMRI", "gaussian_nll"]


def gaussian_nll(y_true, mean, sigma):
    """Mean Gaussian negative log-likelihood.

    Parameters
    ----------
    y_true, mean : tensor
        Observations and predicted means.
    sigma : tensor
        Predicted standard deviations (positive), broadcastable to ``mean``.

    Returns
    -------
    tensor
        Scalar ``mean(0.5 log(2 pi) + log sigma + (y - mean)^2 / (2 sigma^2))``.
    """
    sigma = ops.maximum(sigma, 1e-6)
    return ops.mean(
        0.5 * math.log(2 * math.pi) + ops.log(sigma) + ops.square(y_true - mean) / (2 * sigma**2)
    )


def _fmri_kwargs(fmri_args):
    if isinstance(fmri_args, dict):
        bound = inspect.signature(fMRI_AE).bind_partial(**fmri_args)
    else:
        bound = inspect.signature(fMRI_AE).bind_partial(*fmri_args)
    kwargs = dict(bound.arguments)
    if "input_shape" not in kwargs:
        raise ValueError(
            "fmri_args must give the fMRI volume shape (fMRI_AE's input_shape, its second "
            f"argument), got {fmri_args!r}"
        )
    return kwargs


def _resolution(resolution_decoder, volume_shape):
    if resolution_decoder is None:
        return tuple(max(1, n // 2) for n in volume_shape)
    if isinstance(resolution_decoder, (int, float)) and not isinstance(resolution_decoder, bool):
        if not 0 < resolution_decoder <= 1:
            raise ValueError(
                f"resolution_decoder as a fraction must be in (0, 1], got {resolution_decoder!r}"
            )
        return tuple(max(1, int(round(n * resolution_decoder))) for n in volume_shape)
    shape = _positive_triple(resolution_decoder, "resolution_decoder")
    if any(r > n for r, n in zip(shape, volume_shape, strict=True)):
        raise ValueError(f"resolution_decoder {shape} exceeds the volume shape {volume_shape}")
    return shape


@register_model("eeg_to_fmri")
@keras.saving.register_keras_serializable(package="braincoder")
class EEG_to_fMRI(DeepEncodingModel, keras.Model):  # noqa: N801 - public name of the reference
    """EEG-to-fMRI synthesis model.

    Parameters
    ----------
    latent_shape : tuple of int
        Latent shape (the same as the :class:`fMRI_AE` whose latent is the target).
    input_shape : tuple of 3 int
        EEG sample shape (channels, frequencies, time windows).
    na_spec : tuple
        EEG encoder specification, see :func:`braincoder.models.deep.fmri_ae.check_na_spec`.
    n_channels : int
        Filters per EEG encoder layer.
    weight_decay : float, default 0.0
        L2 penalty of kernels.
    skip_connections : bool, default False
        Residual blocks in the encoder.
    batch_norm : bool, default True
        Batch normalisation in the encoder.
    dropout : bool, default False
        Dropout (p = 0.5) after each encoder layer.
    local : bool, default True
        Convolutional (True) or locally connected (False) encoder layers. The name
        suggests the opposite; this follows the reference documentation literally.
    fourier_features : bool, default False
        Map the flattened latent through learnable Fourier features before decoding.
    random_fourier : bool, default False
        Use fixed random Fourier features (requires ``fourier_features``).
    conditional_attention_style : bool, default False
        Multiply the latent by a style vector computed from the topographical attention
        scores (requires ``topographical_attention``).
    conditional_attention_style_prior : bool, default False
        Use a learnable style vector instead of one computed from the scores.
    inverse_DFT : bool, default False
        Decode DCT coefficients at ``resolution_decoder`` and invert them with
        :class:`braincoder.layers.iDCT3D` (spectral upsampling) instead of a dense decoder.
    DFT : bool, default False
        With ``inverse_DFT``: treat the decoded grid as a low-resolution volume and apply
        :class:`braincoder.layers.DCT3D` before inverting.
    variational_iDFT : bool, default False
        With ``inverse_DFT``: invert with :class:`braincoder.layers.variational_iDCT3D`.
    aleatoric_uncertainty : bool, default False
        Add a σ̂ output (``Dense(1, activation="exponential")`` of the latent) and train with
        :func:`gaussian_nll`.
    bayesian_decoder : bool, default False
        Make the dense decoder a :class:`braincoder.layers.DenseFlipout` (Gaussian posterior
        over its kernel, KL term in the loss scaled to the negative ELBO per element by
        :class:`braincoder.optimize.DeepFitter`): the reference's Bayesian decoder, whose
        spread :meth:`predict_with_uncertainty` reports as epistemic uncertainty. The
        reference enables it together with ``aleatoric_uncertainty``; here both are separate
        flags.
    variational_coefs : tuple of 3 int, optional
        Extra coefficients of the variational inverse (default one per axis where room).
    variational_dist : {"von_mises"}, default "von_mises"
        Distribution of the extra coefficients.
    variational_iDFT_dependent : bool, default False
        Make the extra coefficients depend on the decoded ones.
    variational_iDFT_dependent_dim : int, default 1
        Number of sinusoids in that dependency.
    resolution_decoder : float or tuple of 3 int, optional
        Coefficient grid of the DCT decoder (fraction of the volume shape, or a shape);
        default half the volume shape.
    low_resolution_decoder : bool, default False
        Same as ``DFT`` (decode a low-resolution volume, upsample spectrally); requires
        ``inverse_DFT``.
    topographical_attention : bool, default False
        Apply :class:`braincoder.layers.TopographicalAttention` over EEG channels first.
    seed : int, optional
        Seed of initialisers, dropout and sampling.
    fmri_args : tuple or dict
        Arguments of :class:`fMRI_AE` describing the fMRI side; its ``input_shape`` (the
        second positional argument) gives the output volume shape.
    name : str, optional
        Keras model name.
    trainable : bool, default True
        Keras ``trainable`` flag.

    Raises
    ------
    TypeError
        For unknown keyword arguments (named).
    ValueError
        For a malformed ``na_spec``, an EEG shape incompatible with it, inconsistent flags or
        missing volume shape, before any layer is built.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models.deep import EEG_to_fMRI
    >>> spec = ([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1))
    >>> model = EEG_to_fMRI((2, 2, 2), (16, 8, 4), spec, 4, seed=0,
    ...                     fmri_args=((2, 2, 2), (8, 8, 8)))
    >>> model.predict(np.zeros((3, 16, 8, 4))).shape
    (3, 512)
    """

    paradigm_name = "eeg"
    paradigm_axes = ("channels", "frequencies", "windows")

    def __init__(
        self,
        latent_shape,
        input_shape,
        na_spec,
        n_channels,
        weight_decay=0.000,
        skip_connections=False,
        batch_norm=True,
        dropout=False,
        local=True,
        fourier_features=False,
        random_fourier=False,
        conditional_attention_style=False,
        conditional_attention_style_prior=False,
        inverse_DFT=False,  # noqa: N803
        DFT=False,  # noqa: N803
        variational_iDFT=False,  # noqa: N803
        aleatoric_uncertainty=False,
        bayesian_decoder=False,
        variational_coefs=None,
        variational_dist="von_mises",
        variational_iDFT_dependent=False,  # noqa: N803
        variational_iDFT_dependent_dim=1,  # noqa: N803
        resolution_decoder=None,
        low_resolution_decoder=False,
        topographical_attention=False,
        seed=None,
        fmri_args=(),
        name=None,
        trainable=True,
    ):
        eeg_shape = _positive_triple(input_shape, "input_shape")
        spec, _ = check_na_spec(na_spec, eeg_shape, local=local, what="EEG input_shape")
        fmri_kwargs = _fmri_kwargs(fmri_args)
        volume_shape = _positive_triple(fmri_kwargs["input_shape"], "fmri_args input_shape")
        latent_shape = tuple(int(v) for v in latent_shape)
        if not latent_shape or min(latent_shape) < 1:
            raise ValueError(f"latent_shape must hold positive integers, got {latent_shape}")
        if random_fourier and not fourier_features:
            raise ValueError("random_fourier=True requires fourier_features=True")
        if conditional_attention_style and not topographical_attention:
            raise ValueError("conditional_attention_style=True requires topographical_attention")
        if (DFT or low_resolution_decoder or variational_iDFT) and not inverse_DFT:
            raise ValueError("DFT, low_resolution_decoder and variational_iDFT need inverse_DFT")
        if variational_dist != "von_mises":
            raise ValueError(f"variational_dist must be 'von_mises', got {variational_dist!r}")
        resolution = _resolution(resolution_decoder, volume_shape) if inverse_DFT else None
        if variational_iDFT:
            room = [n - r for n, r in zip(volume_shape, resolution, strict=True)]
            if variational_coefs is None:
                variational_coefs = tuple(min(1, r) for r in room)
            variational_coefs = tuple(int(c) for c in variational_coefs)
            if len(variational_coefs) != 3 or any(
                c < 0 or c > r for c, r in zip(variational_coefs, room, strict=True)
            ):
                raise ValueError(
                    f"variational_coefs must be 3 integers with 0 <= R_i <= {room} "
                    f"(volume minus resolution_decoder), got {variational_coefs}"
                )
        super().__init__(name=name or "eeg_to_fmri", trainable=trainable)
        self.config_values = dict(
            latent_shape=list(latent_shape), input_shape=list(eeg_shape),
            na_spec=[[list(k) for k in spec[0]], [list(s) for s in spec[1]], spec[2],
                     list(spec[3]), list(spec[4])],
            n_channels=int(n_channels), weight_decay=float(weight_decay),
            skip_connections=bool(skip_connections), batch_norm=bool(batch_norm),
            dropout=bool(dropout), local=bool(local), fourier_features=bool(fourier_features),
            random_fourier=bool(random_fourier),
            conditional_attention_style=bool(conditional_attention_style),
            conditional_attention_style_prior=bool(conditional_attention_style_prior),
            inverse_DFT=bool(inverse_DFT), DFT=bool(DFT), variational_iDFT=bool(variational_iDFT),
            aleatoric_uncertainty=bool(aleatoric_uncertainty),
            bayesian_decoder=bool(bayesian_decoder),
            variational_coefs=None if variational_coefs is None else list(variational_coefs),
            variational_dist=variational_dist,
            variational_iDFT_dependent=bool(variational_iDFT_dependent),
            variational_iDFT_dependent_dim=int(variational_iDFT_dependent_dim),
            resolution_decoder=resolution_decoder if not isinstance(resolution_decoder, tuple)
            else list(resolution_decoder),
            low_resolution_decoder=bool(low_resolution_decoder),
            topographical_attention=bool(topographical_attention), seed=seed,
            fmri_args={k: list(v) if isinstance(v, tuple) else v for k, v in fmri_kwargs.items()},
        )
        self.latent_shape, self.eeg_shape, self.volume_shape = latent_shape, eeg_shape, volume_shape
        self.paradigm_shape = eeg_shape
        self.aleatoric_uncertainty = bool(aleatoric_uncertainty)
        self.resolution = resolution
        n_latent = int(np.prod(latent_shape))
        glorot = keras.initializers.GlorotUniform
        self.attention = (
            TopographicalAttention(eeg_shape[0], seed=_offset(seed, 500), name="topo_attention")
            if topographical_attention
            else None
        )
        self.stages = build_encoder_layers(
            spec, int(n_channels), bool(local), bool(batch_norm), bool(skip_connections),
            bool(dropout), float(weight_decay), seed, "eeg_encoder",
        )
        self.flatten = keras.layers.Flatten(name="eeg_flatten")
        self.to_latent = keras.layers.Dense(
            n_latent, kernel_initializer=glorot(seed=_offset(seed, 1000)), name="eeg_latent"
        )
        self.style = None
        self.style_prior = None
        if conditional_attention_style:
            if conditional_attention_style_prior:
                self.style_prior = self.add_weight(
                    shape=(n_latent,), initializer="ones", name="style_prior"
                )
            else:
                self.style = keras.layers.Dense(
                    n_latent, kernel_initializer=glorot(seed=_offset(seed, 1100)), name="style"
                )
        self.features = None
        if fourier_features:
            cls = RandomFourierFeatures if random_fourier else FourierFeatures
            seed_ff = 0 if seed is None else seed + 1200
            self.features = cls(max(1, n_latent), seed=seed_ff, name="fourier_features")
        n_out = int(np.prod(resolution if inverse_DFT else volume_shape))
        if bayesian_decoder:
            self.decoder = DenseFlipout(n_out, seed=_offset(seed, 2000), name="eeg_decoder")
        else:
            self.decoder = keras.layers.Dense(
                n_out, kernel_initializer=glorot(seed=_offset(seed, 2000)), name="eeg_decoder"
            )
        self.dct = DCT3D(name="dct") if inverse_DFT and (DFT or low_resolution_decoder) else None
        self.inverse = None
        if inverse_DFT and variational_iDFT:
            self.inverse = variational_iDCT3D(
                volume_shape, variational_coefs, dependent=variational_iDFT_dependent,
                dependent_dim=variational_iDFT_dependent_dim, seed=seed, name="variational_idct",
            )
        elif inverse_DFT:
            self.inverse = iDCT3D(volume_shape, name="idct")
        self.sigma = (
            keras.layers.Dense(
                1, activation="exponential", kernel_initializer="zeros", name="sigma"
            )
            if aleatoric_uncertainty
            else None
        )
        self(np.zeros((1, *eeg_shape), dtype="float32"), training=False)

    def encode(self, eeg, training=False):
        """Encode EEG into the latent (and return the attention scores).

        Parameters
        ----------
        eeg : tensor, shape (batch, channels, frequencies, windows)
            EEG samples.
        training : bool, default False
            Training mode.

        Returns
        -------
        latent : tensor, shape ``(batch, *latent_shape)``
            Latent codes.
        scores : tensor or None
            Attention scores (batch, channels, channels) with topographical attention.
        """
        values = ops.cast(eeg, "float32")
        scores = None
        if self.attention is not None:
            n_features = int(np.prod(self.eeg_shape[1:]))
            channels = ops.reshape(values, (-1, self.eeg_shape[0], n_features))
            channels, scores = self.attention(channels)
            values = ops.reshape(channels, (-1, *self.eeg_shape))
        values = run_encoder(self.stages, ops.expand_dims(values, -1), training)
        latent = self.to_latent(self.flatten(values))
        if self.style is not None:
            latent = latent * self.style(self.flatten(scores))
        elif self.style_prior is not None:
            latent = latent * self.style_prior
        return ops.reshape(latent, (-1, *self.latent_shape)), scores

    def call(self, inputs, training=False, sample_decoder=None):
        """Synthesise volumes from EEG.

        Parameters
        ----------
        inputs : tensor, shape (batch, channels, frequencies, windows)
            EEG samples.
        training : bool, default False
            Training mode (sampling of the variational inverse and of a Bayesian decoder,
            dropout, BN).
        sample_decoder : bool, optional
            Bayesian decoder only: sample its kernel (default: as ``training``).

        Returns
        -------
        dict
            ``"volume"`` (batch, x, y, z, 1), ``"latent"`` and, with aleatoric uncertainty,
            ``"sigma"`` (batch, 1); with topographical attention also ``"attention"``.
        """
        latent, scores = self.encode(inputs, training=training)
        flat = ops.reshape(latent, (-1, int(np.prod(self.latent_shape))))
        hidden = flat if self.features is None else self.features(flat)
        if isinstance(self.decoder, DenseFlipout):
            decoded = self.decoder(hidden, training=training, sample=sample_decoder)
        else:
            decoded = self.decoder(hidden)
        if self.inverse is None:
            volume = ops.reshape(decoded, (-1, *self.volume_shape))
        else:
            grid = ops.reshape(decoded, (-1, *self.resolution))
            if self.dct is not None:
                grid = self.dct(grid)
            if isinstance(self.inverse, variational_iDCT3D):
                volume = self.inverse(grid, training=training)
            else:
                volume = self.inverse(grid)
        outputs = {"volume": ops.expand_dims(volume, -1), "latent": latent}
        if self.sigma is not None:
            outputs["sigma"] = self.sigma(flat)
        if scores is not None:
            outputs["attention"] = scores
        return outputs

    def predict_with_uncertainty(self, paradigm, n_samples=32, batch_size=64, voxels=None):
        """Monte Carlo mean and epistemic standard deviation of the predicted BOLD.

        Each of ``n_samples`` forward passes (inference mode: no dropout, batch-norm moving
        statistics) draws the Bayesian decoder's kernel from its posterior; the spread of the
        predictions is the model's uncertainty about its decoder weights. Add the σ̂ output
        of :meth:`predict_outputs` (``aleatoric_uncertainty=True``) for the noise of the data.

        Parameters
        ----------
        paradigm : DataFrame or array-like
            EEG samples (see :meth:`format_paradigm`).
        n_samples : int, default 32
            Posterior draws.
        batch_size : int, default 64
            Samples per forward pass.
        voxels : Index or array-like, optional
            Voxel labels, as in :meth:`predict`.

        Returns
        -------
        mean, sd : DataFrame, shape (n_samples_in, n_voxels)
            Mean and standard deviation over the draws, indexed like the paradigm.

        Raises
        ------
        ValueError
            Without ``bayesian_decoder=True``, for ``n_samples`` < 2, or a paradigm that does
            not match the model.
        """
        if not isinstance(self.decoder, DenseFlipout):
            raise ValueError("predict_with_uncertainty needs a model built with "
                             "bayesian_decoder=True")
        if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 2:
            raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
        values, index = self.format_paradigm(paradigm)
        total = np.zeros((len(values), int(np.prod(self.volume_shape))))
        total_sq = np.zeros_like(total)
        for _ in range(int(n_samples)):
            for start in range(0, len(values), batch_size):
                chunk = self(values[start : start + batch_size], training=False,
                             sample_decoder=True)["volume"]
                flat = ops.convert_to_numpy(chunk).reshape(len(chunk), -1).astype(np.float64)
                total[start : start + batch_size] += flat
                total_sq[start : start + batch_size] += flat**2
        mean = total / n_samples
        sd = np.sqrt(np.maximum(total_sq / n_samples - mean**2, 0.0) * n_samples
                     / (n_samples - 1))
        shape = (len(values), *self.volume_shape, 1)
        return (self.volumes_to_frame(mean.reshape(shape), index, voxels),
                self.volumes_to_frame(sd.reshape(shape), index, voxels))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Volume MSE (or Gaussian NLL), plus latent MSE when a latent target is given.

        Parameters
        ----------
        x : tensor
            Inputs (unused).
        y : dict
            ``{"volume": volumes}`` and optionally ``{"latent": latents}``.
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
        if self.sigma is not None:
            sigma = ops.reshape(y_pred["sigma"], (-1, 1, 1, 1, 1))
            loss = gaussian_nll(y["volume"], y_pred["volume"], sigma)
        else:
            loss = ops.mean(ops.square(y["volume"] - y_pred["volume"]))
        if "latent" in y:
            loss = loss + ops.mean(ops.square(y["latent"] - y_pred["latent"]))
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
        return {"name": self.name, "trainable": self.trainable, **self.config_values}

    @classmethod
    def from_config(cls, config):
        """Build a model from :meth:`get_config` output.

        Parameters
        ----------
        config : dict
            Configuration.

        Returns
        -------
        EEG_to_fMRI
            A new model.
        """
        return cls(**config)
