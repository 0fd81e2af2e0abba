"""The iterative part of :class:`~braincoder.optimize.ParameterFitter` (LM and Adam)."""

from __future__ import annotations

import logging
import warnings

import keras
import numpy as np
import pandas as pd

from ..utils.formatting import series_by_voxel, to_frame
from ..utils.validation import (
    check_choice,
    check_finite,
    check_names,
    check_optimizer_kwargs,
    check_same_index,
    format_labels,
    warn_constant,
)
from ._bounds import parameter_bounds
from ._checkpoint import ChunkCheckpoint, fingerprint
from ._chunks import FitSettings, fit_chunk_adam, fit_chunk_lm
from ._monitor import FitMonitor, resolve_log_dir

logger = logging.getLogger(__name__)


def _to_unbounded(model, theta):
    """Natural → unbounded parameters (numpy), column by column."""
    transforms = list(model.get_parameter_transforms().values())
    out = np.empty_like(theta, dtype=np.float64)
    for column, transform in enumerate(transforms):
        out[:, column] = transform.backward_numpy(theta[:, column])
    return out.astype(np.float32)


class FitMixin:
    """``fit`` and result accessors of :class:`ParameterFitter`."""

    def fit(self, max_n_iterations=1000, min_n_iterations=100, init_pars=None, confounds=None,
            optimizer=None, fixed_pars=None, shared_pars=None, noise_model="ssq",
            store_intermediate_parameters=False, r2_atol=1e-6, lag=100, learning_rate=0.01,
            progressbar=True, method=None, checkpoint_dir=None, **adam_kwargs):
        """Estimate per-voxel parameters by iterative optimisation.

        Parameters
        ----------
        max_n_iterations : int, default 1000
            Maximum LM iterations or Adam steps.
        min_n_iterations : int, default 100
            Adam: steps before early stopping may stop the fit.
        init_pars : DataFrame, optional
            Voxel × parameter starting values (default: the last :meth:`fit_grid` result).
        confounds : DataFrame, shape (n_timepoints, n_confounds), optional
            Regressors projected out of data and predictions (closed form, every step).
        optimizer : keras.optimizers.Optimizer, optional
            Any Keras 3 optimizer for ``method='adam'`` (default Adam).
        fixed_pars : list of str, optional
            Parameters held at their ``init_pars`` values.
        shared_pars : list of str, optional
            Parameters with one value shared by all voxels (starting from the mean of
            ``init_pars``).
        noise_model : {"ssq", "gaussian"}, default "ssq"
            ``"ssq"`` minimises the sum of squared residuals; ``"gaussian"`` a per-voxel
            Gaussian negative log-likelihood with a free variance σ² per voxel (same
            optimum; exposed as :attr:`estimated_sigma2`). The Gaussian likelihood divides
            each voxel's gradient by its noise variance, so with first-order optimizers
            (e.g. SGD) voxels whose scales differ by orders of magnitude converge together;
            Adam already normalises every entry's gradient, so there both take the same
            path. Levenberg–Marquardt solves each voxel separately and is unaffected.
        store_intermediate_parameters : bool, default False
            Keep the parameters of every step (Adam) or iteration (LM).
        r2_atol : float, default 1e-6
            Convergence tolerance on R². Adam: stop when the mean best R² improved less
            than this over the last ``lag`` steps (after ``min_n_iterations``). LM: a voxel
            converges when an accepted step gains less than this in R².
        lag : int, default 100
            Adam: window of the early-stopping rule.
        learning_rate : float, default 0.01
            Adam learning rate.
        progressbar : bool, default True
            Show a tqdm bar (step, mean R², best R²).
        method : {"lm", "adam"}, optional
            Batched Levenberg–Marquardt (default) or gradient descent with ``optimizer``.
        checkpoint_dir : str or path, optional
            Save every finished voxel chunk there (``.npz``, no pickle) and, when the same
            fit (same data, starting values, paradigm, model, settings and memory limit) is
            run again with this directory, load the finished chunks instead of fitting them:
            a fit stopped by Ctrl-C, a crash or a time limit resumes where it was. An
            interrupted chunk is not saved. Intermediate parameters are not checkpointed.
        **adam_kwargs
            Passed to ``keras.optimizers.Adam`` (only without ``optimizer``); an unknown
            keyword raises ``TypeError``.

        Returns
        -------
        DataFrame
            Voxel × parameter estimates (also :attr:`estimated_parameters`).

        Raises
        ------
        ValueError
            For unknown, fixed-and-shared or badly shaped parameters, or a
            ``checkpoint_dir`` that holds the chunks of a different fit.
        TypeError
            For unknown optimizer keywords.
        """
        noise_model = check_choice(noise_model, ("ssq", "gaussian"), "noise_model")
        if method is None:
            method = "adam" if optimizer is not None or adam_kwargs else "lm"
        method = check_choice(method, ("lm", "adam"), "method")
        if adam_kwargs and optimizer is not None:
            raise TypeError(f"fit() got optimizer and Adam keywords {format_labels(adam_kwargs)}; "
                            "configure the optimizer instead")
        if method == "adam" and optimizer is None:
            check_optimizer_kwargs(adam_kwargs, keras.optimizers.Adam, "fit")
        elif adam_kwargs:
            raise TypeError(f"fit() got unexpected keyword arguments {format_labels(adam_kwargs)}")
        labels = self.labels
        fixed = check_names(fixed_pars, labels, "fixed_pars")
        shared = check_names(shared_pars, labels, "shared_pars")
        overlap = set(fixed) & set(shared)
        if overlap:
            raise ValueError(
                f"parameters {format_labels(sorted(overlap))} are both fixed and shared"
            )
        init = self._init_frame(init_pars, "init_pars")
        for label in shared:
            init[label] = init[label].mean()
        lower, upper = parameter_bounds(self.model)
        free = [i for i, label in enumerate(labels) if label not in fixed and label not in shared]
        theta0 = init.to_numpy(np.float64).copy()
        # Bounds never exclude the caller's starting values (e.g. the grid's smallest size),
        # so the fit cannot end worse than where it started.
        usable_rows = ~np.isin(self.data.columns, self.constant_voxels)
        if usable_rows.any():
            lower = np.minimum(lower, theta0[usable_rows].min(axis=0))
            upper = np.maximum(upper, theta0[usable_rows].max(axis=0))
        theta0 = theta0.astype(np.float32)
        shared_columns = [labels.index(label) for label in shared]
        projector = self._projector(confounds)

        voxels = self.data.columns
        usable = ~np.isin(voxels, self.constant_voxels)
        if (~usable).any():
            warn_constant(voxels[~usable])
        y_all = self.data.to_numpy(np.float32)
        if projector is not None:
            y_all = (projector @ y_all).astype(np.float32)
        sst_all = ((y_all - y_all.mean(0)) ** 2).sum(0).astype(np.float64)

        run_dir = resolve_log_dir(self.log_dir)
        self.log_run_dir = run_dir
        monitor = FitMonitor(run_dir, max_n_iterations, progressbar, f"fit ({method})")

        def make_optimizer():
            if optimizer is None:
                return keras.optimizers.Adam(learning_rate=learning_rate, **adam_kwargs)
            return type(optimizer).from_config(optimizer.get_config())

        settings = FitSettings(
            model=self.model, predict=self._predict, free_columns=free,
            shared_columns=shared_columns, lower=lower, upper=upper, projector=projector,
            noise_model=noise_model, max_n_iterations=int(max_n_iterations),
            min_n_iterations=int(min_n_iterations), r2_atol=float(r2_atol), lag=int(lag),
            store_intermediate=bool(store_intermediate_parameters),
            make_optimizer=make_optimizer, monitor=monitor, solver_cache=self._solver_cache,
            linear=self._linear, labels=list(labels),
        )
        members = np.flatnonzero(usable)
        n_timepoints, n_pixels = self.paradigm.shape
        n_free = max(len(free), len(shared_columns), 1)
        per_voxel = 4 * (2 * (n_free + 1) * (n_pixels + n_timepoints) + 4 * n_timepoints)
        chunk = len(members) if shared else self._voxel_chunk_size(per_voxel)
        checkpoint = None
        if checkpoint_dir is not None:
            key = fingerprint(
                [y_all, theta0, self.paradigm.to_numpy(np.float32), members],
                dict(method=method, noise_model=noise_model, fixed=fixed, shared=shared,
                     max_n_iterations=int(max_n_iterations),
                     min_n_iterations=int(min_n_iterations), r2_atol=float(r2_atol),
                     lag=int(lag), learning_rate=float(learning_rate), chunk=int(chunk),
                     optimizer=None if optimizer is None else optimizer.get_config(),
                     adam_kwargs=adam_kwargs, model=type(self.model).__name__,
                     model_config=self._model_description(),
                     voxels=[str(v) for v in voxels]),
            )
            checkpoint = ChunkCheckpoint(checkpoint_dir, key)
        self.resumed_chunks = 0
        theta = theta0.copy()
        sse = np.full(len(voxels), np.nan)
        sigma2 = np.full(len(voxels), np.nan)
        frozen = np.zeros(len(voxels), bool)
        converged = np.zeros(len(voxels), bool)
        intermediate = []
        reasons, iterations = [], []
        try:
            for number, start in enumerate(range(0, max(len(members), 1), max(chunk, 1))):
                index = members[start : start + chunk]
                if index.size == 0:
                    break
                result = None if checkpoint is None else checkpoint.load(number, index)
                if result is not None:
                    self.resumed_chunks += 1
                else:
                    y, sst = y_all[:, index], sst_all[index]
                    if method == "lm":
                        result = fit_chunk_lm(y, theta0[index], sst, settings)
                    else:
                        unbounded = _to_unbounded(self.model, theta0[index])
                        result = fit_chunk_adam(y, unbounded, sst, settings)
                    if checkpoint is not None and result.stop_reason != "interrupted":
                        checkpoint.save(number, index, result)
                theta[index] = result.theta
                if shared_columns:  # one value, exactly (vectorised transforms differ by an ulp)
                    theta[index[:, None], shared_columns] = result.theta[0, shared_columns]
                sse[index] = result.sse
                frozen[index] = result.frozen
                converged[index] = result.converged
                if result.sigma2 is not None:
                    sigma2[index] = result.sigma2
                reasons.append(result.stop_reason)
                iterations.append(result.n_iterations)
                intermediate.extend((step, index, values) for step, values in result.intermediate)
                if result.stop_reason == "interrupted":
                    break
        finally:
            monitor.close()
        if self.resumed_chunks:
            logger.info("resumed %d finished chunks from %s", self.resumed_chunks, checkpoint_dir)
        self._store_fit(theta, sse, sigma2, noise_model, usable, frozen, converged, reasons,
                        iterations, intermediate, monitor, run_dir)
        return self.estimated_parameters

    def _model_description(self):
        """JSON text of the model's specification (without values), or its class name."""
        to_json = getattr(self.model, "to_json", None)
        try:
            return to_json(include_values=False) if to_json else type(self.model).__name__
        except (TypeError, ValueError):
            return type(self.model).__name__

    def _projector(self, confounds):
        if confounds is None:
            return None
        frame = to_frame(confounds, "confounds", index_name="time", columns_name="confound")
        check_same_index(self.data, frame, "data", "confounds")
        check_finite(frame, "confounds")
        design = frame.to_numpy(np.float64)
        return (np.eye(len(design)) - design @ np.linalg.pinv(design)).astype(np.float32)

    def _store_fit(self, theta, sse, sigma2, noise_model, usable, frozen, converged, reasons,
                   iterations, intermediate, monitor, run_dir):
        voxels = self.data.columns
        labels = self.labels
        frame = pd.DataFrame(theta.astype(np.float64), index=voxels,
                             columns=pd.Index(labels, name="parameter"))
        self.estimated_parameters = frame
        self.predictions = self.get_predictions(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant voxels warned already
            self.r2 = self.get_rsq()
        n_timepoints = self.data.shape[0]
        if noise_model == "ssq" or np.isnan(sigma2[usable]).all():
            residuals = self.get_residuals().to_numpy()
            sigma2 = (residuals**2).mean(0)
        sigma2 = np.where(usable, sigma2, np.nan)
        self.estimated_sigma2 = series_by_voxel(sigma2, voxels, "sigma2")
        self.frozen_voxels = voxels[frozen]
        if frozen.any():
            warnings.warn(
                f"{frozen.sum()} voxels had a non-finite loss and were frozen at their best "
                f"parameters: {format_labels(voxels[frozen])}",
                RuntimeWarning,
                stacklevel=3,
            )
        self.n_iterations = int(max(iterations)) if iterations else 0
        self.n_converged = int(converged.sum())
        self.stop_reason = "; ".join(sorted(set(reasons))) if reasons else "no voxel to fit"
        logger.info("fit stopped after %d iterations (%s); %d of %d voxels converged; "
                    "median R² %.4f", self.n_iterations, self.stop_reason, self.n_converged,
                    int(usable.sum()), float(np.nanmedian(self.r2)) if usable.any() else np.nan)
        self.intermediate_parameters = None
        if intermediate:
            rows = {}
            for step, index, values in intermediate:
                row = rows.setdefault(step, np.full((len(voxels), len(labels)), np.nan))
                row[index] = values
            columns = pd.MultiIndex.from_product([labels, voxels], names=["parameter", "voxel"])
            self.intermediate_parameters = pd.DataFrame(
                [rows[step].T.ravel() for step in sorted(rows)],
                index=pd.Index(sorted(rows), name="step"), columns=columns,
            )
        del n_timepoints

    # ------------------------------------------------------------------ results
    def get_predictions(self, parameters=None):
        """Predictions of the given (default: estimated) parameters.

        Parameters
        ----------
        parameters : DataFrame, optional
            Voxel × parameter values.

        Returns
        -------
        DataFrame
            Time × voxel predictions.
        """
        if parameters is None:
            if self.estimated_parameters is None:
                raise ValueError("no parameters given and fit() has not been run")
            parameters = self.estimated_parameters
        frame = self._init_frame(parameters, "parameters")
        values = self._predict_chunked(frame.to_numpy(np.float32))
        return pd.DataFrame(values.astype(np.float64), index=self.data.index,
                            columns=self.data.columns)

    def get_residuals(self, parameters=None):
        """Return the data minus the predictions.

        Parameters
        ----------
        parameters : DataFrame, optional
            Voxel × parameter values (default: estimated).

        Returns
        -------
        DataFrame
            Time × voxel residuals.
        """
        return self.data - self._predictions_for(parameters)

    def get_rsq(self, parameters=None):
        """R² per voxel of the given (default: estimated) parameters.

        Parameters
        ----------
        parameters : DataFrame, optional
            Voxel × parameter values.

        Returns
        -------
        Series
            R² by voxel (NaN for constant voxels).
        """
        from ..utils.stats import get_rsq

        return get_rsq(self.data, self._predictions_for(parameters))

    def _predictions_for(self, parameters):
        """Return the last fit's predictions, or the predictions of ``parameters``."""
        if parameters is None and self.predictions is not None:
            return self.predictions
        return self.get_predictions(parameters)
