"""Simulated fMRI responses to stimuli described by embeddings (e.g. CLIP image embeddings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["simulate_embedding_fmri", "EmbeddingExperiment"]


@dataclass
class EmbeddingExperiment:
    """A simulated experiment: voxel responses to stimuli with known embeddings.

    Attributes
    ----------
    train_data, test_data : DataFrame, shape (n_stimuli · n_repeats, n_voxels)
        Responses, rows indexed by a MultiIndex (``stimulus``, ``repeat``), columns named
        ``voxel``. The test stimuli never occur in the training data.
    train_embeddings, test_embeddings : DataFrame, shape (n_stimuli, embedding_dim)
        Unit-norm stimulus embeddings indexed by ``stimulus``.
    clusters : Series
        Cluster (category) of every stimulus.
    noise_free : DataFrame, shape (n_stimuli, n_voxels)
        Noise-free response of every voxel to every stimulus (baseline included).
    projection : ndarray, shape (embedding_dim, rank)
        Random low-rank projection of the embeddings onto the latent features.
    voxel_weights : ndarray, shape (rank, n_voxels)
        Weights of the latent features in every voxel's drive.
    nuisance_loadings : ndarray, shape (nuisance_dim, n_voxels)
        Loadings of the stimulus-independent structured noise.
    config : dict
        The arguments of the simulation.
    """

    train_data: pd.DataFrame
    test_data: pd.DataFrame
    train_embeddings: pd.DataFrame
    test_embeddings: pd.DataFrame
    clusters: pd.Series
    noise_free: pd.DataFrame
    projection: np.ndarray
    voxel_weights: np.ndarray
    nuisance_loadings: np.ndarray
    config: dict = field(default_factory=dict)


def _unit(values):
    return values / np.linalg.norm(values, axis=-1, keepdims=True)


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def simulate_embedding_fmri(
    n_stimuli=200,
    embedding_dim=512,
    n_voxels=300,
    n_repeats=2,
    snr=1.0,
    n_clusters=10,
    test_fraction=0.2,
    nonlinearity=1.0,
    nuisance_dim=16,
    seed=0,
    rank=32,
    cluster_spread=1.0,
):
    """Simulate voxel responses to stimuli with clustered embeddings, split by stimulus.

    Stimulus embeddings lie on the unit sphere in clusters (categories of related stimuli)
    around a direction shared by all stimuli, as image embeddings of CLIP-like models do.
    Each voxel responds to a random low-rank projection of the embedding through a partly
    non-linear function, plus structured noise shared across voxels that does not depend on
    the stimulus (a nuisance subspace: motion, physiology), plus white noise.

    Parameters
    ----------
    n_stimuli : int, default 200
        Number of distinct stimuli.
    embedding_dim : int, default 512
        Dimension of the embeddings.
    n_voxels : int, default 300
        Number of voxels.
    n_repeats : int, default 2
        Presentations of every stimulus (independent noise each time).
    snr : float, default 1.0
        Variance of the stimulus-driven signal over the variance of the noise, per voxel;
        the noise is half nuisance, half white.
    n_clusters : int, default 10
        Number of stimulus clusters.
    test_fraction : float, default 0.2
        Fraction of stimuli held out for the test set (all their repeats).
    nonlinearity : float, default 1.0
        Weight of the non-linear term of each voxel's response; 0 gives a linear mapping.
    nuisance_dim : int, default 16
        Dimension of the nuisance subspace (0 for none).
    seed : int, default 0
        Seed of every random draw.
    rank : int, default 32
        Number of latent features (the rank of the embedding → voxel projection).
    cluster_spread : float, default 1.0
        Spread of the stimuli around their cluster centre (larger: clusters less tight).

    Returns
    -------
    EmbeddingExperiment
        Data, embeddings and ground truth.

    Raises
    ------
    ValueError
        For out-of-range arguments.

    Notes
    -----
    With embedding :math:`e` (unit norm), latent features :math:`z = P^\\top e`
    (standardised over stimuli) and three random read-outs of them per voxel,
    :math:`u_v = w_v^\\top z / \\sqrt{r}` (the drive) and :math:`g_v, h_v` (a gate and a
    gain), voxel :math:`v` responds with

    .. math:: s_v = u_v + \\lambda \\left(\\max(u_v, 0)^2 - c_v + \\max(g_v, 0)\\, h_v\\right)

    where :math:`\\lambda` is ``nonlinearity``, :math:`r` is ``rank`` and :math:`c_v` centres
    the rectified square. The signal is standardised per voxel and a random baseline is
    added; each presentation adds nuisance :math:`f^\\top L` (random factors :math:`f`,
    loadings :math:`L` spanning ``nuisance_dim`` dimensions) and white noise.

    Examples
    --------
    >>> from braincoder.datasets import simulate_embedding_fmri
    >>> sim = simulate_embedding_fmri(n_stimuli=20, embedding_dim=16, n_voxels=10, seed=1)
    >>> sim.train_data.shape, sim.test_embeddings.shape
    ((32, 10), (4, 16))
    """
    for name, value, minimum in [
        ("n_stimuli", n_stimuli, 4),
        ("embedding_dim", embedding_dim, 2),
        ("n_voxels", n_voxels, 1),
        ("n_repeats", n_repeats, 1),
        ("n_clusters", n_clusters, 1),
        ("nuisance_dim", nuisance_dim, 0),
        ("rank", rank, 1),
    ]:
        _check_int(value, name, minimum)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    n_test = int(round(test_fraction * n_stimuli))
    if not 2 <= n_test <= n_stimuli - 2:
        raise ValueError(
            f"test_fraction={test_fraction} leaves {n_test} test and {n_stimuli - n_test} "
            f"training stimuli; each side needs at least 2"
        )
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr!r}")
    if not nonlinearity >= 0:
        raise ValueError(f"nonlinearity must be >= 0, got {nonlinearity!r}")
    if not cluster_spread >= 0:
        raise ValueError(f"cluster_spread must be >= 0, got {cluster_spread!r}")
    config = {
        "n_stimuli": n_stimuli, "embedding_dim": embedding_dim, "n_voxels": n_voxels,
        "n_repeats": n_repeats, "snr": snr, "n_clusters": n_clusters,
        "test_fraction": test_fraction, "nonlinearity": nonlinearity,
        "nuisance_dim": nuisance_dim, "seed": seed, "rank": rank,
        "cluster_spread": cluster_spread,
    }
    rng = np.random.default_rng(seed)

    # Embeddings: a shared direction, cluster centres, stimulus-specific spread.
    shared = _unit(rng.normal(size=embedding_dim))
    centres = _unit(rng.normal(size=(n_clusters, embedding_dim)))
    cluster = rng.permutation(np.arange(n_stimuli) % n_clusters)
    spread = _unit(rng.normal(size=(n_stimuli, embedding_dim)))
    embeddings = _unit(0.5 * shared + centres[cluster] + cluster_spread * spread)

    # Latent features and voxel responses.
    projection = rng.normal(size=(embedding_dim, rank))
    latent = embeddings @ projection
    latent = (latent - latent.mean(0)) / latent.std(0)
    voxel_weights = rng.normal(size=(rank, n_voxels))
    drive = latent @ voxel_weights / np.sqrt(rank)
    gate = latent @ rng.normal(size=(rank, n_voxels)) / np.sqrt(rank)
    gain = latent @ rng.normal(size=(rank, n_voxels)) / np.sqrt(rank)
    rectified = np.maximum(drive, 0.0) ** 2
    signal = drive + nonlinearity * (
        rectified - rectified.mean(0) + np.maximum(gate, 0.0) * gain
    )
    signal = (signal - signal.mean(0)) / signal.std(0)
    baseline = rng.normal(loc=1.0, scale=0.5, size=n_voxels)
    noise_free = signal + baseline

    # Repeats: nuisance factors and white noise, per presentation.
    n_rows = n_stimuli * n_repeats
    noise_var = 1.0 / snr
    if nuisance_dim:
        loadings = rng.normal(size=(nuisance_dim, n_voxels))
        loadings *= np.sqrt(0.5 * noise_var / (loadings**2).sum(0))
        nuisance = rng.normal(size=(n_rows, nuisance_dim)) @ loadings
        white_var = 0.5 * noise_var
    else:
        loadings = np.zeros((0, n_voxels))
        nuisance = 0.0
        white_var = noise_var
    rows = np.repeat(np.arange(n_stimuli), n_repeats)
    responses = noise_free[rows] + nuisance + rng.normal(
        scale=np.sqrt(white_var), size=(n_rows, n_voxels)
    )

    width = len(str(n_stimuli - 1))
    stimulus_ids = pd.Index([f"s{i:0{width}d}" for i in range(n_stimuli)], name="stimulus")
    voxels = pd.Index(
        [f"voxel_{i:0{len(str(n_voxels - 1))}d}" for i in range(n_voxels)], name="voxel"
    )
    dims = pd.RangeIndex(embedding_dim, name="embedding_dimension")
    row_index = pd.MultiIndex.from_arrays(
        [stimulus_ids[rows], np.tile(np.arange(n_repeats), n_stimuli)],
        names=["stimulus", "repeat"],
    )
    data = pd.DataFrame(responses.astype(np.float32), index=row_index, columns=voxels)
    embedding_frame = pd.DataFrame(
        embeddings.astype(np.float32), index=stimulus_ids, columns=dims
    )

    test = np.zeros(n_stimuli, dtype=bool)
    test[rng.permutation(n_stimuli)[:n_test]] = True
    test_ids = stimulus_ids[test]
    test_rows = data.index.get_level_values("stimulus").isin(test_ids)
    return EmbeddingExperiment(
        train_data=data[~test_rows],
        test_data=data[test_rows],
        train_embeddings=embedding_frame[~test],
        test_embeddings=embedding_frame[test],
        clusters=pd.Series(cluster, index=stimulus_ids, name="cluster"),
        noise_free=pd.DataFrame(noise_free, index=stimulus_ids, columns=voxels),
        projection=projection,
        voxel_weights=voxel_weights,
        nuisance_loadings=loadings,
        config=config,
    )
