"""WeightFitter: closed-form (ridge) weights from a model's basis predictions to the data."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from ..utils.formatting import format_data, series_by_voxel
from ..utils.stats import get_rsq
from ..utils.validation import check_same_index, constant_columns, warn_constant
from ._distributed import check_client, weights_task
from .ridge import RidgeSolution, fit_ridge

__all__ = ["WeightFitter"]

#: Voxels solved together by default.
DEFAULT_CHUNK_VOXELS = 10_000

logger = logging.getLogger(__name__)


class WeightFitter:
    """Closed-form solver for voxel weights given fixed basis-function parameters.

    The model's basis predictions ``X`` (time × basis function; for linear models the
    paradigm itself, HRF-convolved where the model has an HRF) are mapped to the data
    ``Y`` (time × voxel) by ridge regression, with one alpha for all voxels or an alpha
    chosen per voxel by k-fold cross-validation.

    Parameters
    ----------
    model : EncodingModel
        The encoding model.
    parameters : DataFrame or None
        Basis-function parameters (basis × parameter). For :class:`LinearModelWithBaseline`
        the per-voxel baselines (voxel × ``baseline``), subtracted from the data; ``None``
        for :class:`LinearModel`.
    data : DataFrame or array-like, shape (n_timepoints, n_voxels)
        Measured responses.
    paradigm : DataFrame or array-like, shape (n_timepoints, n_dimensions)
        Stimulus per time point.
    client : distributed.Client, optional
        Solve the voxel chunks as tasks on this Dask cluster (needs ``braincoder[dask]``);
        results equal those without a client. ``None`` solves them in this process.

    Attributes
    ----------
    weights : DataFrame, shape (n_basis, n_voxels)
        Fitted weights (after :meth:`fit`).
    alphas : Series
        Alpha used for each voxel.
    cv_r2 : Series
        Cross-validated R² per voxel (NaN without cross-validation).
    r2 : Series
        In-sample R² per voxel.
    predictions : DataFrame
        Predictions of the fitted weights (time × voxel).

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import LinearModel
    >>> from braincoder.optimize import WeightFitter
    >>> rng = np.random.default_rng(0)
    >>> paradigm = rng.normal(size=(100, 3))
    >>> data = paradigm @ np.array([[1.0], [0.0], [-1.0]])
    >>> fitter = WeightFitter(LinearModel(), None, data, paradigm)
    >>> (fitter.fit().round(6) + 0.0).iloc[:, 0].tolist()
    [1.0, 0.0, -1.0]
    """

    def __init__(self, model, parameters, data, paradigm, client=None):
        self.client = check_client(client)
        self.model = model
        self.data = format_data(data)
        self.paradigm = model.get_paradigm(paradigm)
        check_same_index(self.data, self.paradigm, "data", "paradigm")
        self.parameters = model.resolve_parameters(parameters)
        self.weights = None
        self.alphas = None
        self.cv_r2 = None
        self.r2 = None
        self.predictions = None

    def fit(self, alpha=0.0, cv=None, chunk_size=None):
        """Solve for weights by (ridge-regularised) least squares.

        Parameters
        ----------
        alpha : float or sequence of float, default 0.0
            Ridge penalty on the squared weights. A sequence gives candidates chosen per
            voxel by cross-validation.
        cv : int or iterable of (train, test) index arrays, optional
            Number of contiguous folds (default 5 when several alphas are given), or folds.
        chunk_size : int, optional
            Voxels solved together (one Dask task each with a ``client``); default 10000.

        Returns
        -------
        DataFrame, shape (n_basis, n_voxels)
            The weights (also stored as :attr:`weights`).
        """
        design, offset = self.model.weight_design(self.paradigm, self.parameters)
        target = self.data.to_numpy(np.float64)
        if offset is not None:
            if offset.shape[0] != target.shape[1]:
                raise ValueError(
                    f"parameters have {offset.shape[0]} voxel baselines but data has "
                    f"{target.shape[1]} voxels"
                )
            target = target - offset[None, :]
        constant = constant_columns(self.data)
        if len(constant):
            warn_constant(constant)
        solution = self._solve_chunks(design, target, alpha, cv, chunk_size)
        voxels = self.data.columns
        basis = self.model.weight_index(self.paradigm, self.parameters)
        self.weights = pd.DataFrame(solution.weights, index=basis, columns=voxels)
        self.alphas = series_by_voxel(solution.alphas, voxels, "alpha")
        cv_r2 = solution.cv_r2.copy()
        cv_r2[np.isin(voxels, constant)] = np.nan
        self.cv_r2 = series_by_voxel(cv_r2, voxels, "cv_r2")
        self.predictions = self.model.predict(
            self.paradigm, self.parameters, self.weights
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant voxels warned above
            self.r2 = get_rsq(self.data, self.predictions)
        logger.info("fitted weights for %d voxels (median R² %.3f)", len(voxels),
                    np.nanmedian(self.r2) if np.isfinite(self.r2).any() else np.nan)
        return self.weights

    def _solve_chunks(self, design, target, alpha, cv, chunk_size):
        """Ridge solutions of the voxel chunks (in this process or as Dask tasks), joined."""
        size = DEFAULT_CHUNK_VOXELS if chunk_size is None else int(chunk_size)
        if size < 1:
            raise ValueError(f"chunk_size must be a positive number of voxels, got {chunk_size}")
        if cv is not None and not isinstance(cv, (int, np.integer)):
            cv = [(np.asarray(train), np.asarray(test)) for train, test in cv]
        alphas = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
        n_voxels = target.shape[1]
        chunks = [slice(start, start + size) for start in range(0, max(n_voxels, 1), size)]
        # The whole problem is checked here, so bad input fails before any task is sent.
        fit_ridge(design, target[:, :0], alphas=alphas, cv=cv, fit_intercept=False)
        if not np.isfinite(target).all():
            fit_ridge(design, target, alphas=alphas, cv=cv, fit_intercept=False)
        parts = {}

        def arguments(number):
            return (np.ascontiguousarray(target[:, chunks[number]]), alphas.tolist(), cv)

        if self.client is None:
            for number in range(len(chunks)):
                parts[number] = weights_task(design, *arguments(number))
        else:
            from ._distributed import run_tasks, scatter

            run_tasks(self.client, weights_task, scatter(self.client, [design]), arguments,
                      range(len(chunks)), parts.__setitem__, "weights")
        order = range(len(chunks))
        return RidgeSolution(
            weights=np.concatenate([parts[i]["weights"] for i in order], axis=1),
            intercept=np.zeros(n_voxels),
            alphas=np.concatenate([parts[i]["alphas"] for i in order]),
            cv_r2=np.concatenate([parts[i]["cv_r2"] for i in order]),
        )
