"""Haemodynamic response functions (SPM canonical and variants) and their convolution.

The canonical HRF is SPM12's difference of two gamma densities. An HRF model turns a
neural response (time × unit) into a BOLD prediction by causal convolution with a kernel
sampled at exactly the data's time points (multiples of TR). A model can share one kernel
across voxels or give each voxel its own delay and dispersion (``unique_hrfs=True``), in
which case the encoding model gains the parameters ``hrf_delay`` and ``hrf_dispersion``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import special

from .utils.math import Bounded, Identity

__all__ = ["HRFModel", "SPMHRFModel", "SPMHRFDerivativeModel", "CustomHRFModel", "spm_hrf"]


def _gamma_pdf(t, shape, scale):
    """Gamma density with ``shape`` and ``scale`` at ``t`` (0 for ``t <= 0``), numpy."""
    t = np.asarray(t, dtype=np.float64)
    positive = t > 0
    safe_t = np.where(positive, t, 1.0)
    log_pdf = (
        (shape - 1.0) * np.log(safe_t) - safe_t / scale - special.gammaln(shape)
        - shape * np.log(scale)
    )
    return np.where(positive, np.exp(log_pdf), 0.0)


def spm_hrf(t, a1=6.0, d1=1.0, a2=16.0, d2=1.0, c=1 / 6, highres_dt=0.1):
    """SPM12 canonical haemodynamic response function at times ``t``.

    .. math::

        h(t) = \\frac{g(t; a_1/d_1, d_1) - c\\, g(t; a_2/d_2, d_2)}{1 - c}

    where :math:`g(t; k, \\theta)` is the gamma density with shape :math:`k` and scale
    :math:`\\theta`. This is SPM12's ``spm_hrf`` with delay of response ``a1`` (6 s), delay
    of undershoot ``a2`` (16 s), dispersions ``d1``, ``d2`` (1 s) and response-to-undershoot
    ratio ``1/c`` (6).

    Normalisation: SPM divides the sampled kernel by its sum; here the continuous function
    is divided by ``1 − c`` so that it integrates to one over :math:`[0, \\infty)` whatever
    the sampling. :class:`SPMHRFModel` normalises each sampled kernel to unit sum, as SPM
    does, so a sustained unit input yields a unit plateau.

    Parameters
    ----------
    t : array-like, shape (n_times,) or (n_times, n_voxels)
        Times in seconds after onset.
    a1, d1, a2, d2 : float or array-like, shape (n_voxels,)
        Delays and dispersions of the response and the undershoot. Arrays give one
        HRF per voxel (columns of the result).
    c : float, default 1/6
        Amplitude of the undershoot relative to the response.
    highres_dt : float, default 0.1
        Kept for compatibility with braincoder; the function is evaluated exactly at ``t``.

    Returns
    -------
    ndarray
        HRF values (1/s), shape ``(n_times,)`` or ``(n_times, n_voxels)``.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.hrf import spm_hrf
    >>> t = np.arange(0, 32, 0.1)
    >>> float(t[np.argmax(spm_hrf(t))])
    5.0
    """
    del highres_dt
    t = np.asarray(t, dtype=np.float64)
    params = [np.asarray(p, dtype=np.float64) for p in (a1, d1, a2, d2)]
    if any(p.ndim > 0 for p in params) and t.ndim == 1:
        t = t[:, np.newaxis]
    a1, d1, a2, d2 = params
    return (_gamma_pdf(t, a1 / d1, d1) - c * _gamma_pdf(t, a2 / d2, d2)) / (1.0 - c)


def _gamma_pdf_tensor(t, shape, scale):
    """Gamma density for tensors; ``t`` (n_times, 1), shape/scale (1, n_voxels)."""
    positive = t > 0
    safe_t = tf.where(positive, t, tf.ones_like(t))
    log_pdf = (
        (shape - 1.0) * tf.math.log(safe_t) - safe_t / scale - tf.math.lgamma(shape)
        - shape * tf.math.log(scale)
    )
    return tf.where(positive, tf.exp(log_pdf), tf.zeros_like(log_pdf))


def _braincoder_kernel(hrf, times, hrf_parameters=None):
    """Sample the public braincoder's SPM kernel at ``times`` (``kernel='braincoder'``).

    Shared: ndarray (n_times,); per voxel (``hrf_parameters`` (n_voxels, 2) delay and
    dispersion): tensor (n_times, n_voxels).
    """
    step = 0.1
    times = np.asarray(times, dtype=np.float32)
    t_min = float(times.min())
    n_steps = int(np.ceil((float(times.max()) - t_min) / step)) + 1
    # Value i of the high-resolution grid is the density at t_min + (i − 2)·step (0 at i = 0).
    shifted = (t_min + np.arange(-2, n_steps - 2, dtype=np.float32) * np.float32(step))
    shifted = shifted.astype(np.float32)[:, np.newaxis]
    shifted[0] = -1.0
    position = (times - t_min) / np.float32(step)
    left = np.clip(np.floor(position).astype(int), 0, n_steps - 1)
    right = np.clip(left + 1, 0, n_steps - 1)
    weight = (position - left).astype(np.float32)[:, np.newaxis]
    if not hrf.unique_hrfs:
        delay = np.array([[hrf.delay]], np.float64)
        dispersion = np.array([[hrf.dispersion]], np.float64)
        kernel = (_gamma_pdf(shifted, delay / dispersion + 1.0, dispersion)
                  - hrf.ratio * _gamma_pdf(shifted, hrf.undershoot / hrf.u_dispersion,
                                           hrf.u_dispersion))
        kernel = kernel / kernel.sum(axis=0, keepdims=True)
        return ((1.0 - weight) * kernel[left] + weight * kernel[right])[:, 0]
    if hrf_parameters is None:
        raise ValueError("per-voxel HRF parameters are required when unique_hrfs=True")
    hrf_parameters = tf.convert_to_tensor(hrf_parameters, dtype=tf.float32)
    delay = hrf_parameters[:, 0][tf.newaxis, :]
    dispersion = hrf_parameters[:, 1][tf.newaxis, :]
    t = tf.constant(shifted)
    kernel = _gamma_pdf_tensor(t, delay / dispersion + 1.0, dispersion) - hrf.ratio * (
        _gamma_pdf_tensor(t, hrf.undershoot / hrf.u_dispersion, hrf.u_dispersion)
    )
    kernel = kernel / tf.reduce_sum(kernel, axis=0, keepdims=True)
    return ((1.0 - weight) * tf.gather(kernel, left) + weight * tf.gather(kernel, right))


def _braincoder_2024_kernel(hrf, times, hrf_parameters=None):
    """Sample the public braincoder's kernel before 2025 (``kernel='braincoder_2024'``).

    Gamma densities (shape ``delay``, scale ``dispersion``) minus ``ratio`` times the
    undershoot's, not normalised. Shared: ndarray (n_times,); per voxel: tensor
    (n_times, n_voxels).
    """
    times = np.asarray(times, dtype=np.float64)
    undershoot = _gamma_pdf(times, hrf.undershoot, hrf.u_dispersion)
    if not hrf.unique_hrfs:
        return _gamma_pdf(times, hrf.delay, hrf.dispersion) - hrf.ratio * undershoot
    if hrf_parameters is None:
        raise ValueError("per-voxel HRF parameters are required when unique_hrfs=True")
    hrf_parameters = tf.convert_to_tensor(hrf_parameters, dtype=tf.float32)
    t = tf.constant(times[:, np.newaxis], dtype=tf.float32)
    response = _gamma_pdf_tensor(t, hrf_parameters[:, 0][tf.newaxis, :],
                                 hrf_parameters[:, 1][tf.newaxis, :])
    return response - tf.constant(hrf.ratio * undershoot[:, np.newaxis], tf.float32)


def causal_convolution_matrix(kernel, n_timepoints):
    """Lower-triangular Toeplitz matrix that convolves a signal with ``kernel``.

    Parameters
    ----------
    kernel : array-like, shape (n_kernel,)
        Kernel sampled at lags 0, 1, 2, … (in samples).
    n_timepoints : int
        Length of the signal.

    Returns
    -------
    ndarray, shape (n_timepoints, n_timepoints)
        ``M`` with ``(M @ x)[t] = sum_k kernel[k] x[t − k]`` (zero before the start).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    lags = np.arange(n_timepoints)[:, None] - np.arange(n_timepoints)[None, :]
    matrix = np.zeros((n_timepoints, n_timepoints))
    valid = (lags >= 0) & (lags < len(kernel))
    matrix[valid] = kernel[lags[valid]]
    return matrix


class HRFModel:
    """Base class of HRF models: a kernel and its causal convolution with a neural response.

    Parameters
    ----------
    unique_hrfs : bool, default False
        Give every voxel (unit) its own HRF parameters, listed in ``parameter_labels``.

    Attributes
    ----------
    parameter_labels : list of str
        Per-voxel HRF parameters the encoding model gains when ``unique_hrfs`` is True.
    parameter_transforms : dict
        Transform of each HRF parameter to an unbounded space.
    """

    parameter_labels: list = []

    def __init__(self, unique_hrfs=False):
        self.unique_hrfs = bool(unique_hrfs)
        self._matrix_cache = {}

    @property
    def parameter_transforms(self):
        """Dict label → transform of the per-voxel HRF parameters."""
        return {label: Identity() for label in self.parameter_labels}

    def get_hrf(self, hrf_parameters=None):
        """Return the HRF kernel sampled at the data's time points.

        Parameters
        ----------
        hrf_parameters : tensor, shape (n_voxels, n_hrf_parameters), optional
            Per-voxel HRF parameters (columns in ``parameter_labels`` order); required when
            ``unique_hrfs`` is True.

        Returns
        -------
        ndarray or tensor
            Shape ``(n_kernel,)`` (shared) or ``(n_kernel, n_voxels)`` (per voxel).
        """
        raise NotImplementedError

    def convolve(self, neural, hrf_parameters=None):
        """Causally convolve a neural response with the HRF along time.

        Parameters
        ----------
        neural : tensor or ndarray, shape (n_timepoints, n_units)
            Neural response (no baseline).
        hrf_parameters : tensor, shape (n_units, n_hrf_parameters), optional
            Per-unit HRF parameters, when ``unique_hrfs`` is True.

        Returns
        -------
        tensor, shape (n_timepoints, n_units)
            BOLD response; the output at time t depends only on inputs at times <= t.
        """
        neural = tf.convert_to_tensor(neural, dtype=tf.float32)
        if self.unique_hrfs:
            return self._convolve_per_unit(neural, self.get_hrf(hrf_parameters))
        return tf.matmul(self.convolution_matrix(neural.shape[0]), neural)

    def convolution_matrix(self, n_timepoints):
        """Return the (cached) Toeplitz matrix of the shared kernel, float32 tensor.

        Parameters
        ----------
        n_timepoints : int
            Length of the signal.

        Returns
        -------
        tensor, shape (n_timepoints, n_timepoints)
            Causal convolution matrix.
        """
        if n_timepoints not in self._matrix_cache:
            kernel = np.asarray(self.get_hrf(), dtype=np.float64)
            if kernel.ndim != 1:
                raise ValueError("convolution_matrix needs a kernel shared by all voxels")
            self._matrix_cache[n_timepoints] = tf.constant(
                causal_convolution_matrix(kernel, n_timepoints), dtype=tf.float32
            )
        return self._matrix_cache[n_timepoints]

    @staticmethod
    def _convolve_per_unit(neural, kernels):
        """Convolve each column of ``neural`` with its own kernel column."""
        kernels = tf.convert_to_tensor(kernels, dtype=tf.float32)
        n_timepoints = tf.shape(neural)[0]
        n_kernel = kernels.shape[0]
        padded = tf.pad(neural, [[n_kernel - 1, 0], [0, 0]])
        output = tf.zeros_like(neural)
        for lag in range(n_kernel):
            start = n_kernel - 1 - lag
            output += kernels[lag] * padded[start : start + n_timepoints]
        return output

    def get_config(self):
        """Return the constructor arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``{"class": name, **arguments}``.
        """
        return {"class": type(self).__name__, "unique_hrfs": self.unique_hrfs}


class SPMHRFModel(HRFModel):
    """SPM canonical HRF, shared by all voxels or with per-voxel delay and dispersion.

    The kernel is :func:`spm_hrf` evaluated at exactly ``t = k·tr − onset`` for
    ``k = 0 … floor(time_length / tr)`` and divided by its sum (SPM's normalisation).

    Parameters
    ----------
    tr : float
        Repetition time in seconds (sampling interval of the data).
    unique_hrfs : bool, default False
        Per-voxel ``hrf_delay`` and ``hrf_dispersion`` parameters (bounded transforms within
        ``[min_hrf_delay, max_hrf_delay]`` and ``[min_dispersion, max_dispersion]``).
    highres_dt : float, default 0.1
        Step (s) of the high-resolution grid used by :meth:`get_highres_hrf` for plotting.
    time_length : float, default 32.0
        Length of the kernel in seconds.
    onset : float, default 0.0
        Onset shift of the kernel in seconds.
    delay, undershoot : float, default 6.0, 16.0
        Delays (s) of the response and the undershoot gamma densities.
    dispersion, u_dispersion : float, default 1.0
        Dispersions of the response and the undershoot.
    ratio : float, default 0.167
        Undershoot-to-response amplitude ratio (``c`` of :func:`spm_hrf`).
    min_hrf_delay, max_hrf_delay : float, default 3.0, 7.0
        Bounds of the per-voxel delay.
    min_dispersion, max_dispersion : float, default 0.3, 2.0
        Bounds of the per-voxel dispersion.
    kernel : {'spm12', 'braincoder', 'braincoder_2024'}, default 'spm12'
        ``'spm12'``: SPM12's kernel sampled exactly at multiples of TR (response gamma of
        shape ``delay / dispersion``), divided by its sum. The other two reproduce the
        public braincoder, so that its fits predict the same numbers here:
        ``'braincoder'`` its current kernel — response gamma of shape
        ``delay / dispersion + 1``, both gammas evaluated on a 0.1 s grid delayed by two
        steps, normalised to unit sum there and linearly interpolated at
        ``linspace(1e-4, time_length, round(time_length / tr)) − onset`` (summing to
        about ``0.1 / tr``); ``'braincoder_2024'`` its kernel before 2025 (with which,
        for example, the published pRF fit of the szinte2024 data was made) — the gamma
        densities of shape ``delay`` and scale ``dispersion`` minus ``ratio`` times shape
        ``undershoot``, scale ``u_dispersion``, at ``linspace(0, time_length,
        round(time_length / tr)) − onset``, not normalised. That version added the
        baseline before the convolution: multiply the baselines of its tables by
        ``get_hrf().sum()`` to use them here. Recorded by :meth:`get_config`.

    Examples
    --------
    >>> from braincoder.hrf import SPMHRFModel
    >>> hrf = SPMHRFModel(tr=1.5)
    >>> kernel = hrf.get_hrf()
    >>> round(float(kernel.sum()), 6)
    1.0
    """

    def __init__(
        self,
        tr,
        unique_hrfs=False,
        highres_dt=0.1,
        time_length=32.0,
        onset=0.0,
        delay=6.0,
        undershoot=16.0,
        dispersion=1.0,
        u_dispersion=1.0,
        ratio=0.167,
        min_hrf_delay=3.0,
        max_hrf_delay=7.0,
        min_dispersion=0.3,
        max_dispersion=2.0,
        kernel="spm12",
    ):
        super().__init__(unique_hrfs=unique_hrfs)
        if kernel not in ("spm12", "braincoder", "braincoder_2024"):
            raise ValueError(
                f"kernel must be 'spm12', 'braincoder' or 'braincoder_2024', got {kernel!r}"
            )
        self.kernel = kernel
        if not tr > 0:
            raise ValueError(f"tr must be positive, got {tr!r}")
        if not time_length > tr:
            raise ValueError(f"time_length ({time_length}) must exceed tr ({tr})")
        if not min_hrf_delay < max_hrf_delay or not min_dispersion < max_dispersion:
            raise ValueError("HRF bounds must satisfy min < max")
        self.tr = float(tr)
        self.highres_dt = float(highres_dt)
        self.time_length = float(time_length)
        self.onset = float(onset)
        self.delay = float(delay)
        self.undershoot = float(undershoot)
        self.dispersion = float(dispersion)
        self.u_dispersion = float(u_dispersion)
        self.ratio = float(ratio)
        self.min_hrf_delay = float(min_hrf_delay)
        self.max_hrf_delay = float(max_hrf_delay)
        self.min_dispersion = float(min_dispersion)
        self.max_dispersion = float(max_dispersion)

    @property
    def parameter_labels(self):
        """Per-voxel parameters (``hrf_delay``, ``hrf_dispersion``) when ``unique_hrfs``."""
        return ["hrf_delay", "hrf_dispersion"] if self.unique_hrfs else []

    @property
    def parameter_transforms(self):
        """Bounded transforms of ``hrf_delay`` and ``hrf_dispersion``."""
        if not self.unique_hrfs:
            return {}
        return {
            "hrf_delay": Bounded(self.min_hrf_delay, self.max_hrf_delay),
            "hrf_dispersion": Bounded(self.min_dispersion, self.max_dispersion),
        }

    @property
    def default_hrf_parameters(self):
        """Dict of the shared delay and dispersion, the per-voxel starting values."""
        return {"hrf_delay": self.delay, "hrf_dispersion": self.dispersion}

    @property
    def kernel_times(self):
        """Times (s) at which the kernel is sampled: ``k·tr`` for integers k >= 0.

        With ``kernel='braincoder'`` (``'braincoder_2024'``): ``linspace(1e-4 (0),
        time_length, round(time_length / tr))``, the public braincoder's time stamps.
        """
        if self.kernel != "spm12":
            n_times = int(np.rint(self.time_length / self.tr))
            start = 1e-4 if self.kernel == "braincoder" else 0.0
            return np.linspace(start, self.time_length, n_times).astype(np.float32)
        return np.arange(int(np.floor(self.time_length / self.tr)) + 1) * self.tr

    def get_hrf(self, hrf_parameters=None):
        """Return the kernel, normalised to unit sum (see class docstring).

        Parameters
        ----------
        hrf_parameters : tensor, shape (n_voxels, 2), optional
            Per-voxel ``hrf_delay`` and ``hrf_dispersion`` (natural space); required when
            ``unique_hrfs`` is True.

        Returns
        -------
        ndarray, shape (n_kernel,), or tensor, shape (n_kernel, n_voxels)
            The kernel.
        """
        times = self.kernel_times - self.onset
        if self.kernel == "braincoder":
            return _braincoder_kernel(self, times, hrf_parameters)
        if self.kernel == "braincoder_2024":
            return _braincoder_2024_kernel(self, times, hrf_parameters)
        if not self.unique_hrfs:
            kernel = spm_hrf(
                times, self.delay, self.dispersion, self.undershoot, self.u_dispersion,
                self.ratio,
            )
            return kernel / kernel.sum()
        if hrf_parameters is None:
            raise ValueError("per-voxel HRF parameters are required when unique_hrfs=True")
        hrf_parameters = tf.convert_to_tensor(hrf_parameters, dtype=tf.float32)
        delay = hrf_parameters[:, 0][tf.newaxis, :]
        dispersion = hrf_parameters[:, 1][tf.newaxis, :]
        t = tf.constant(times[:, np.newaxis], dtype=tf.float32)
        kernel = _gamma_pdf_tensor(t, delay / dispersion, dispersion) - self.ratio * (
            _gamma_pdf_tensor(t, self.undershoot / self.u_dispersion, self.u_dispersion)
        )
        return kernel / tf.reduce_sum(kernel, axis=0, keepdims=True)

    def get_highres_hrf(self):
        """Return the canonical HRF on a ``highres_dt`` grid, for plotting.

        Returns
        -------
        times : ndarray
            Times in seconds.
        values : ndarray
            :func:`spm_hrf` values (unit area).
        """
        times = np.arange(0.0, self.time_length + self.highres_dt / 2, self.highres_dt)
        values = spm_hrf(
            times - self.onset, self.delay, self.dispersion, self.undershoot,
            self.u_dispersion, self.ratio,
        )
        return times, values

    def get_config(self):
        """Return the constructor arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``{"class": "SPMHRFModel", "tr": ..., ...}``.
        """
        config = super().get_config()
        for name in (
            "tr", "highres_dt", "time_length", "onset", "delay", "undershoot", "dispersion",
            "u_dispersion", "ratio", "min_hrf_delay", "max_hrf_delay", "min_dispersion",
            "max_dispersion",
        ):
            config[name] = getattr(self, name)
        if self.kernel != "spm12":
            config["kernel"] = self.kernel
        return config


class SPMHRFDerivativeModel(SPMHRFModel):
    """SPM canonical HRF plus a weighted temporal derivative.

    The kernel is ``h + delta · dh``, where ``dh`` is SPM's temporal derivative (the
    canonical kernel minus the kernel shifted by one second, both unit-sum). With
    ``unique_hrfs=True`` each voxel gets its own ``hrf_delta`` (unbounded), which shifts the
    response earlier (delta > 0) or later (delta < 0) by about ``delta`` seconds.

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    unique_hrfs : bool, default False
        Per-voxel ``hrf_delta``.
    delta : float, default 0.0
        Weight of the derivative shared by all voxels (and the start value per voxel).
    **spm_arguments
        Other arguments of :class:`SPMHRFModel` (``time_length``, ``delay``, …).
    """

    def __init__(self, tr, unique_hrfs=False, delta=0.0, **spm_arguments):
        super().__init__(tr, unique_hrfs=unique_hrfs, **spm_arguments)
        self.delta = float(delta)

    @property
    def parameter_labels(self):
        """``["hrf_delta"]`` when ``unique_hrfs``."""
        return ["hrf_delta"] if self.unique_hrfs else []

    @property
    def parameter_transforms(self):
        """Identity transform of ``hrf_delta``."""
        return {"hrf_delta": Identity()} if self.unique_hrfs else {}

    @property
    def default_hrf_parameters(self):
        """Dict with the shared ``delta``."""
        return {"hrf_delta": self.delta}

    def _canonical_and_derivative(self):
        times = self.kernel_times - self.onset
        args = (self.delay, self.dispersion, self.undershoot, self.u_dispersion, self.ratio)
        canonical = spm_hrf(times, *args)
        shifted = spm_hrf(times - 1.0, *args)
        canonical = canonical / canonical.sum()
        return canonical, canonical - shifted / shifted.sum()

    def get_hrf(self, hrf_parameters=None):
        """Return ``h + delta · dh``.

        Parameters
        ----------
        hrf_parameters : tensor, shape (n_voxels, 1), optional
            Per-voxel ``hrf_delta`` (required when ``unique_hrfs`` is True).

        Returns
        -------
        ndarray, shape (n_kernel,), or tensor, shape (n_kernel, n_voxels)
            The kernel.
        """
        canonical, derivative = self._canonical_and_derivative()
        if not self.unique_hrfs:
            return canonical + self.delta * derivative
        if hrf_parameters is None:
            raise ValueError("per-voxel HRF parameters are required when unique_hrfs=True")
        delta = tf.convert_to_tensor(hrf_parameters, dtype=tf.float32)[:, 0][tf.newaxis, :]
        return (
            tf.constant(canonical[:, None], tf.float32)
            + delta * tf.constant(derivative[:, None], tf.float32)
        )

    def get_config(self):
        """Return the constructor arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            Arguments including ``delta``.
        """
        config = super().get_config()
        config["delta"] = self.delta
        for name in ("min_hrf_delay", "max_hrf_delay", "min_dispersion", "max_dispersion"):
            config.pop(name)
        return config


class CustomHRFModel(HRFModel):
    """HRF given as a kernel sampled at the data's time points.

    Parameters
    ----------
    hrf : array-like, shape (n_kernel,) or (n_kernel, n_voxels)
        Kernel at lags 0, TR, 2·TR, … used as given (not normalised). A 2D kernel gives
        each voxel its own fixed HRF (columns in the order of the model's voxels).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.hrf import CustomHRFModel
    >>> CustomHRFModel(np.array([0.0, 0.5, 0.5])).get_hrf().tolist()
    [0.0, 0.5, 0.5]
    """

    def __init__(self, hrf):
        super().__init__(unique_hrfs=False)
        kernel = np.asarray(hrf, dtype=np.float64)
        if kernel.ndim not in (1, 2) or kernel.shape[0] == 0:
            raise ValueError(f"hrf must have shape (n_kernel,) or (n_kernel, n_voxels), got "
                             f"{kernel.shape}")
        if not np.isfinite(kernel).all():
            raise ValueError("hrf holds NaN or infinite values")
        self.hrf = kernel

    def get_hrf(self, hrf_parameters=None):
        """Return the kernel as given.

        Parameters
        ----------
        hrf_parameters : None
            Custom kernels have no parameters.

        Returns
        -------
        ndarray
            The kernel.
        """
        return self.hrf

    def convolve(self, neural, hrf_parameters=None):
        """Convolve with the shared kernel, or each unit with its own kernel column.

        Parameters
        ----------
        neural : tensor or ndarray, shape (n_timepoints, n_units)
            Neural response.
        hrf_parameters : None
            Unused.

        Returns
        -------
        tensor, shape (n_timepoints, n_units)
            Convolved response.
        """
        if self.hrf.ndim == 2:
            neural = tf.convert_to_tensor(neural, dtype=tf.float32)
            if neural.shape[1] != self.hrf.shape[1]:
                raise ValueError(
                    f"the custom HRF has {self.hrf.shape[1]} voxel kernels but the response "
                    f"has {neural.shape[1]} voxels"
                )
            return self._convolve_per_unit(neural, self.hrf)
        return super().convolve(neural)

    def get_config(self):
        """Return the kernel as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``{"class": "CustomHRFModel", "hrf": nested list}``.
        """
        return {"class": "CustomHRFModel", "hrf": self.hrf.tolist()}


def hrf_model_from_config(config):
    """Rebuild an HRF model from :meth:`HRFModel.get_config` output.

    Parameters
    ----------
    config : dict
        Output of ``get_config``.

    Returns
    -------
    HRFModel
        The model.

    Raises
    ------
    ValueError
        For an unknown class name.
    """
    config = dict(config)
    name = config.pop("class")
    classes = {cls.__name__: cls for cls in (SPMHRFModel, SPMHRFDerivativeModel, CustomHRFModel)}
    if name not in classes:
        raise ValueError(f"unknown HRF model class {name!r}; known: {sorted(classes)}")
    return classes[name](**config)


def convolve_per_voxel(signals, kernels):
    """Causally convolve each column of ``signals`` with its own kernel column.

    One depthwise convolution: ``out[t, c] = sum_l kernels[l, c] · signals[t − l, c]``
    (zero before the start), the same as :meth:`HRFModel.convolve` with per-voxel kernels.

    Parameters
    ----------
    signals : tensor, shape (n_timepoints, n_columns)
        Signals, e.g. neural responses.
    kernels : tensor, shape (n_kernel, n_columns)
        One kernel per column, sampled at lags 0, 1, 2, … (in samples).

    Returns
    -------
    tensor, shape (n_timepoints, n_columns)
        The convolved signals (float32).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.hrf import convolve_per_voxel
    >>> out = convolve_per_voxel(np.eye(3, 2, dtype=np.float32), np.ones((2, 2), np.float32))
    >>> out.numpy().tolist()
    [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    """
    signals = tf.convert_to_tensor(signals, dtype=tf.float32)
    kernels = tf.convert_to_tensor(kernels, dtype=tf.float32)
    n_kernel = kernels.shape[0]
    padded = tf.pad(signals, [[n_kernel - 1, 0], [0, 0]])[tf.newaxis, tf.newaxis]
    filters = tf.reverse(kernels, [0])[tf.newaxis, :, :, tf.newaxis]
    return tf.nn.depthwise_conv2d(padded, filters, strides=[1, 1, 1, 1], padding="VALID")[0, 0]


def hrf_kernel_jacobian(hrf_model, hrf_parameters, columns=None):
    """Per-voxel kernels and their exact derivatives with respect to the HRF parameters.

    The kernel is short (``time_length / tr`` samples), so its derivatives cost little:
    they come from one forward-mode differentiation of :meth:`HRFModel.get_hrf` (e.g.
    :class:`SPMHRFModel`'s unit-sum kernel with respect to ``hrf_delay`` and
    ``hrf_dispersion``), whatever the kernel's sampling. With them, the derivative of a
    prediction ``h * n`` with respect to an HRF parameter is ``(dh/dθ) * n``.

    Parameters
    ----------
    hrf_model : HRFModel
        An HRF model with per-voxel parameters (``unique_hrfs=True``).
    hrf_parameters : tensor, shape (n_voxels, n_hrf_parameters)
        Natural HRF parameters per voxel (e.g. ``hrf_delay``, ``hrf_dispersion``).
    columns : sequence of int, optional
        Parameters to differentiate (default: all).

    Returns
    -------
    kernels : tensor, shape (n_kernel, n_voxels)
        The kernels, as ``hrf_model.get_hrf(hrf_parameters)``.
    derivatives : list of tensor, shape (n_kernel, n_voxels)
        ``d kernels / d hrf_parameters[:, k]`` for each ``k`` in ``columns``.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.hrf import SPMHRFModel, hrf_kernel_jacobian
    >>> hrf = SPMHRFModel(tr=1.0, unique_hrfs=True)
    >>> kernels, (d_delay, d_dispersion) = hrf_kernel_jacobian(hrf, np.float32([[6.0, 1.0]]))
    >>> kernels.shape == d_delay.shape
    True
    """
    hrf_parameters = tf.convert_to_tensor(hrf_parameters, dtype=tf.float32)
    n_parameters = hrf_parameters.shape[1]
    columns = list(range(n_parameters)) if columns is None else [int(c) for c in columns]
    if not columns:
        return tf.convert_to_tensor(hrf_model.get_hrf(hrf_parameters), tf.float32), []
    n_voxels = tf.shape(hrf_parameters)[0]
    tiled = tf.tile(hrf_parameters, [len(columns), 1])
    tangents = tf.repeat(tf.one_hot(columns, n_parameters, dtype=tf.float32), n_voxels, axis=0)
    with tf.autodiff.ForwardAccumulator(tiled, tangents) as accumulator:
        kernels = tf.convert_to_tensor(hrf_model.get_hrf(tiled), tf.float32)
    jvp = accumulator.jvp(kernels)
    derivatives = [jvp[:, k * n_voxels:(k + 1) * n_voxels] for k in range(len(columns))]
    return kernels[:, :n_voxels], derivatives
