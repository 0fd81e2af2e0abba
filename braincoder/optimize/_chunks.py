"""Fits of one chunk of voxels: independent units (data in; parameters, SSE out).

A chunk holds the data of some voxels and their starting parameters; the functions here
return that chunk's best parameters and sums of squares, so chunks can be run in any order,
elsewhere, or resumed.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ._jacobians import PerVoxelHRFJacobian, uses_per_voxel_hrf
from ._lm import AT_CAP, NON_FINITE, LMSolver
from ._loop import CompiledLoop, MaskedProblem, R2Plateau, drive
from ._separable import separable_provider

logger = logging.getLogger(__name__)

# Compiled LM solvers by content, shared by all fitters of this process (least recently
# used dropped first).
_SOLVERS = OrderedDict()
_MAX_SOLVERS = 8


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
    voxel_iterations : ndarray of int or None
        LM: iterations run per voxel.
    voxel_stop : ndarray of int or None
        LM: stop code per voxel (keys of :data:`~._lm.STOP_REASONS`; 7 = reached
        ``max_n_iterations``).
    """

    theta: np.ndarray
    sse: np.ndarray
    n_iterations: int
    converged: np.ndarray
    frozen: np.ndarray
    stop_reason: str
    sigma2: np.ndarray | None = None
    intermediate: list = field(default_factory=list)
    voxel_iterations: np.ndarray | None = None
    voxel_stop: np.ndarray | None = None


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
    paradigm: object = None
    xtol: float = 1e-5
    stall_r2: float = 1e-4
    stall_window: int = 20
    max_block: int = 50
    separable: bool = True

    def lm_solver(self, columns):
        """Compiled LM solver for these columns, reused across chunks and fits (or None)."""
        if not columns:
            return None
        key = (tuple(columns),
               None if self.projector is None else hash(self.projector.tobytes()))
        if key in self.solver_cache:
            self.solver_cache[key].set_bounds(self.lower, self.upper)
            return self.solver_cache[key]
        # Another fitter of the same model and paradigm (e.g. the next data set, or the next
        # run of a benchmark) reuses the compiled solver instead of tracing it again.
        shared_key = self._content_key(key)
        if shared_key is not None and shared_key in _SOLVERS:
            _SOLVERS.move_to_end(shared_key)
            self.solver_cache[key] = _SOLVERS[shared_key]
            self.solver_cache[key].set_bounds(self.lower, self.upper)
            return self.solver_cache[key]
        provider = None
        if self.paradigm is not None and uses_per_voxel_hrf(self.model):
            provider = PerVoxelHRFJacobian(self.model, self.paradigm, columns)
        elif self.paradigm is not None and self.linear is not None and self.separable:
            provider = separable_provider(self.model, self.paradigm, columns)
        rf_jacobian = (self.model.receptive_field_jacobian
                       if self.linear and self.model.capabilities.closed_form_jacobian
                       else None)
        baseline = self.labels.index("baseline") if "baseline" in self.labels else None
        amplitude = None
        if self.model.linear_in_amplitude and "amplitude" in self.labels:
            amplitude = self.labels.index("amplitude")
        self.solver_cache[key] = LMSolver(self.predict, columns, self.lower, self.upper,
                                          self.projector, self.linear, rf_jacobian, baseline,
                                          amplitude, jacobian=provider)
        if shared_key is not None:
            _SOLVERS[shared_key] = self.solver_cache[key]
            while len(_SOLVERS) > _MAX_SOLVERS:
                _SOLVERS.popitem(last=False)
        return self.solver_cache[key]

    def _content_key(self, key):
        """Key of a solver by content (model specification, paradigm), or None."""
        if self.paradigm is None:
            return None
        try:
            description = self.model.to_json(include_values=False)
        except (AttributeError, TypeError, ValueError):
            return None
        paradigm = np.ascontiguousarray(np.asarray(self.paradigm, np.float32))
        digest = hashlib.blake2b(paradigm.tobytes(), digest_size=16).hexdigest()
        return (type(self.model).__qualname__, description, paradigm.shape, digest,
                bool(self.separable), self.linear is not None, *key)


def fit_chunk_lm(y, init, sst, settings):
    """Batched Levenberg–Marquardt on one chunk of voxels.

    Iterations run in compiled blocks (5 iterations, doubling up to ``max_block``) between
    which the stopped voxels leave the batch; per-voxel stopping rules in :mod:`._lm`.

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
        The chunk's best parameters, per-voxel iterations and stop codes.
    """
    solver = settings.lm_solver(settings.free_columns)
    shared_solver = settings.lm_solver(settings.shared_columns)
    some_solver = solver or shared_solver
    state = some_solver.initial_state(y, init)
    intermediate = []
    reason = f"reached max_n_iterations ({settings.max_n_iterations})"
    iteration = 0
    block = 1 if settings.store_intermediate or shared_solver is not None else 5
    rules = dict(r2_atol=settings.r2_atol, xtol=settings.xtol, stall_r2=settings.stall_r2,
                 stall_window=settings.stall_window)
    try:
        while iteration < settings.max_n_iterations:
            n_steps = min(block, settings.max_n_iterations - iteration)
            ran = 0
            if solver is not None:
                ran = solver.run(y, state, sst, n_steps, **rules)
            shared_gain = 0.0
            if shared_solver is not None:
                ran = 1
                before = state.sse.sum()
                shared_solver.iterate(y, state, sst, settings.r2_atol, shared=True)
                shared_gain = (before - state.sse.sum()) / max(sst.sum(), 1e-30)
                if shared_gain > settings.r2_atol:
                    # The per-voxel optima moved: restart the voxels' stopping rules.
                    state.code[~state.frozen] = 0
                    state.window_sse[:] = state.sse
                    state.window_count[:] = 0
                elif solver is None:
                    state.code[~state.frozen] = 1
                state.converged[:] = (state.code > 0) & ~state.frozen
            ran = max(ran, 1)
            iteration += ran
            if settings.store_intermediate:
                intermediate.append((settings.step_offset + iteration, state.theta.copy()))
            _report(settings, iteration, state.sse, sst, state.converged, state.lam,
                    state.theta, advance=ran)
            if (state.code != 0).all() and shared_gain <= settings.r2_atol:
                reason = "all voxels converged"
                break
            block = min(2 * block, settings.max_block) if shared_solver is None else 1
    except KeyboardInterrupt:
        warnings.warn(
            f"fit interrupted after {iteration} iterations; returning the best parameters so far",
            RuntimeWarning,
            stacklevel=3,
        )
        reason = "interrupted"
    frozen = state.frozen | ~np.isfinite(state.sse)
    code = state.code.copy()
    if reason != "interrupted":
        code[code == 0] = AT_CAP
    code[frozen] = NON_FINITE
    converged = (code > 0) & (code < NON_FINITE)
    if shared_solver is not None and solver is None:
        state.iterations[:] = iteration
    return ChunkResult(state.theta, state.sse, iteration, converged, frozen, reason,
                       intermediate=intermediate, voxel_iterations=state.iterations.copy(),
                       voxel_stop=code)


def _report(settings, step, sse, sst, converged, lam, theta=None, advance=1):
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
    monitor.advance(advance)
    monitor.bar.set_postfix({"r2": f"{mean_r2:.4f}", "active": int((~converged).sum())},
                            refresh=False)
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
    init_natural = model.transform_tensor_forward(init_unbounded.astype(np.float32)).numpy()
    problem0 = MaskedProblem(model, settings.predict, init_unbounded, settings.free_columns,
                             settings.shared_columns, "ssq", settings.projector)
    sse0 = problem0.sse(problem0.initial_vector, y).numpy()
    problem = MaskedProblem(model, settings.predict, init_unbounded, settings.free_columns,
                            settings.shared_columns, settings.noise_model, settings.projector,
                            init_sigma2=np.maximum(sse0, 1e-12) / y.shape[0])
    loop = CompiledLoop(problem, settings.make_optimizer(), y, sst)
    steps_per_call = 1 if settings.store_intermediate else int(max(1, min(50, settings.lag)))
    intermediate = []
    monitor = settings.monitor

    def on_call(step, values):
        n, costs, mean_r2, best = len(values["loss"]), values["loss"], values["r2"], \
            values["best_r2"]
        if settings.store_intermediate:
            theta = model.transform_tensor_forward(problem.unbounded(loop.variable)).numpy()
            intermediate.append((settings.step_offset + step, theta))
        if monitor is not None:
            monitor.scalars(settings.step_offset + step, {
                "cost": costs[-1], "r2/mean_current": mean_r2[-1], "r2/mean_best": best[-1],
                "learning_rate": _learning_rate(loop.optimizer), "voxels_converged": 0,
            })
            monitor.advance(n, r2=float(mean_r2[-1]), best_r2=float(best[-1]))
            if monitor.writer is not None:
                theta = model.transform_tensor_forward(loop.best_unbounded()[0]).numpy()
                monitor.histograms(settings.step_offset + step, theta, settings.labels)

    rule = R2Plateau(settings.lag, settings.r2_atol, settings.min_n_iterations)
    step, reason, _ = drive(lambda n: dict(zip(CompiledLoop.TRACKED, loop.run(n), strict=True)),
                            [rule], settings.max_n_iterations, steps_per_call, monitor, on_call,
                            what="fit")
    theta_unbounded, best_r2 = loop.best_unbounded()
    theta = model.transform_tensor_forward(theta_unbounded.astype(np.float32)).numpy()
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
