"""Simulated image-evoked fMRI in V1–V3 (the digits 6 and 9 experiment of image decoding).

Each trial is a block showing one grey-scale image; voxels are Gaussian pRFs convolved with
the SPM HRF and their prediction is averaged over the block, giving one response per trial.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..stimuli import make_grid_coordinates

__all__ = [
    "simulate_image_fmri",
    "split_image_fmri",
    "load_digit_images",
    "image_hashes",
    "ImageFMRIExperiment",
]

_EXTENT = 5.0
_REST_SECONDS = 20.0
# pRF size (sd, degrees) ranges per visual area: receptive fields grow along the hierarchy.
_SD_RANGES = {"V1": (0.4, 0.9), "V2": (0.8, 1.5), "V3": (1.2, 2.2)}


@dataclass
class ImageFMRIExperiment:
    """Images shown on each trial and the simulated voxel responses.

    Attributes
    ----------
    images : ndarray, shape (n_trials, height, width)
        Stimulus images in [0, 1].
    responses : DataFrame, shape (n_trials, n_voxels)
        Block-averaged responses, index ``trial``, columns voxel names (``"V1_0001"``).
    labels : Series, shape (n_trials,)
        Class label of each image (the digit, 6 or 9, for the default images).
    parameters : DataFrame, shape (n_voxels, 5)
        True pRF parameters (``x, y, sd, baseline, amplitude``) indexed by voxel.
    areas : Series, shape (n_voxels,)
        Visual area of each voxel.
    grid_coordinates : DataFrame, shape (height · width, 2)
        Pixel positions in degrees.
    """

    images: np.ndarray
    responses: pd.DataFrame
    labels: pd.Series
    parameters: pd.DataFrame
    areas: pd.Series
    grid_coordinates: pd.DataFrame

    def subset(self, trials):
        """Return the experiment restricted to some trials (positions).

        Parameters
        ----------
        trials : array-like of int
            Trial positions to keep, in order.

        Returns
        -------
        ImageFMRIExperiment
            A new experiment sharing the voxels and grid.
        """
        trials = np.asarray(trials, dtype=int)
        return ImageFMRIExperiment(
            images=self.images[trials],
            responses=self.responses.iloc[trials],
            labels=self.labels.iloc[trials],
            parameters=self.parameters,
            areas=self.areas,
            grid_coordinates=self.grid_coordinates,
        )


def _upsampled_digits(grid_size):
    """All 1797 scikit-learn 8×8 digits in [0, 1], upsampled to ``grid_size`` (linear)."""
    images, labels = _upsampled_digits_cached(grid_size)
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=2)
def _upsampled_digits_cached(grid_size):
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the bundled digit images need scikit-learn: pip install braincoder[datasets]"
        ) from error
    from scipy import ndimage

    digits = load_digits()
    small = digits.images / 16.0
    zoom = grid_size / small.shape[1]
    images = np.stack([ndimage.zoom(image, zoom, order=1) for image in small])
    return np.clip(images, 0.0, 1.0), digits.target


def _default_images(grid_size):
    images, labels = _upsampled_digits(grid_size)
    keep = np.isin(labels, (6, 9))
    return images[keep], labels[keep]


def image_hashes(images):
    """Exact-content hashes of images (one per image), for checking that sets do not overlap.

    Images are compared as float32 arrays of shape (height, width) (a trailing channel
    axis of size one is dropped), so that the same image given as float64 or float32,
    with or without a channel axis, has the same hash.

    Parameters
    ----------
    images : array-like, shape (n, height, width) or (n, height, width, 1)
        Images.

    Returns
    -------
    list of str
        SHA-1 hex digest of each image's float32 bytes.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.datasets import image_hashes
    >>> a = np.zeros((2, 4, 4))
    >>> image_hashes(a) == image_hashes(a[..., None].astype(np.float32))
    True
    """
    import hashlib

    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim < 3:
        raise ValueError(f"images must have shape (n, height, width), got {array.shape}")
    array = np.ascontiguousarray(array)
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in array]


def load_digit_images(grid_size=28, classes=None, exclude=None):
    """Load the digit images bundled with scikit-learn, as a set of images without fMRI.

    These are the images from which :func:`simulate_image_fmri` draws its default
    stimuli (the same upsampling, so a stimulus and its source image are identical). They
    serve as the large unpaired image set on which the first VAE-GAN stage learns a visual
    prior (:meth:`braincoder.optimize.VAEGANTrainer.fit_vae_gan`).

    Parameters
    ----------
    grid_size : int, default 28
        Side of the images: the 8×8 digits are upsampled with linear interpolation and
        clipped to [0, 1].
    classes : sequence of int, optional
        Digits to keep (default: all ten, 1797 images).
    exclude : array-like, shape (n, grid_size, grid_size), optional
        Images to leave out (typically the test stimuli): every bundled image identical
        to one of them (exact float32 content, see :func:`image_hashes`) is dropped.

    Returns
    -------
    images : ndarray, shape (n_images, grid_size, grid_size)
        Images in [0, 1].
    labels : ndarray of int, shape (n_images,)
        The digit of each image.

    Raises
    ------
    ImportError
        Without scikit-learn.
    ValueError
        For a bad ``grid_size``, unknown classes or ``exclude`` of the wrong shape.

    Examples
    --------
    >>> from braincoder.datasets import load_digit_images
    >>> images, labels = load_digit_images()
    >>> images.shape
    (1797, 28, 28)
    """
    if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)) \
            or grid_size < 8:
        raise ValueError(f"grid_size must be an integer >= 8, got {grid_size!r}")
    images, labels = _upsampled_digits(int(grid_size))
    if classes is not None:
        classes = np.atleast_1d(np.asarray(classes))
        unknown = sorted(set(classes.tolist()) - set(range(10)))
        if unknown:
            raise ValueError(f"classes must be digits 0-9, got {unknown}")
        keep = np.isin(labels, classes)
        images, labels = images[keep], labels[keep]
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.float64)
        if exclude.ndim == 4 and exclude.shape[-1] == 1:
            exclude = exclude[..., 0]
        if exclude.ndim != 3 or exclude.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"exclude must have shape (n, {grid_size}, {grid_size}), got {exclude.shape}"
            )
        excluded = set(image_hashes(exclude))
        keep = np.array([h not in excluded for h in image_hashes(images)], dtype=bool)
        images, labels = images[keep], labels[keep]
    return images, labels


def _check_images(images):
    array = np.asarray(images, dtype=np.float64)
    if array.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"images hold {int((~np.isfinite(array)).sum())} non-finite values")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"images must lie in [0, 1], found values in [{array.min():.3g}, {array.max():.3g}]"
        )
    return array


def simulate_image_fmri(
    images=None,
    n_voxels_per_area=(400, 300, 200),
    areas=("V1", "V2", "V3"),
    grid_size=28,
    tr=2.5,
    block_duration=12.5,
    snr=1.0,
    n_trials=None,
    seed=0,
):
    """Simulate block-averaged V1–V3 responses to images.

    Every voxel is a :class:`~braincoder.models.GaussianPRF2DWithHRF` with the SPM HRF. pRF
    centres are uniform over 90 % of the field (±5°), sizes grow from V1 to V3 (sd uniform
    in 0.4–0.9°, 0.8–1.5° and 1.2–2.2°), peak responses (``amplitude · pixel area /
    (sd·√(2π))``) uniform in [0.5, 1.5] and baselines
    uniform in [−1, 1]. Each trial shows its image for ``block_duration`` seconds followed
    by 20 s of blank; the noise-free prediction is averaged over the block's TRs and
    Gaussian noise is added with standard deviation (per voxel) equal to the standard
    deviation of the noise-free responses across trials divided by ``snr``.

    Parameters
    ----------
    images : array-like, shape (n, height, width), optional
        Images in [0, 1]. By default the 8×8 digits 6 and 9 bundled with scikit-learn
        (361 images), upsampled to ``grid_size`` × ``grid_size`` with linear
        interpolation and clipped to [0, 1].
    n_voxels_per_area : sequence of int, default (400, 300, 200)
        Voxels in each area.
    areas : sequence of str, default ("V1", "V2", "V3")
        Area names (each must be one of V1, V2, V3).
    grid_size : int, default 28
        Side of the default images (ignored when ``images`` are given).
    tr : float, default 2.5
        Repetition time in seconds.
    block_duration : float, default 12.5
        Seconds each image is shown (rounded to whole TRs, at least one).
    snr : float, default 1.0
        Signal-to-noise ratio (standard deviations across trials); ``inf`` for no noise.
    n_trials : int, optional
        Number of trials: a random subset (seeded, kept in the images' order) of
        ``n_trials`` images, each shown once. By default every image is shown once. To
        simulate repeated presentations, pass the repeated images as ``images``.
    seed : int, default 0
        Seed of the pRF parameters, the noise and the trial subset.

    Returns
    -------
    ImageFMRIExperiment
        Images, responses, labels, true parameters, areas and grid coordinates.

    Raises
    ------
    ImportError
        If the default images are requested without scikit-learn installed.
    ValueError
        For images that are not (n, h, w) in [0, 1], unknown areas, ``n_trials`` larger
        than the number of images, or bad settings.

    Examples
    --------
    >>> from braincoder.datasets import simulate_image_fmri
    >>> sim = simulate_image_fmri(n_voxels_per_area=(20, 10, 5))
    >>> sim.images.shape, sim.responses.shape
    ((361, 28, 28), (361, 35))
    """
    from ..hrf import SPMHRFModel
    from ..models import GaussianPRF2DWithHRF

    areas = tuple(areas)
    counts = tuple(int(n) for n in n_voxels_per_area)
    if len(counts) != len(areas):
        raise ValueError(
            f"n_voxels_per_area has {len(counts)} entries but areas has {len(areas)}"
        )
    unknown = [area for area in areas if area not in _SD_RANGES]
    if unknown:
        raise ValueError(f"areas must be among {list(_SD_RANGES)}, got {unknown}")
    if any(n < 1 for n in counts):
        raise ValueError(f"n_voxels_per_area must be positive, got {counts}")
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr!r}")
    if not tr > 0 or not block_duration > 0:
        raise ValueError("tr and block_duration must be > 0")

    if images is None:
        images, labels = _default_images(int(grid_size))
    else:
        images = _check_images(images)
        labels = np.zeros(len(images), dtype=int)
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) \
                or n_trials < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
        if n_trials > len(images):
            raise ValueError(
                f"n_trials ({n_trials}) exceeds the {len(images)} available images; pass "
                "repeated images as images= to simulate repeated presentations"
            )
        keep = np.sort(np.random.default_rng([seed, 1]).permutation(len(images))[:n_trials])
        images, labels = images[keep], labels[keep]
    n_trials, height, width = images.shape
    grid = make_grid_coordinates((height, width), extent=_EXTENT)

    rng = np.random.default_rng(seed)
    names, rows, area_of = [], [], []
    for area, count in zip(areas, counts, strict=True):
        low, high = _SD_RANGES[area]
        xy = rng.uniform(-0.9 * _EXTENT, 0.9 * _EXTENT, size=(count, 2))
        sd = rng.uniform(low, high, size=count)
        baseline = rng.uniform(-1.0, 1.0, size=count)
        amplitude = rng.uniform(0.5, 1.5, size=count)
        rows.append(np.column_stack([xy, sd, baseline, amplitude]))
        names += [f"{area}_{i + 1:04d}" for i in range(count)]
        area_of += [area] * count
    voxels = pd.Index(names, name="voxel")
    parameters = pd.DataFrame(
        np.concatenate(rows), index=voxels, columns=["x", "y", "sd", "baseline", "amplitude"]
    )

    n_block = max(1, int(round(block_duration / tr)))
    n_rest = int(np.ceil(_REST_SECONDS / tr))
    per_trial = n_block + n_rest
    frames = np.zeros((n_trials, per_trial, height * width), dtype=np.float32)
    frames[:, :n_block] = images.reshape(n_trials, 1, -1)
    paradigm = frames.reshape(n_trials * per_trial, -1)

    model = GaussianPRF2DWithHRF(grid, hrf_model=SPMHRFModel(tr=tr))
    # Peak responses U(0.5, 1.5): the model's RFs are divided by sd·√(2π)/pixel area.
    parameters["amplitude"] *= parameters["sd"] * np.sqrt(2.0 * np.pi) / model.pixel_area
    prediction = model.predict(paradigm=paradigm, parameters=parameters).to_numpy()
    clean = prediction.reshape(n_trials, per_trial, -1)[:, :n_block].mean(axis=1)
    scale = clean.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    noise = rng.normal(size=clean.shape) * scale / snr if np.isfinite(snr) else 0.0
    trials = pd.RangeIndex(n_trials, name="trial")
    responses = pd.DataFrame(clean + noise, index=trials, columns=voxels)
    return ImageFMRIExperiment(
        images=images,
        responses=responses,
        labels=pd.Series(labels, index=trials, name="label"),
        parameters=parameters,
        areas=pd.Series(area_of, index=voxels, name="area"),
        grid_coordinates=grid,
    )


def _stratified(labels, n_total, test_fraction, rng):
    """Positions (train, test) with both classes balanced as far as possible."""
    classes = np.unique(labels)
    n_test = int(round(test_fraction * n_total))
    train, test = [], []
    for k, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        share = n_total // len(classes) + (k < n_total % len(classes))
        share_test = n_test // len(classes) + (k < n_test % len(classes))
        chosen = members[:share]
        test.append(chosen[:share_test])
        train.append(chosen[share_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def split_image_fmri(dataset, setting="reference", seed=0, n_train=None):
    """Split a simulated image experiment into training and test trials.

    Parameters
    ----------
    dataset : ImageFMRIExperiment
        Output of :func:`simulate_image_fmri`.
    setting : {"reference", "large"}, default "reference"
        ``"reference"``: 100 trials (balanced over labels) split 90/10, as in the original
        6-and-9 experiment; ``"large"``: all trials split 80/20. Both splits are
        stratified by label.
    seed : int, default 0
        Seed of the trial selection.
    n_train : int, optional
        Number of training trials, keeping the test trials of ``setting``: fewer than the
        setting's training trials gives a random subset of them; more (``"reference"``
        only) adds random trials from outside the 100 of the reference split. Training
        sets of one seed are nested (the smaller is a subset of the larger), so that
        decoders can be compared on the same test trials as training data grow. By
        default the setting's training trials.

    Returns
    -------
    train, test : ImageFMRIExperiment
        The two subsets.

    Raises
    ------
    ValueError
        For an unknown setting, too few trials or an ``n_train`` larger than the trials
        outside the test set.

    Examples
    --------
    >>> from braincoder.datasets import simulate_image_fmri, split_image_fmri
    >>> sim = simulate_image_fmri(n_voxels_per_area=(10, 10, 10))
    >>> train, test = split_image_fmri(sim)
    >>> len(train.images), len(test.images)
    (90, 10)
    """
    if setting not in ("reference", "large"):
        raise ValueError(f"setting must be 'reference' or 'large', got {setting!r}")
    if not isinstance(dataset, ImageFMRIExperiment):
        raise TypeError(f"dataset must be an ImageFMRIExperiment, got {type(dataset).__name__}")
    labels = dataset.labels.to_numpy()
    n_available = len(labels)
    if setting == "reference":
        n_total, test_fraction = 100, 0.1
        if n_available < n_total:
            raise ValueError(f"the reference split needs 100 trials, the dataset has {n_available}")
    else:
        n_total, test_fraction = n_available, 0.2
        if n_available < 5:
            raise ValueError(f"the large split needs at least 5 trials, got {n_available}")
    rng = np.random.default_rng(seed)
    train, test = _stratified(labels, n_total, test_fraction, rng)
    if n_train is not None:
        if setting == "reference":
            rest = np.setdiff1d(np.arange(n_available), np.concatenate([train, test]))
        else:
            rest = np.array([], dtype=int)
        n_max = len(train) + len(rest)
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) \
                or not 1 <= n_train <= n_max:
            raise ValueError(
                f"n_train must be an integer in [1, {n_max}] for the {setting!r} split of "
                f"{n_available} trials, got {n_train!r}"
            )
        order = np.concatenate([rng.permutation(train), rng.permutation(rest)])
        train = np.sort(order[:n_train])
    return dataset.subset(train), dataset.subset(test)
