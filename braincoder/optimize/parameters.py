"""ParameterFitter: per-voxel non-linear fits (grid search, then LM or Adam)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

from ..utils.formatting import format_data, format_parameters, to_frame
from ..utils.validation import (
    check_finite,
    check_names,
    check_same_index,
    constant_columns,
    format_labels,
    warn_constant,
)
from ._distributed import check_client
from ._fit import FitMixin
from ._grid import DEFAULT_GRID_CHUNK_VOXELS, GridSpec, baseline_label, search_voxels
from ._monitor import Monitor
from ._plan import build_predict

__all__ = ["ParameterFitter"]

logger = logging.getLogger(__name__)


class ParameterFitter(FitMixin):
    """Estimate each voxel's model parameters: grid search, then LM or Adam.

    Parameters
    ----------
    model : EncodingModel
        The model (e.g. :class:`~braincoder.models.GaussianPRF2DWithHRF`).
    data : DataFrame or array-like, shape (n_timepoints, n_voxels)
        Measured responses.
    paradigm : DataFrame or array-like
        Stimulus per time point (see ``model.get_paradigm``).
    memory_limit : int, default 666666666
        Byte budget of the working arrays; voxels and grid points are processed in chunks
        sized from it.
    log_dir : str, path, None or False, default None
        TensorBoard directory (a timestamped run folder is created in it); ``None`` or
        ``False`` writes nothing.
    client : distributed.Client, optional
        Run the voxel chunks of :meth:`fit_grid` and :meth:`fit` as tasks on this Dask
        cluster (needs ``braincoder[dask]``); results equal those without a client.
        ``None`` fits in this process.

    Attributes
    ----------
    estimated_parameters : DataFrame
        Voxel × parameter result of the last :meth:`fit`.
    r2 : Series
        R² per voxel of the last fit (NaN for constant voxels).
    predictions : DataFrame
        Time × voxel predictions of the last fit.
    estimated_sigma2 : Series
        Noise variance per voxel (fitted with ``noise_model='gaussian'``, else SSE / n).
    n_iterations : int
        Iterations (LM) or steps (Adam) of the last fit.
    n_converged : int
        Voxels that met the convergence criterion.
    stop_reason : str
        Why the last fit stopped.
    n_at_cap : int
        LM: voxels of the last fit still improving when ``max_n_iterations`` was reached.
    voxel_iterations : Series or None
        LM: iterations run per voxel in the last fit.
    voxel_stop_reasons : Series or None
        LM: why each voxel stopped (e.g. ``"R² gain below r2_atol"``,
        ``"parameter step below xtol"``, ``"reached max_n_iterations"``).
    at_bounds : DataFrame or None
        Voxel × parameter booleans: free parameters that ended at a bound of the fit
        (e.g. centres of pRFs outside the stimulated field, held at 1.5× its extent).
    resumed_chunks : int
        Voxel chunks of the last fit loaded from ``checkpoint_dir`` instead of fitted.
    fitted_chunks : int
        Voxel chunks of the last fit actually fitted.
    intermediate_parameters : DataFrame or None
        Step × (parameter, voxel) values with ``store_intermediate_parameters=True``.

    Examples
    --------
    >>> from braincoder.datasets import simulate_prf_2d
    >>> from braincoder.optimize import ParameterFitter
    >>> experiment = simulate_prf_2d(n_voxels=20, grid_size=10, frames_per_sweep=15)
    >>> fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    >>> grid = fitter.fit_grid(x=[-3, 0, 3], y=[-3, 0, 3], sd=[1.0, 2.0],
    ...                        baseline=[0.0], amplitude=[1.0])
    >>> pars = fitter.fit(init_pars=grid, progressbar=False)
    >>> list(pars.columns)
    ['x', 'y', 'sd', 'baseline', 'amplitude']
    """

    def __init__(self, model, data, paradigm, memory_limit=666666666, log_dir=None,
                 client=None):
        self.client = check_client(client)
        self.model = model
        self.data = format_data(data)
        self.paradigm = model.get_paradigm(paradigm)
        check_same_index(self.data, self.paradigm, "data", "paradigm")
        if not memory_limit > 0:
            raise ValueError(
                f"memory_limit must be a positive number of bytes, got {memory_limit}"
            )
        self.memory_limit = int(memory_limit)
        self.log_dir = log_dir
        self.labels = model.get_parameter_labels()
        self.constant_voxels = constant_columns(self.data)
        self.grid_parameters = None
        self.estimated_parameters = None
        self.r2 = None
        self.predictions = None
        self.estimated_sigma2 = None
        self.intermediate_parameters = None
        self.n_iterations = 0
        self.n_converged = 0
        self.stop_reason = None
        self.n_at_cap = 0
        self.voxel_iterations = None
        self.voxel_stop_reasons = None
        self.at_bounds = None
        self.resumed_chunks = 0
        self.fitted_chunks = 0
        self.log_run_dir = None
        self._paradigm_tensor = tf.constant(self.paradigm.to_numpy(np.float32))
        self._predict = self._build_predict()
        self._solver_cache = {}

    # ------------------------------------------------------------------ predictions
    def _build_predict(self):
        """Tensor prediction function; stimulus pre-convolved when the HRF is shared."""
        predict, self._linear = build_predict(self.model, self.paradigm.to_numpy(np.float32))
        return predict

    def _voxel_chunk_size(self, bytes_per_voxel):
        budget = self.memory_limit // max(bytes_per_voxel, 1)
        return int(max(1, min(len(self.data.columns), budget)))

    # ------------------------------------------------------------------ grid search
    def fit_grid(self, *args, fixed_pars=None, use_correlation_cost=False,
                 positive_amplitude=True, progressbar=False, chunk_size=None, **grid_values):
        """Exhaustive search over a grid of parameter values, per voxel.

        Baseline (and amplitude, for models of the form ``baseline + amplitude · f``) are
        solved in closed form for every grid point and voxel, so the values given for
        them are not searched. With per-voxel HRF parameters in the grid, the spatial
        predictions are computed once and convolved with each HRF candidate.

        Parameters
        ----------
        *args : sequence of array-like
            Grid values in parameter-label order (alternative to keywords).
        fixed_pars : DataFrame, optional
            Voxel × parameter values held fixed per voxel (indexed by the data's voxels).
        use_correlation_cost : bool, default False
            Rank grid points by correlation instead of the sum of squares.
        positive_amplitude : bool, default True
            Forbid negative amplitudes.
        progressbar : bool, default False
            Show a tqdm bar over the searched voxels.
        chunk_size : int, optional
            Grid points whose predictions are held in memory at once; by default sized
            from ``memory_limit``.
        **grid_values : array-like
            Values per parameter label, e.g. ``x=np.linspace(-5, 5, 15)``.

        Returns
        -------
        DataFrame
            Voxel × parameter best grid values (stored as ``grid_parameters``).

        Raises
        ------
        TypeError
            For a keyword that is not a parameter label.
        ValueError
            For a parameter with neither grid values nor fixed values, a parameter given
            both, or bad ``fixed_pars``.
        """
        grid = self._grid_values(args, grid_values)
        fixed = self._fixed_values(fixed_pars)
        both = [label for label in grid if label in fixed]
        if both:
            raise ValueError(
                f"parameters {format_labels(both)} have both grid values and fixed_pars"
            )
        spec = self._grid_spec(grid, fixed)
        voxels = self.data.columns
        result = np.full((len(voxels), len(self.labels)), np.nan)
        usable = ~np.isin(voxels, self.constant_voxels)
        if (~usable).any():
            warn_constant(voxels[~usable])
        y = self.data.to_numpy(np.float32)
        n_timepoints = y.shape[0]
        n_pixels = self.paradigm.shape[1]
        grid_chunk = max(1, self.memory_limit // (4 * 4 * (n_timepoints + 2 * n_pixels)))
        if chunk_size is not None:
            if int(chunk_size) < 1:
                raise ValueError(f"chunk_size must be a positive number of grid points, "
                                 f"got {chunk_size}")
            grid_chunk = int(chunk_size)
        group_keys = [label for label in fixed if label not in (
                          baseline_label(self.labels), "amplitude")
                      or (label == "amplitude" and not spec.amplitude_in_scorer)]
        groups = self._fixed_groups(fixed, group_keys, usable)
        done = 0
        monitor = Monitor(None, int(usable.sum()), progressbar, "fit_grid", what="grid search")

        def progress(n_voxels):
            nonlocal done
            done += n_voxels
            monitor.advance(n_voxels)

        try:
            search_voxels(
                self.model, self.paradigm.to_numpy(np.float32), y, spec, groups, group_keys,
                grid_chunk, self.memory_limit // 4,
                lambda size: min(self._voxel_chunk_size(size), DEFAULT_GRID_CHUNK_VOXELS),
                positive_amplitude, use_correlation_cost, result, progress, self.client,
            )
        except KeyboardInterrupt:
            monitor.interrupt(detail=f"{done} of {usable.sum()} voxels searched; the others "
                              "have NaN parameters")
        finally:
            monitor.close()
        self._fill_constant(result, usable, spec, grid)
        frame = pd.DataFrame(result, index=voxels, columns=pd.Index(self.labels, name="parameter"))
        self.grid_parameters = frame
        return frame

    def _grid_values(self, args, grid_values):
        if len(args) > len(self.labels):
            raise TypeError(f"fit_grid() got {len(args)} positional grids but the model has "
                            f"{len(self.labels)} parameters {self.labels}")
        grid = dict(zip(self.labels[: len(args)], args, strict=True))
        unknown = [key for key in grid_values if key not in self.labels]
        if unknown:
            raise TypeError(
                f"fit_grid() got unexpected keyword argument(s) {format_labels(unknown)}; "
                f"parameters of {type(self.model).__name__} are {self.labels}"
            )
        for key, values in grid_values.items():
            if key in grid:
                raise TypeError(f"fit_grid() got multiple values for parameter {key!r}")
            grid[key] = values
        out = {}
        for label, values in grid.items():
            array = np.atleast_1d(np.asarray(values, dtype=np.float64))
            if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
                raise ValueError(f"grid values of {label!r} must be a non-empty 1D list of finite "
                                 f"numbers, got {values!r}")
            out[label] = array
        return out

    def _fixed_values(self, fixed_pars):
        if fixed_pars is None:
            return {}
        frame = to_frame(fixed_pars, "fixed_pars", index_name="voxel")
        check_names(list(frame.columns), self.labels, "fixed_pars")
        frame = self._align_voxels(frame, "fixed_pars")
        check_finite(frame, "fixed_pars")
        return {label: frame[label].to_numpy(np.float64) for label in frame.columns}

    def _align_voxels(self, frame, what):
        voxels = self.data.columns
        if isinstance(frame.index, pd.RangeIndex) and len(frame) == len(voxels) and not (
            isinstance(voxels, pd.RangeIndex)
        ):
            frame = frame.set_axis(voxels)
        missing = [voxel for voxel in voxels if voxel not in frame.index]
        if missing:
            raise ValueError(f"{what} has no rows for voxels {format_labels(missing)} of the data")
        return frame.loc[voxels]

    def _grid_spec(self, grid, fixed):
        labels = self.labels
        linear = self.model.linear_in_amplitude and "amplitude" in labels
        base = baseline_label(labels)
        free_baseline = base is not None and base not in fixed
        free_amplitude = linear and "amplitude" not in fixed
        closed = {base} if free_baseline else set()
        if free_amplitude:
            closed.add("amplitude")
        missing = [label for label in labels if label not in grid and label not in fixed
                   and label not in closed]
        if missing:
            raise ValueError(f"fit_grid: no grid values (or fixed_pars) for parameters "
                             f"{format_labels(missing)}")
        grid_labels = [label for label in labels if label in grid and label not in closed]
        return GridSpec(labels, grid_labels, [grid[label] for label in grid_labels],
                        free_baseline, free_amplitude, fixed, amplitude_in_scorer=linear)

    @staticmethod
    def _fixed_groups(fixed, keys, usable):
        members = np.flatnonzero(usable)
        if not keys:
            return [((), members)]
        rows = np.column_stack([fixed[key][members] for key in keys])
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        if len(unique) > 1000:
            logger.warning("fit_grid: %d distinct fixed-parameter rows; the grid predictions are "
                           "computed once per row", len(unique))
        return [(tuple(row), members[inverse.ravel() == i]) for i, row in enumerate(unique)]

    def _fill_constant(self, result, usable, spec, grid):
        """Constant voxels: amplitude 0 and baseline equal to the constant (an exact fit)."""
        if usable.all():
            return
        labels = self.labels
        for label in labels:
            values = grid.get(label)
            result[~usable, labels.index(label)] = values[0] if values is not None else np.nan
        for label, values in spec.fixed.items():
            result[~usable, labels.index(label)] = values[~usable]
        if "amplitude" in labels and "amplitude" not in spec.fixed:
            result[~usable, labels.index("amplitude")] = 0.0
        base = baseline_label(labels)
        if base is not None and base not in spec.fixed:
            result[~usable, labels.index(base)] = self.data.to_numpy()[0, ~usable]

    # ------------------------------------------------------------------ refinement
    def refine_baseline_and_amplitude(self, parameters, n_iterations=1, positive_amplitude=True,
                                      l2_alpha=1e-3):
        """Solve baseline and amplitude per voxel by least squares, other parameters fixed.

        Parameters
        ----------
        parameters : DataFrame
            Voxel × parameter starting values (e.g. from :meth:`fit_grid`).
        n_iterations : int, default 1
            Rounds of refinement (one is exact for models linear in amplitude; models like
            divisive normalisation rescale their gain parameters — the model's
            ``gain_parameters``, each multiplied by the gain to its power — and solve
            ``bold_baseline``, and may need more).
        positive_amplitude : bool, default True
            Forbid negative amplitudes.
        l2_alpha : float, default 1e-3
            Ridge penalty on the amplitude (stabilises flat predictions).

        Returns
        -------
        DataFrame
            Parameters with refined ``baseline`` and ``amplitude``.
        """
        frame = self._init_frame(parameters, "parameters")
        labels = self.labels
        powers = dict(self.model.capabilities.gain_parameters)
        for label in (baseline_label(labels) or "baseline", *powers):
            if label not in labels:
                raise ValueError(
                    f"{type(self.model).__name__} has no {label!r} parameter to refine"
                )
        theta = frame.to_numpy(np.float32).copy()
        gains = [labels.index(label) for label in powers]
        exponents = np.array(list(powers.values()), dtype=np.float64)
        base = labels.index(baseline_label(labels))
        # float64 data, prediction and two products per voxel and time point
        chunk = self._voxel_chunk_size(4 * 8 * self.paradigm.shape[0])
        for _ in range(int(n_iterations)):
            without, scale = self._shape_parameters(theta, base)
            # After a grid search many voxels share their shape: predict each shape once.
            unique, inverse = np.unique(without, axis=0, return_inverse=True)
            shared = self._predict_chunked(unique) if len(unique) <= len(theta) // 2 else None
            inverse = inverse.reshape(-1)
            for start in range(0, len(theta), chunk):
                rows = slice(start, start + chunk)
                y = self.data.iloc[:, rows].to_numpy(np.float64)
                p = (shared[:, inverse[rows]] if shared is not None
                     else self._predict_chunked(without[rows])).astype(np.float64)
                if scale is not None:
                    p *= scale[rows]
                gain, baseline = _gain_and_baseline(p, y, l2_alpha, positive_amplitude)
                if (exponents < 0).any():  # e.g. 1 / gain: keep the gain away from 0
                    gain = np.where(np.abs(gain) < 1e-3, np.where(gain < 0, -1e-3, 1e-3), gain)
                theta[rows, gains] *= np.abs(gain[:, None]) ** exponents * np.where(
                    exponents % 2 == 1, np.sign(gain[:, None]), 1.0)
                theta[rows, base] = baseline
        return pd.DataFrame(theta.astype(np.float64), index=frame.index, columns=frame.columns)

    def _shape_parameters(self, theta, base):
        """Parameters without baseline (and, where it is a plain factor, amplitude).

        Returns the rows to predict and the per-voxel amplitude to multiply the predictions
        by (None when the amplitude stays inside the rows).
        """
        without = theta.copy()
        without[:, base] = 0.0
        if not self.model.linear_in_amplitude:
            return without, None
        amplitude = self.labels.index("amplitude")
        scale = without[:, amplitude].astype(np.float64)
        without[:, amplitude] = 1.0
        return without, scale

    def _predict_chunked(self, theta):
        chunk = self._voxel_chunk_size(4 * 4 * (self.paradigm.shape[0] + self.paradigm.shape[1]))
        out = np.empty((self.paradigm.shape[0], len(theta)), np.float32)
        for start in range(0, len(theta), chunk):
            block = tf.constant(theta[start : start + chunk], tf.float32)
            out[:, start : start + chunk] = self._predict(block).numpy()
        return out

    def _init_frame(self, parameters, what):
        if parameters is None:
            if self.grid_parameters is None:
                raise ValueError(f"no {what} given and no grid search has been run")
            parameters = self.grid_parameters
        frame = format_parameters(parameters, self.labels, what)
        frame = self._align_voxels(frame, what)
        self.model.check_parameters(frame, what)
        return frame

    def report(self, path, timings=None, title=None):
        """Write a self-contained HTML report of the last fit.

        Parameters
        ----------
        path : str or path
            Output ``.html`` file.
        timings : dict, optional
            Seconds per phase, shown in the convergence table.
        title : str, optional
            Page title.

        Returns
        -------
        pathlib.Path
            The written file.

        See Also
        --------
        braincoder.report.write_fit_report : What the page shows.
        """
        from ..report import write_fit_report

        return write_fit_report(self, path, timings=timings, title=title)


def _gain_and_baseline(p, y, l2_alpha, positive_amplitude):
    """Per-column least squares of ``y ≈ baseline + gain · p`` with a ridge on the gain."""
    n = y.shape[0]
    sp, sy = p.sum(0), y.sum(0)
    spp, spy = (p * p).sum(0) + l2_alpha, (p * y).sum(0)
    det = n * spp - sp * sp
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (n * spy - sp * sy) / det
        gain = np.where(np.isfinite(gain), gain, 0.0)
        if positive_amplitude:
            gain = np.maximum(gain, 0.0)
        baseline = (sy - gain * sp) / n
    return gain, baseline
