"""Fits of one chunk of voxels: independent units (data in; parameters, SSE out).

A chunk holds the data of some voxels and their starting parameters; the functions here
return that chunk's best parameters and sums of squares, so chunks can be run in any order,
elsewhere, or resumed.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._lm import LMSolver
from ._loop import CompiledLoop, MaskedProblem

logger = logging.getLogger(__name__)


@dataclass
class ChunkResult:
    """Outcome of fitting one chunk of voxels.

    Attributes
    ----------
    theta : ndarray, shape (n_voxels, n_parameters)
        Best natural parameters.
    sse : ndarray, shape (n_voxels,)
        Sum of squared residuals at ``theta``.
    n_iterations : int
        Iterations (LM) or steps (Adam) run.
    converged : ndarray of bool
        Voxels that met the convergence criterion.
    frozen : ndarray of bool
        Voxels whose loss became non-finite (kept at their best parameters).
    stop_reason : str
        Why the chunk stopped.
    sigma2 : ndarray or None
        Fitted noise variances (Gaussian noise model, Adam).
    intermediate : list
        (step, theta) pairs when intermediate parameters were stored.
    """

    theta: np.ndarray
    sse: np.ndarray
    n_iterations: int
    converged: np.ndarray
    frozen: np.ndarray
    stop_reason: str
    sigma2: np.ndarray | None = None
    intermediate: list = field(default_factory=list)


@dataclass
class FitSettings:
    """Options shared by every chunk of one :meth:`ParameterFitter.fit` call."""

    model: object
    predict: object
    free_columns: list
    shared_columns: list
    lower: np.ndarray
    upper: np.ndarray
    projector: np.ndarray | None
    noise_model: str
    max_n_iterations: int
    min_n_iterations: int
    r2_atol: float
    lag: int
    store_intermediate: bool
    make_optimizer: object = None
    monitor: object = None
    step_offset: int = 0
    solver_cache: dict = field(default_factory=dict)
    linear: tuple | None = None
    labels: list = field(default_factory=list)

    def lm_solver(self, columns):
        """Compiled LM solver for these columns, reused across chunks and fits (or None)."""
        if not columns:
            return None
        key = (tuple(columns),
               None if self.projector is None else hash(self.projector.tobytes()))
        if key in self.solver_cache:
            self.solver_cache[key].set_bounds(self.lower, self.upper)
        else:
            rf_jacobian = getattr(self.model, "_rf_jacobian", None) if self.linear else None
            baseline = self.labels.index("baseline") if "baseline" in self.labels else None
            amplitude = None
            if self.model.linear_in_amplitude and "amplitude" in self.labels:
                amplitude = self.labels.index("amplitude")
            self.solver_cache[key] = LMSolver(self.predict, columns, self.lower, self.upper,
                                              self.projector, self.linear, rf_jacobian, baseline,
                                              amplitude)
        return self.solver_cache[key]


def fit_chunk_lm(y, init, sst, settings):
    """Batched Levenberg–Marquardt on one chunk of voxels.

    Parameters
    ----------
    y : ndarray, shape (n_timepoints, n_voxels)
        Data of the chunk (confound-projected).
    init : ndarray, shape (n_voxels, n_parameters)
        Starting natural parameters (inside the bounds).
    sst : ndarray, shape (n_voxels,)
        Total sum of squares of each voxel.
    settings : FitSettings
        Fit options.

    Returns
    -------
    ChunkResult
        The chunk's best parameters.
    """
    solver = settings.lm_solver(settings.free_columns)
    shared_solver = settings.lm_solver(settings.shared_columns)
    some_solver = solver or shared_solver
    state = some_solver.initial_state(y, init)
    shared_state = None
    if shared_solver is not None:
        shared_state = type(state)(state.theta, state.sse, state.lam.copy(), state.converged,
                                   state.frozen)
    intermediate = []
    reason = f"reached max_n_iterations ({settings.max_n_iterations})"
    iteration = 0
    try:
        for iteration in range(1, settings.max_n_iterations + 1):
            if solver is not None:
                solver.iterate(y, state, sst, settings.r2_atol)
            shared_gain = 0.0
            if shared_solver is not None:
                before = state.sse.sum()
                shared_solver.iterate(y, shared_state, sst, settings.r2_atol, shared=True)
                shared_gain = (before - state.sse.sum()) / max(sst.sum(), 1e-30)
                if shared_gain > settings.r2_atol:
                    state.converged[:] = False  # the per-voxel optima moved
                elif solver is None:
                    state.converged[:] = True
            if settings.store_intermediate:
                intermediate.append((settings.step_offset + iteration, state.theta.copy()))
            _report(settings, iteration, state.sse, sst, state.converged, state.lam,
                    state.theta)
            if state.converged[~state.frozen].all() and shared_gain <= settings.r2_atol:
                reason = "all voxels converged"
                break
    except KeyboardInterrupt:
        warnings.warn(
            f"fit interrupted after {iteration} iterations; returning the best parameters so far",
            RuntimeWarning,
            stacklevel=3,
        )
        reason = "interrupted"
    frozen = state.frozen | ~np.isfinite(state.sse)
    return ChunkResult(state.theta, state.sse, iteration, state.converged.copy(), frozen, reason,
                       intermediate=intermediate)


def _report(settings, step, sse, sst, converged, lam, theta=None):
    monitor = settings.monitor
    if monitor is None:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    finite = np.isfinite(r2)
    mean_r2 = float(r2[finite].mean()) if finite.any() else float("nan")
    step = settings.step_offset + step
    monitor.scalars(step, {
        "cost": float(np.nansum(sse)),
        "r2/mean_current": mean_r2,
        "r2/mean_best": mean_r2,
        "lm/median_damping": float(np.median(lam)),
        "voxels_converged": int(converged.sum()),
    })
    monitor.advance(1, r2=mean_r2, converged=float(converged.mean()))
    if theta is not None:
        monitor.histograms(step, theta, settings.labels)


def fit_chunk_adam(y, init_unbounded, sst, settings):
    """Masked gradient descent (Adam or any Keras optimizer) on one chunk of voxels.

    Parameters
    ----------
    y : ndarray, shape (n_timepoints, n_voxels)
        Data of the chunk (confound-projected).
    init_unbounded : ndarray, shape (n_voxels, n_parameters)
        Starting parameters in unbounded space.
    sst : ndarray, shape (n_voxels,)
        Total sum of squares of each voxel.
    settings : FitSettings
        Fit options.

    Returns
    -------
    ChunkResult
        The chunk's best parameters (natural space).
    """
    model = settings.model
    init_natural = model._transform_forward(init_unbounded.astype(np.float32)).numpy()
    problem0 = MaskedProblem(model, settings.predict, init_unbounded, settings.free_columns,
                             settings.shared_columns, "ssq", settings.projector)
    sse0 = problem0.sse(problem0.initial_vector, y).numpy()
    problem = MaskedProblem(model, settings.predict, init_unbounded, settings.free_columns,
                            settings.shared_columns, settings.noise_model, settings.projector,
                            init_sigma2=np.maximum(sse0, 1e-12) / y.shape[0])
    loop = CompiledLoop(problem, settings.make_optimizer(), y, sst)
    steps_per_call = 1 if settings.store_intermediate else int(max(1, min(50, settings.lag)))
    history = []
    intermediate = []
    reason = f"reached max_n_iterations ({settings.max_n_iterations})"
    step = 0
    try:
        while step < settings.max_n_iterations:
            n = min(steps_per_call, settings.max_n_iterations - step)
            costs, mean_r2, best = loop.run(n)
            step += n
            history.extend(best.tolist())
            if settings.store_intermediate:
                theta = model._transform_forward(problem.unbounded(loop.variable)).numpy()
                intermediate.append((settings.step_offset + step, theta))
            if settings.monitor is not None:
                learning_rate = _learning_rate(loop.optimizer)
                settings.monitor.scalars(settings.step_offset + step, {
                    "cost": costs[-1], "r2/mean_current": mean_r2[-1], "r2/mean_best": best[-1],
                    "learning_rate": learning_rate,
                    "voxels_converged": 0,
                })
                settings.monitor.advance(n, r2=float(mean_r2[-1]), best_r2=float(best[-1]))
                if settings.monitor.writer is not None:
                    theta = model._transform_forward(loop.best_unbounded()[0]).numpy()
                    settings.monitor.histograms(settings.step_offset + step, theta,
                                                settings.labels)
            if step >= settings.min_n_iterations and len(history) > settings.lag:
                if history[-1] - history[-1 - settings.lag] < settings.r2_atol:
                    reason = (f"mean best R² improved less than r2_atol={settings.r2_atol:g} over "
                              f"the last {settings.lag} steps")
                    break
    except KeyboardInterrupt:
        warnings.warn(
            f"fit interrupted after {step} steps; returning the best parameters so far",
            RuntimeWarning,
            stacklevel=3,
        )
        reason = "interrupted"
    theta_unbounded, best_r2 = loop.best_unbounded()
    theta = model._transform_forward(theta_unbounded.astype(np.float32)).numpy()
    never = ~np.isfinite(best_r2)
    theta[never] = init_natural[never]
    sse = (1.0 - best_r2) * sst
    sigma2 = loop.sigma2() if settings.noise_model == "gaussian" else None
    converged = np.full(len(sst), reason.startswith("mean best"))
    return ChunkResult(theta, sse, step, converged, loop.frozen(), reason, sigma2, intermediate)


def _learning_rate(optimizer):
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (TypeError, ValueError):
        return float("nan")
