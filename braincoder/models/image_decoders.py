"""Linear baselines for image reconstruction from fMRI: ridge and pRF-model inversion.

Both follow the API of :class:`braincoder.models.deep.VAEGAN`: ``fit(fmri, images)`` then
``reconstruct(fmri)`` returning ``(images, frame)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..optimize.ridge import fit_ridge
from ..utils.formatting import format_data
from .deep._embedding_ridge import _check_voxels
from .registry import register_model

__all__ = ["RidgeImageDecoder", "PRFInversionDecoder"]

_DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-1, 7))


def _check_images(images):
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got {np.shape(images)}")
    if not np.isfinite(array).all():
        raise ValueError(f"images hold {int((~np.isfinite(array)).sum())} non-finite values")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"images must lie in [0, 1], found values in [{array.min():.3g}, {array.max():.3g}]"
        )
    return array


def _output(flat, shape, index):
    images = np.clip(flat, 0.0, 1.0).reshape((len(flat),) + tuple(shape))
    frame = pd.DataFrame(
        images.reshape(len(images), -1), index=index,
        columns=pd.RangeIndex(int(np.prod(shape)), name="pixel"),
    )
    return images, frame


class _ImageDecoder:
    """Shared input checks of the image decoders."""

    def _fit_inputs(self, fmri, images):
        frame = format_data(fmri, "fmri")
        images = _check_images(images)
        if len(frame) != len(images):
            raise ValueError(f"fmri has {len(frame)} trials but images has {len(images)}")
        self.voxel_names = pd.Index(frame.columns)
        self.image_shape = images.shape[1:]
        return frame, images

    def _predict_inputs(self, fmri):
        if getattr(self, "voxel_names", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(fmri, images)")
        frame = format_data(fmri, "fmri")
        return _check_voxels(frame, len(self.voxel_names), self.voxel_names, "decoder")

    def save(self, path):
        """Save the fitted decoder to a folder: header, ``decoder.json`` and ``decoder.npz``.

        Parameters
        ----------
        path : str or path
            Folder (created if needed); read back with :meth:`load` or
            :func:`braincoder.models.load_model`.

        Returns
        -------
        Path
            The folder.

        Raises
        ------
        RuntimeError
            If the decoder was never fitted.
        """
        from .persistence import save

        return save(self, path)

    @classmethod
    def load(cls, path):
        """Load a decoder saved with :meth:`save` (no pickle).

        Parameters
        ----------
        path : str or path
            The saved folder.

        Returns
        -------
        RidgeImageDecoder or PRFInversionDecoder
            The fitted decoder.

        Raises
        ------
        TypeError
            If the folder holds another kind of object.
        """
        from .persistence import load

        decoder = load(path)
        if not isinstance(decoder, cls):
            raise TypeError(f"{path} holds a {type(decoder).__name__}, not a {cls.__name__}")
        return decoder


@register_model("ridge_image_decoder")
class RidgeImageDecoder(_ImageDecoder):
    """Ridge regression from voxels to pixels, alpha chosen per pixel by cross-validation.

    Voxels are standardised; every pixel is regressed on them with
    :func:`braincoder.optimize.ridge.fit_ridge` (intercept, per-pixel alpha by ``cv``-fold
    cross-validation). Reconstructions are clipped to [0, 1].

    Parameters
    ----------
    alphas : sequence of float, default ``10 ** arange(-1, 7)``
        Candidate regularisation strengths.
    cv : int, default 5
        Folds of the cross-validation.

    Attributes
    ----------
    solution : RidgeSolution
        Weights (voxel × pixel), intercepts, chosen alphas, CV R².
    voxel_names : Index
        Voxels of the training data.

    Examples
    --------
    >>> from braincoder.datasets import simulate_image_fmri
    >>> from braincoder.models.image_decoders import RidgeImageDecoder
    >>> sim = simulate_image_fmri(n_voxels_per_area=(30, 20, 10))
    >>> decoder = RidgeImageDecoder().fit(sim.responses[:80], sim.images[:80])
    >>> decoder.reconstruct(sim.responses[80:85])[0].shape
    (5, 28, 28)
    """

    def __init__(self, alphas=_DEFAULT_ALPHAS, cv=5):
        self.alphas = tuple(float(a) for a in np.atleast_1d(alphas))
        self.cv = cv
        self.voxel_names = None

    def fit(self, fmri, images):
        """Fit the per-pixel ridge regressions.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns.
        images : array-like, shape (n_trials, height, width)
            Images in [0, 1].

        Returns
        -------
        RidgeImageDecoder
            ``self``.

        Raises
        ------
        ValueError
            For NaN, mismatched lengths or images of the wrong shape or range.
        """
        frame, images = self._fit_inputs(fmri, images)
        x = frame.to_numpy(dtype=np.float64)
        self.mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        cv = self.cv if len(self.alphas) > 1 else None
        self.solution = fit_ridge((x - self.mean) / self.scale, images.reshape(len(images), -1),
                                  alphas=self.alphas, cv=cv)
        return self

    def reconstruct(self, fmri):
        """Reconstruct images from voxel patterns.

        Parameters
        ----------
        fmri : DataFrame or array-like, shape (n_trials, n_voxels)
            Voxel patterns (the training voxels).

        Returns
        -------
        images : ndarray, shape (n_trials, height, width)
            Reconstructions clipped to [0, 1].
        frame : DataFrame, shape (n_trials, height · width)
            The same, flattened, indexed like ``fmri``.

        Raises
        ------
        RuntimeError
            If not fitted.
        ValueError
            For NaN or voxels differing from the training voxels.
        """
        frame = self._predict_inputs(fmri)
        x = (frame.to_numpy(dtype=np.float64) - self.mean) / self.scale
        return _output(self.solution.predict(x), self.image_shape, frame.index)


def _laplacian(height, width):
    """Dense discrete Laplacian (5-point stencil, mirrored borders) on a height × width grid."""

    def second_difference(n):
        d = -2.0 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
        if n > 1:
            d[0, 0] = d[-1, -1] = -1.0
        else:
            d[0, 0] = 0.0
        return d

    return np.kron(second_difference(height), np.eye(width)) + np.kron(
        np.eye(height), second_difference(width)
    )


def _prior_grid(values, what):
    grid = tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)))
    if not grid or not all(np.isfinite(v) and v >= 0 for v in grid):
        raise ValueError(f"{what} must be one or more finite values >= 0, got {values!r}")
    return grid


def _voxel_fit(r0, x, y):
    """Per-voxel gain, baseline (least squares of y on the drive R₀x) and noise variance."""
    drive = x @ r0.T  # trial × voxel
    dm, ym = drive.mean(axis=0), y.mean(axis=0)
    var = ((drive - dm) ** 2).sum(axis=0)
    gain = np.where(var > 0, ((drive - dm) * (y - ym)).sum(axis=0) / np.maximum(var, 1e-12),
                    0.0)
    baseline = ym - gain * dm
    residual = y - baseline - gain * drive
    noise = np.maximum(residual.var(axis=0), 1e-6 * max(y.var(), 1e-12))
    return gain, baseline, noise


class _Posterior:
    """Gaussian posterior of images given responses, for one choice of the priors."""

    def __init__(self, r0, x, y, prior_mean, lap_sq, smoothness, l2):
        gain, self.baseline, self.noise = _voxel_fit(r0, x, y)
        self.gain = gain
        self.r = gain[:, None] * r0  # voxel × pixel
        self.rt_si = self.r.T / self.noise  # pixel × voxel
        self.data_precision = self.rt_si @ self.r
        self.mean = x.mean(axis=0) if prior_mean == "training" else np.zeros(r0.shape[1])
        self.lap_sq = lap_sq
        self.factor = None
        self.set_prior(smoothness, l2)

    def set_prior(self, smoothness, l2):
        precision = self.data_precision + smoothness * self.lap_sq + l2 * np.eye(len(self.lap_sq))
        try:
            self.factor = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError as error:
            raise ValueError(
                f"the posterior precision is singular with smoothness={smoothness:g} and "
                f"l2={l2:g}; use l2 > 0"
            ) from error

    def solve(self, y):
        from scipy.linalg import cho_solve

        centred = y - self.baseline - self.mean @ self.r.T
        return self.mean + cho_solve((self.factor, True), self.rt_si @ centred.T).T


def _restore_posterior(arrays, image_shape, smoothness, l2):
    """Rebuild a fitted :class:`_Posterior` from saved arrays (see :meth:`_ImageDecoder.save`)."""
    post = _Posterior.__new__(_Posterior)
    post.gain, post.baseline, post.noise = arrays["gain"], arrays["baseline"], arrays["noise"]
    post.r, post.mean, post.factor = arrays["r"], arrays["mean"], arrays["factor"]
    post.rt_si = post.r.T / post.noise
    post.data_precision = post.rt_si @ post.r
    lap = _laplacian(*image_shape)
    post.lap_sq = lap.T @ lap
    return post


@register_model("prf_inversion_decoder")
class PRFInversionDecoder(_ImageDecoder):
    """MAP image under a fitted 2D pRF encoding model, Gaussian noise and a smooth prior.

    With :math:`R_0` the voxel × pixel receptive-field matrix from ``model.get_rf(parameters)``
    (amplitude × peak-1 Gaussian evaluated on the pixel grid), a block-averaged response is
    modelled as its steady state :math:`y = b + g \\odot (R_0 x) + \\varepsilon`: for blocks
    long compared with the HRF, HRF convolution followed by averaging over the block scales
    each voxel's neural drive by a constant, absorbed with the voxel's baseline into
    :math:`g` and :math:`b`, which :meth:`fit` estimates per voxel by least squares on the
    training trials (as are the noise variances :math:`\\Sigma = \\mathrm{diag}(\\sigma^2)`
    from the residuals). With :math:`R = \\mathrm{diag}(g) R_0` and :math:`L` the pixel-grid
    Laplacian (5-point stencil), the prior
    :math:`p(x) \\propto \\exp(-\\tfrac{\\lambda}{2}\\|L(x - m)\\|^2
    - \\tfrac{\\mu}{2}\\|x - m\\|^2)` gives the closed-form MAP image

    .. math::

        \\hat x = m + (R^\\top \\Sigma^{-1} R + \\lambda L^\\top L + \\mu I)^{-1}
        R^\\top \\Sigma^{-1} (y - b - R m)

    clipped to [0, 1], where :math:`m` is the mean training image (``prior_mean="training"``)
    or zero (``"zero"``, which gives :math:`(R^\\top \\Sigma^{-1} R + \\lambda L^\\top L +
    \\mu I)^{-1} R^\\top \\Sigma^{-1} (y - b)`). λ (``smoothness``) and μ (``l2``) are prior
    precisions in image units (pixel values in [0, 1]) while :math:`\\Sigma` carries the
    noise of the data, so the balance between data and prior follows the signal-to-noise
    ratio. Given several values, every pair is scored by ``cv``-fold cross-validation on the
    training trials (contiguous folds; gains, baselines and noise re-estimated on each
    training fold; mean squared pixel error of the held-out reconstructions) and the best
    pair is used. The closed form replaces gradient descent
    (:class:`braincoder.optimize.StimulusFitter`): the posterior is Gaussian, so the solution
    is exact and one Cholesky factorisation serves all trials.

    Parameters
    ----------
    model : GaussianPRF2D or GaussianPRF2DWithHRF
        The pRF model (its ``grid_coordinates`` define the pixels).
    parameters : DataFrame, shape (n_voxels, 5)
        Fitted (or true) pRF parameters indexed by voxel.
    smoothness : float or sequence of float, default (0, 1, 10, 100)
        Precision λ of the Laplacian prior (candidates when a sequence).
    l2 : float or sequence of float, default (0.1, 1, 10)
        Precision μ of the ridge prior (candidates when a sequence).
    prior_mean : {"training", "zero"}, default "training"
        Image the prior shrinks towards.
    cv : int, default 5
        Folds of the cross-validation of ``smoothness`` and ``l2`` (unused when both are
        single values).

    Attributes
    ----------
    gain, baseline, noise_variance : Series
        Per-voxel estimates of :meth:`fit` (all training trials).
    chosen_smoothness, chosen_l2 : float
        The prior precisions used.
    cv_mse : DataFrame or None
        Cross-validated pixel MSE of every (smoothness, l2) pair (rows smoothness, columns
        l2); None without a search.

    Examples
    --------
    >>> from braincoder.datasets import simulate_image_fmri
    >>> from braincoder.models import GaussianPRF2D
    >>> from braincoder.models.image_decoders import PRFInversionDecoder
    >>> sim = simulate_image_fmri(n_voxels_per_area=(30, 20, 10))
    >>> model = GaussianPRF2D(sim.grid_coordinates)
    >>> decoder = PRFInversionDecoder(model, sim.parameters)
    >>> decoder = decoder.fit(sim.responses[:80], sim.images[:80])
    >>> decoder.reconstruct(sim.responses[80:85])[0].shape
    (5, 28, 28)
    """

    def __init__(self, model, parameters, smoothness=(0.0, 1.0, 10.0, 100.0),
                 l2=(0.1, 1.0, 10.0), prior_mean="training", cv=5):
        if not hasattr(model, "get_rf"):
            raise TypeError(f"model must be a 2D pRF model with get_rf, got {type(model).__name__}")
        if prior_mean not in ("zero", "training"):
            raise ValueError(f"prior_mean must be 'zero' or 'training', got {prior_mean!r}")
        self.smoothness = _prior_grid(smoothness, "smoothness")
        self.l2 = _prior_grid(l2, "l2")
        if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
        self.model = model
        self.parameters = parameters
        self.prior_mean = prior_mean
        self.cv = int(cv)
        self.voxel_names = None
        self.cv_mse = None

    def _search(self, r0, x, y, lap_sq):
        """Cross-validated pixel MSE of every (smoothness, l2) pair."""
        n = len(x)
        if n < self.cv:
            raise ValueError(f"cv={self.cv} folds need at least {self.cv} trials, got {n}")
        bounds = np.linspace(0, n, self.cv + 1).astype(int)
        errors = np.zeros((len(self.smoothness), len(self.l2)))
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            held = np.zeros(n, dtype=bool)
            held[start:stop] = True
            posterior = None
            for i, smoothness in enumerate(self.smoothness):
                for j, l2 in enumerate(self.l2):
                    if posterior is None:
                        posterior = _Posterior(r0, x[~held], y[~held], self.prior_mean, lap_sq,
                                               smoothness, l2)
                    else:
                        posterior.set_prior(smoothness, l2)
                    recon = np.clip(posterior.solve(y[held]), 0.0, 1.0)
                    errors[i, j] += ((recon - x[held]) ** 2).sum()
        return pd.DataFrame(
            errors / x.size,
            index=pd.Index(self.smoothness, name="smoothness"),
            columns=pd.Index(self.l2, name="l2"),
        )

    def fit(self, fmri, images):
        """Estimate per-voxel gain, baseline and noise variance; choose and factorise the prior.

        Parameters
        ----------
        fmri : DataFrame, shape (n_trials, n_voxels)
            Block-averaged responses; columns must be the voxels of ``parameters``.
        images : array-like, shape (n_trials, height, width)
            Images in [0, 1]; ``height · width`` must equal the model's pixel count.

        Returns
        -------
        PRFInversionDecoder
            ``self``.

        Raises
        ------
        ValueError
            For NaN, mismatched lengths, voxels not in ``parameters``, a pixel count
            different from the model's grid, fewer trials than folds, or a singular
            posterior precision.
        """
        frame, images = self._fit_inputs(fmri, images)
        rf = self.model.get_rf_frame(parameters=self.parameters)
        frame = _check_voxels(frame, rf.shape[1], pd.Index(rf.columns), "pRF parameters")
        self.voxel_names = pd.Index(frame.columns)
        if int(np.prod(images.shape[1:])) != rf.shape[0]:
            raise ValueError(
                f"images have {int(np.prod(images.shape[1:]))} pixels but the model grid has "
                f"{rf.shape[0]}"
            )
        r0 = rf.to_numpy(dtype=np.float64).T  # voxel × pixel
        x = images.reshape(len(images), -1)
        y = frame.to_numpy(dtype=np.float64)
        lap = _laplacian(*images.shape[1:])
        lap_sq = lap.T @ lap
        if len(self.smoothness) * len(self.l2) > 1:
            self.cv_mse = self._search(r0, x, y, lap_sq)
            i, j = np.unravel_index(np.argmin(self.cv_mse.to_numpy()), self.cv_mse.shape)
            self.chosen_smoothness, self.chosen_l2 = self.smoothness[i], self.l2[j]
        else:
            self.cv_mse = None
            self.chosen_smoothness, self.chosen_l2 = self.smoothness[0], self.l2[0]
        self._posterior = _Posterior(r0, x, y, self.prior_mean, lap_sq,
                                     self.chosen_smoothness, self.chosen_l2)
        post = self._posterior
        self.gain = pd.Series(post.gain, index=self.voxel_names, name="gain")
        self.baseline = pd.Series(post.baseline, index=self.voxel_names, name="baseline")
        self.noise_variance = pd.Series(post.noise, index=self.voxel_names,
                                        name="noise_variance")
        return self

    def reconstruct(self, fmri):
        """MAP images for voxel patterns (closed form, clipped to [0, 1]).

        Parameters
        ----------
        fmri : DataFrame, shape (n_trials, n_voxels)
            Block-averaged responses of the training voxels.

        Returns
        -------
        images : ndarray, shape (n_trials, height, width)
            Reconstructions.
        frame : DataFrame, shape (n_trials, height · width)
            The same, flattened, indexed like ``fmri``.

        Raises
        ------
        RuntimeError
            If not fitted.
        ValueError
            For NaN or voxels differing from the training voxels.
        """
        frame = self._predict_inputs(fmri)
        flat = self._posterior.solve(frame.to_numpy(dtype=np.float64))
        return _output(flat, self.image_shape, frame.index)
