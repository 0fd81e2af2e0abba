"""The iterative part of :class:`~braincoder.optimize.ParameterFitter` (LM and Adam)."""

from __future__ import annotations

import json
import logging
import time
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
from ._checkpoint import ChunkCheckpoint
from ._distributed import model_spec
from ._monitor import FitMonitor, resolve_log_dir
from ._plan import (
    DEFAULT_CHUNK_VOXELS,
    ChunkStore,
    FitOptions,
    FitPlan,
    fit_chunk,
    result_from_record,
    text_hash,
    voxel_chunks,
)

logger = logging.getLogger(__name__)


def _optimizer_record(optimizer):
    """Plain (JSON-able) description of a Keras optimizer, or None."""
    if optimizer is None:
        return None
    try:
        record = keras.optimizers.serialize(optimizer)
    except (TypeError, ValueError):
        record = {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
    return json.loads(json.dumps(record, default=str))


class FitMixin:
    """``fit`` and result accessors of :class:`ParameterFitter`."""

    def fit(self, max_n_iterations=1000, min_n_iterations=100, init_pars=None, confounds=None,
            optimizer=None, fixed_pars=None, shared_pars=None, noise_model="ssq",
            store_intermediate_parameters=False, r2_atol=1e-6, lag=100, learning_rate=0.01,
            progressbar=True, method=None, checkpoint_dir=None, xtol=1e-5, stall_r2=1e-4,
            stall_window=20, chunk_size=None, **adam_kwargs):
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
            converges when an accepted step gains less than this in R² (other LM stopping
            rules: ``xtol``, ``stall_r2``; a voxel also stops when no step lowers its loss
            or when every free parameter sits at a bound that its gradient pushes against).
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
            Each chunk is written atomically as soon as it finishes (also with a Dask
            client, by this process), so a killed process loses only unfinished chunks.
        xtol : float, default 1e-5
            LM: a voxel converges when an accepted step moves its free parameters by less
            than ``xtol · (xtol + ‖θ‖)`` (Euclidean norms over the free parameters).
        stall_r2 : float, default 1e-4
            LM: a voxel stops when it gained less than this in R² over the last
            ``stall_window`` iterations (it crawls, e.g. along a bound or a flat valley).
            ``0`` disables the rule.
        stall_window : int, default 20
            LM: window of the ``stall_r2`` rule, in iterations.
        chunk_size : int, optional
            Voxels fitted together (one Dask task each with a ``client``); by default
            sized from ``memory_limit``, at most 2000. Results depend on the chunks only
            through chunk-wide stopping rules (Adam), not on where chunks run.
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
        lower, upper = parameter_bounds(self.model, self.paradigm, self.data)
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
        options = FitOptions(
            method=method, noise_model=noise_model, free_columns=free,
            shared_columns=shared_columns, lower=lower.tolist(), upper=upper.tolist(),
            max_n_iterations=int(max_n_iterations), min_n_iterations=int(min_n_iterations),
            r2_atol=float(r2_atol), lag=int(lag),
            store_intermediate=bool(store_intermediate_parameters),
            learning_rate=float(learning_rate), optimizer=_optimizer_record(optimizer),
            adam_kwargs=dict(adam_kwargs), labels=list(labels),
            extra=dict(xtol=float(xtol), stall_r2=float(stall_r2),
                       stall_window=int(stall_window)),
        )
        members = np.flatnonzero(usable)
        n_timepoints, n_pixels = self.paradigm.shape
        n_free = max(len(free), len(shared_columns), 1)
        per_voxel = 4 * (2 * (n_free + 1) * (n_pixels + n_timepoints) + 4 * n_timepoints)
        if shared:
            chunks = [members] if len(members) else []
        else:
            chunks = voxel_chunks(members, self._fit_chunk_size(per_voxel, chunk_size))
        plan = FitPlan(options, chunks, y_all, theta0, sst_all,
                       self.paradigm.to_numpy(np.float32), projector,
                       self._model_description())
        spec = None
        if self.client is not None:  # checked before any file is written or task sent
            spec = model_spec(self.model, plan.paradigm, theta0[members[:2]])
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = ChunkCheckpoint(checkpoint_dir, plan.hashes(voxels), len(chunks))
        store = ChunkStore(plan)
        if self.client is None:
            monitor = FitMonitor(run_dir, max_n_iterations, progressbar, f"fit ({method})")
        else:
            monitor = FitMonitor(run_dir, len(chunks), progressbar, f"fit ({method}, chunks)")
        start = time.perf_counter()
        try:
            if self.client is None:
                self._run_in_process(plan, store, checkpoint, monitor, optimizer)
            else:
                self._run_on_client(plan, store, checkpoint, monitor, spec)
        finally:
            monitor.close()
            self._run_seconds = time.perf_counter() - start
        self.resumed_chunks, self.fitted_chunks = store.resumed, store.fitted
        if self.resumed_chunks:
            logger.info("resumed %d finished chunks from %s", self.resumed_chunks, checkpoint_dir)
        self._store_fit(store.theta, store.sse, store.sigma2, noise_model, usable, store.frozen,
                        store.converged, store.reasons, store.iterations, store.intermediate,
                        monitor, run_dir)
        self._store_voxel_stops(method, usable, store.voxel_iterations, store.voxel_stop)
        self._store_at_bounds(lower, upper, free, usable)
        return self.estimated_parameters

    def _store_at_bounds(self, lower, upper, free, usable):
        """Voxel × parameter flags of free parameters that ended at a fit bound."""
        theta = self.estimated_parameters.to_numpy(np.float64)
        span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
        tolerance = 1e-5 * np.maximum(span, 1e-12)
        at_bounds = (np.abs(theta - lower) <= tolerance) | (np.abs(theta - upper) <= tolerance)
        moving = np.isin(np.arange(len(self.labels)), free)
        at_bounds &= moving[None, :] & usable[:, None]
        self.at_bounds = pd.DataFrame(at_bounds, index=self.data.columns,
                                      columns=self.estimated_parameters.columns)
        if at_bounds.any():
            counts = {label: int(n) for label, n in zip(self.labels, at_bounds.sum(0),
                                                         strict=True) if n}
            logger.info("voxels with a parameter at its bound (e.g. pRFs outside the "
                        "stimulated field): %s", counts)

    def _fit_chunk_size(self, bytes_per_voxel, chunk_size):
        """Voxels per chunk: the caller's, or the memory budget's capped at the default."""
        if chunk_size is not None:
            if int(chunk_size) < 1:
                raise ValueError(f"chunk_size must be a positive number of voxels, got "
                                 f"{chunk_size}")
            return int(chunk_size)
        return min(self._voxel_chunk_size(bytes_per_voxel), DEFAULT_CHUNK_VOXELS)

    def _run_in_process(self, plan, store, checkpoint, monitor, optimizer):
        """Fit the plan's chunks one after another in this process."""
        make_optimizer = None
        if optimizer is not None:
            def make_optimizer():
                return type(optimizer).from_config(optimizer.get_config())
        settings = plan.options.settings(self.model, self._predict, self._linear,
                                         plan.projector, self._solver_cache, monitor,
                                         make_optimizer, paradigm=self._paradigm_tensor)
        self._chunk_seconds = []
        for number, index in enumerate(plan.chunks):
            result = None if checkpoint is None else checkpoint.load(number, index)
            if result is not None:
                store.add(number, result, resumed=True)
                continue
            start = time.perf_counter()
            result = fit_chunk(plan.options.method, *plan.chunk_inputs(number), settings)
            seconds = time.perf_counter() - start
            self._chunk_seconds.append(seconds)
            if checkpoint is not None and result.stop_reason != "interrupted":
                checkpoint.save(number, index, result)
            store.add(number, result)
            monitor.scalars(number, store.chunk_scalars(number, result, seconds))
            if result.stop_reason == "interrupted":
                break

    def _run_on_client(self, plan, store, checkpoint, monitor, spec):
        """Fit the plan's chunks as Dask tasks; each result is stored as it arrives."""
        from ._distributed import fit_task, run_tasks, scatter

        todo = []
        for number, index in enumerate(plan.chunks):
            result = None if checkpoint is None else checkpoint.load(number, index)
            if result is None:
                todo.append(number)
            else:
                store.add(number, result, resumed=True)
                monitor.advance(1)
        self._chunk_seconds = []
        if not todo:
            return
        shared = [*scatter(self.client, [spec, plan.paradigm, plan.projector]),
                  text_hash(spec, plan.paradigm), plan.options.to_record()]

        def on_result(number, value):
            result = result_from_record(value["result"])
            self._chunk_seconds.append(value["seconds"])
            if checkpoint is not None:
                checkpoint.save(number, plan.chunks[number], result)
            store.add(number, result)
            monitor.scalars(number, store.chunk_scalars(number, result, value["seconds"]))
            monitor.advance(1, r2=float(np.nanmedian(1.0 - result.sse
                                                      / plan.sst[plan.chunks[number]])))

        try:
            run_tasks(self.client, fit_task, shared, plan.chunk_inputs, todo, on_result, "fit")
        except KeyboardInterrupt:
            monitor.interrupt("fit", detail=f"{store.fitted} of {len(todo)} chunks finished; "
                              "the voxels of the others keep their starting values")
            store.reasons.append("interrupted")

    def _store_voxel_stops(self, method, usable, voxel_iterations, voxel_stop):
        """Per-voxel LM iterations and stop reasons (Series) and the number at the cap."""
        from ._lm import AT_CAP, STOP_REASONS

        voxels = self.data.columns
        if method != "lm":
            self.voxel_iterations = self.voxel_stop_reasons = None
            self.n_at_cap = 0
            return
        names = np.array([STOP_REASONS[code] for code in voxel_stop], dtype=object)
        names[~usable] = "constant voxel"
        self.voxel_iterations = pd.Series(voxel_iterations, index=voxels, name="n_iterations")
        self.voxel_stop_reasons = pd.Series(names, index=voxels, name="stop_reason")
        self.n_at_cap = int(((voxel_stop == AT_CAP) & usable).sum())
        if self.n_at_cap:
            logger.info("%d voxels reached max_n_iterations", self.n_at_cap)

    def _model_description(self):
        """JSON text of the model's specification (without values), or its class name."""
        try:
            return self.model.to_json(include_values=False)
        except (AttributeError, TypeError, ValueError):
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
            residuals = self.data.to_numpy(np.float64) - self.predictions.to_numpy(np.float64)
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
