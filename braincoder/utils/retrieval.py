"""Retrieval metrics and stimulus alignment for decoders into an embedding space (plain numpy).

A decoder predicts one embedding per measured row (trial, repeat); each row carries the id of
the stimulus that was shown, as its index or as the ``stimulus`` level of a MultiIndex. The
functions here align those rows with a table of stimulus embeddings (one row per stimulus,
indexed by stimulus id) and score the predictions: top-k retrieval among candidate stimuli,
mean cosine similarity, n-way identification, and the CLIP-style contrastive loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .formatting import to_frame
from .labels import is_unlabelled
from .metrics import n_way_identification
from .validation import check_finite, format_labels

__all__ = [
    "retrieval_accuracy",
    "embedding_similarity",
    "contrastive_loss_numpy",
    "format_embeddings",
    "stimulus_labels",
    "align_embeddings",
    "check_disjoint_stimuli",
]

STIMULUS = "stimulus"
EMBEDDING_DIMENSION = "embedding_dimension"
# Two unit-normalised targets whose cosine exceeds this are the same stimulus (a positive pair).
SAME_TARGET_COSINE = 1.0 - 1e-4


def stimulus_labels(index, what="data"):
    """Return the stimulus id of every row of a frame's index.

    Parameters
    ----------
    index : Index
        Row index. A MultiIndex must have a level named ``stimulus``; any other index is
        taken to hold the stimulus ids directly (repeated ids mark repeats).
    what : str, default "data"
        Name of the input for the message.

    Returns
    -------
    Index
        One stimulus id per row.

    Raises
    ------
    ValueError
        If a MultiIndex has no ``stimulus`` level.
    """
    if isinstance(index, pd.MultiIndex):
        if STIMULUS not in index.names:
            raise ValueError(
                f"{what} has a MultiIndex with levels {list(index.names)}; one level must be "
                f"named {STIMULUS!r} and hold the stimulus ids"
            )
        return index.get_level_values(STIMULUS)
    return index


def format_embeddings(embeddings, what="embeddings", index=None):
    """Return stimulus embeddings as a finite float frame with unique ids and non-zero rows.

    Parameters
    ----------
    embeddings : DataFrame or array-like, shape (n_stimuli, embedding_dim)
        One embedding per stimulus, indexed by stimulus id. Arrays get the ids
        ``0 … n_stimuli − 1`` (or ``index``) and columns ``0 … embedding_dim − 1``.
    what : str, default "embeddings"
        Name of the input for the message.
    index : Index, optional
        Stimulus ids for array input.

    Returns
    -------
    DataFrame
        The caller's frame, or a labelled frame for array input.

    Raises
    ------
    ValueError
        If a value is NaN or infinite, a row has zero norm, or a stimulus id repeats (each
        message names the stimuli).
    """
    frame = to_frame(
        embeddings, what, index_name=STIMULUS, columns_name=EMBEDDING_DIMENSION, index=index
    )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {frame.shape})")
    check_finite(frame, what)
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise ValueError(
            f"{what}: stimulus ids must be unique (one embedding per stimulus); repeated ids "
            f"{format_labels(duplicated.unique())}"
        )
    norms = np.linalg.norm(frame.to_numpy(dtype=np.float64), axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{what}: {zero.size} embedding{'s' if zero.size > 1 else ''} with zero norm "
            f"(stimulus {format_labels(frame.index[zero])}); cosine similarity is undefined"
        )
    return frame


def align_embeddings(data_index, embeddings, data_name="data", embeddings_name="embeddings"):
    """Map every data row to the row of its stimulus in ``embeddings``.

    Parameters
    ----------
    data_index : Index
        Row index of the data (stimulus ids, or a MultiIndex with a ``stimulus`` level).
    embeddings : DataFrame
        Embeddings indexed by stimulus id (see :func:`format_embeddings`).
    data_name, embeddings_name : str
        Names used in the message.

    Returns
    -------
    ndarray of int, shape (n_rows,)
        Position in ``embeddings`` of each data row's stimulus.

    Raises
    ------
    ValueError
        If some stimulus ids of the data have no embedding; the message names them.
    """
    labels = stimulus_labels(data_index, data_name)
    positions = embeddings.index.get_indexer(labels)
    missing = labels[positions < 0]
    if len(missing):
        unique = pd.unique(np.asarray(missing))
        raise ValueError(
            f"{data_name} and {embeddings_name} do not align: {len(unique)} stimulus id"
            f"{'s' if len(unique) > 1 else ''} of {data_name} ha{'ve' if len(unique) > 1 else 's'}"
            f" no embedding ({format_labels(unique)}); {embeddings_name} has ids such as "
            f"{format_labels(embeddings.index[:3])}"
        )
    return positions


def check_disjoint_stimuli(train_index, test_index, train_name="training data",
                           test_name="test data"):
    """Raise if a held-out stimulus also occurs in the training rows.

    Parameters
    ----------
    train_index, test_index : Index
        Row indices (stimulus ids, or MultiIndex with a ``stimulus`` level).
    train_name, test_name : str
        Names used in the message.

    Raises
    ------
    ValueError
        If the two sets of stimulus ids overlap; the message names the shared ids.
    """
    train = pd.Index(stimulus_labels(train_index, train_name)).unique()
    test = pd.Index(stimulus_labels(test_index, test_name)).unique()
    shared = test[test.isin(train)]
    if len(shared):
        raise ValueError(
            f"a split by stimulus needs disjoint stimuli, but {len(shared)} stimulus id"
            f"{'s' if len(shared) > 1 else ''} of {test_name} also occur"
            f"{'' if len(shared) > 1 else 's'} in {train_name}: {format_labels(shared)}"
        )


def _unit_rows(values, what):
    values = np.asarray(values, dtype=np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(
            f"{what}: {zero.size} row{'s' if zero.size > 1 else ''} with zero norm "
            f"(first at position {int(zero[0])}); cosine similarity is undefined"
        )
    return values / norms


def _pred_frame(pred, what):
    frame = to_frame(pred, what, index_name=None)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {frame.shape})")
    check_finite(frame, what)
    return frame


def _true_positions(pred, candidates, true_index, pred_name, candidates_name):
    """Position in ``candidates`` of the true stimulus of every predicted row."""
    if pred.shape[1] != candidates.shape[1]:
        raise ValueError(
            f"{pred_name} has {pred.shape[1]} embedding dimensions but {candidates_name} has "
            f"{candidates.shape[1]}"
        )
    if true_index is not None:
        true_index = pd.Index(true_index)
        if len(true_index) != len(pred):
            raise ValueError(
                f"true_index must give one stimulus id per row of {pred_name} ({len(pred)}), "
                f"got {len(true_index)}"
            )
        return align_embeddings(true_index, candidates, "true_index", candidates_name)
    if is_unlabelled(pred.index) or is_unlabelled(candidates.index):
        if len(pred) != len(candidates):
            raise ValueError(
                f"{pred_name} ({len(pred)} rows) and {candidates_name} ({len(candidates)} rows) "
                "are matched by position, so they need the same number of rows; label the "
                "rows with stimulus ids or pass true_index"
            )
        return np.arange(len(pred))
    return align_embeddings(pred.index, candidates, pred_name, candidates_name)


def retrieval_accuracy(pred, candidates, k=(1, 5), true_index=None):
    """Top-k retrieval accuracy of predicted embeddings among candidate stimuli.

    For each predicted row, all candidates are ranked by cosine similarity to the
    prediction; the row counts as retrieved at ``k`` when fewer than ``k`` candidates are
    strictly more similar than its true stimulus (ties count in the row's favour).

    Parameters
    ----------
    pred : DataFrame or array-like, shape (n_rows, embedding_dim)
        Predicted embeddings (e.g. one per trial; repeats of a stimulus allowed).
    candidates : DataFrame or array-like, shape (n_candidates, embedding_dim)
        Candidate embeddings, one per stimulus, indexed by stimulus id.
    k : int or sequence of int, default (1, 5)
        Retrieval depths; each must be between 1 and ``n_candidates``.
    true_index : sequence, optional
        Stimulus id (a label of ``candidates``) of every predicted row. By default the
        rows of ``pred`` are matched to candidates by their index labels (the index, or its
        ``stimulus`` level); if either input carries no labels (arrays), row ``i`` of
        ``pred`` belongs to candidate ``i``.

    Returns
    -------
    dict
        ``{k: accuracy}`` for every requested ``k`` (chance is ``k / n_candidates``).

    Raises
    ------
    ValueError
        For mismatched dimensions, ids without a candidate, NaN values, zero-norm rows,
        or ``k`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.retrieval import retrieval_accuracy
    >>> candidates = np.eye(3)
    >>> pred = np.array([[1.0, 0.2, 0.0], [0.9, 0.5, 0.0], [0.0, 0.1, 1.0]])
    >>> retrieval_accuracy(pred, candidates, k=(1, 2))
    {1: 0.6666666666666666, 2: 1.0}
    """
    pred = _pred_frame(pred, "pred")
    candidates = format_embeddings(candidates, "candidates")
    ks = [k] if np.isscalar(k) else list(k)
    n_candidates = len(candidates)
    for depth in ks:
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
            raise TypeError(f"k must be integers, got {depth!r}")
        if not 1 <= depth <= n_candidates:
            raise ValueError(
                f"k must be between 1 and the number of candidates ({n_candidates}), got {depth}"
            )
    positions = _true_positions(pred, candidates, true_index, "pred", "candidates")
    similarity = _unit_rows(pred.to_numpy(), "pred") @ _unit_rows(
        candidates.to_numpy(), "candidates"
    ).T
    own = similarity[np.arange(len(pred)), positions]
    rank = (similarity > own[:, None]).sum(axis=1)
    return {int(depth): float(np.mean(rank < depth)) for depth in ks}


def embedding_similarity(pred, true, n_way=2):
    """Mean cosine similarity to the true embeddings and n-way identification accuracy.

    Parameters
    ----------
    pred : DataFrame or array-like, shape (n_rows, embedding_dim)
        Predicted embeddings, one per measured row.
    true : DataFrame or array-like, shape (n_stimuli, embedding_dim)
        True embeddings, one per stimulus, indexed by stimulus id. Rows are matched as in
        :func:`retrieval_accuracy` (by labels, or by position for unlabelled input).
    n_way : int, default 2
        Number of candidates in the identification test (chance ``1 / n_way``).

    Returns
    -------
    dict
        ``"mean_cosine"``: mean cosine between each predicted row and its true embedding;
        ``"n_way_accuracy"``: accuracy of
        :func:`braincoder.utils.n_way_identification` with ``metric="cosine"``;
        ``"n_way"``: ``n_way``.

    Raises
    ------
    ValueError
        For mismatched dimensions or labels, NaN values or zero-norm rows, or ``n_way``
        larger than the number of distinct stimuli.

    Notes
    -----
    When several predicted rows belong to the same stimulus (repeats), identification is
    scored on the mean of their unit-normalised predictions, so that a stimulus is never its
    own distractor; the mean cosine is over all rows.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.retrieval import embedding_similarity
    >>> true = np.eye(3)
    >>> embedding_similarity(true + 0.1, true)["n_way_accuracy"]
    1.0
    """
    pred = _pred_frame(pred, "pred")
    true = format_embeddings(true, "true")
    positions = _true_positions(pred, true, None, "pred", "true")
    pred_unit = _unit_rows(pred.to_numpy(), "pred")
    true_unit = _unit_rows(true.to_numpy(), "true")
    mean_cosine = float(np.mean(np.sum(pred_unit * true_unit[positions], axis=1)))
    stimuli, inverse = np.unique(positions, return_inverse=True)
    per_stimulus = np.zeros((len(stimuli), pred_unit.shape[1]))
    np.add.at(per_stimulus, inverse, pred_unit)
    accuracy = n_way_identification(true_unit[stimuli], per_stimulus, n=n_way, metric="cosine")
    return {"mean_cosine": mean_cosine, "n_way_accuracy": accuracy, "n_way": int(n_way)}


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def contrastive_loss_numpy(pred, target, temperature):
    """Symmetric InfoNCE (CLIP) loss of predicted against target embeddings, in float64.

    Rows and targets are L2-normalised; the logits are their cosine similarities divided by
    ``temperature``. The loss is the mean of the cross-entropy of each prediction over the
    targets and of each target over the predictions. Rows whose targets are identical
    (repeats of one stimulus) are all positives of one another: the cross-entropy then uses
    a target distribution spread uniformly over them, and with distinct targets this is the
    usual one-hot CLIP loss.

    Parameters
    ----------
    pred : array-like, shape (batch, embedding_dim)
        Predicted embeddings.
    target : array-like, shape (batch, embedding_dim)
        Target embedding of every row.
    temperature : float
        Softmax temperature (> 0).

    Returns
    -------
    float
        The loss.

    Raises
    ------
    ValueError
        For mismatched shapes, a non-positive temperature or zero-norm rows.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.utils.retrieval import contrastive_loss_numpy
    >>> x = np.eye(3)
    >>> bool(np.isclose(contrastive_loss_numpy(x, x, 1.0), np.log(1 + 2 / np.e)))
    True
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape (batch, embedding_dim); got "
            f"{pred.shape} and {target.shape}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    pred = _unit_rows(pred, "pred")
    target = _unit_rows(target, "target")
    logits = pred @ target.T / temperature
    positives = (target @ target.T > SAME_TARGET_COSINE).astype(np.float64)
    weights = positives / positives.sum(axis=1, keepdims=True)
    rows = -(weights * _log_softmax(logits)).sum(axis=1)
    columns = -(weights * _log_softmax(logits.T)).sum(axis=1)
    return float(0.5 * (rows.mean() + columns.mean()))
