"""ParameterFitter: per-voxel non-linear fits (grid search, then LM or Adam)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from ..utils.formatting import format_data, format_parameters, to_frame
from ..utils.validation import (
    check_finite,
    check_names,
    check_same_index,
    constant_columns,
    format_labels,
    warn_constant,
)
from ._fit import FitMixin
from ._grid import GridPredictions, GridSpec, search_chunk

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
    log_dir : str, None or False, default False
        TensorBoard directory (a timestamped run folder is created in it); ``None`` means
        ``logs/fit``; ``False`` writes nothing.

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
    resumed_chunks : int
        Voxel chunks of the last fit loaded from ``checkpoint_dir`` instead of fitted.
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

    def __init__(self, model, data, paradigm, memory_limit=666666666, log_dir=False):
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
        self.resumed_chunks = 0
        self.log_run_dir = None
        self._paradigm_tensor = tf.constant(self.paradigm.to_numpy(np.float32))
        self._predict = self._build_predict()
        self._solver_cache = {}

    # ------------------------------------------------------------------ predictions
    def _build_predict(self):
        """Tensor prediction function; stimulus pre-convolved when the HRF is shared."""
        model = self.model
        hrf_model = getattr(model, "hrf_model", None)
        shared_hrf = hrf_model is None or (
            not hrf_model.unique_hrfs and np.ndim(hrf_model.get_hrf()) == 1
        )
        self._linear = None
        if model.linear_in_paradigm and shared_hrf:
            stimulus = self._paradigm_tensor
            if hrf_model is not None:
                stimulus = hrf_model.convolve(stimulus)  # convolution and RF are both linear

            def baseline_of(theta):
                baseline = model._baseline(theta)
                return tf.zeros(tf.shape(theta)[:1]) if baseline is None else baseline

            self._linear = (stimulus, model._rf, baseline_of)

            def predict(theta):
                response = tf.matmul(stimulus, model._rf(theta))
                baseline = model._baseline(theta)
                return response if baseline is None else response + baseline[None, :]

            return predict
        paradigm = self._paradigm_tensor
        return lambda theta: model._predict(paradigm, theta)

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
        group_keys = [label for label in fixed if label not in ("baseline", "amplitude")
                      or (label == "amplitude" and not spec.amplitude_in_scorer)]
        groups = self._fixed_groups(fixed, group_keys, usable)
        done = 0
        bar = tqdm(total=int(usable.sum()), desc="fit_grid", unit="voxel",
                   disable=not progressbar, leave=False)
        try:
            for key, members in groups:
                predictions = GridPredictions(
                    self.model, self.paradigm.to_numpy(np.float32), spec,
                    dict(zip(group_keys, key, strict=True)), grid_chunk,
                    cache_bytes=self.memory_limit // 4,
                )
                # Per voxel: its data, the score matrix row and its temporaries.
                chunk = self._voxel_chunk_size(
                    4 * (6 * min(predictions.n_points, grid_chunk) + 2 * n_timepoints)
                )
                for start in range(0, len(members), chunk):
                    index = members[start : start + chunk]
                    fixed_chunk = {label: values[index] for label, values in fixed.items()}
                    result[index] = search_chunk(
                        y[:, index], fixed_chunk, predictions, spec, positive_amplitude,
                        use_correlation_cost,
                    )
                    done += len(index)
                    bar.update(len(index))
        except KeyboardInterrupt:
            warnings.warn(
                f"grid search interrupted: {done} of {usable.sum()} voxels searched; the others "
                "have NaN parameters",
                RuntimeWarning,
                stacklevel=2,
            )
        finally:
            bar.close()
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
        free_baseline = "baseline" in labels and "baseline" not in fixed
        free_amplitude = linear and "amplitude" not in fixed
        closed = {"baseline"} if free_baseline else set()
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
        if "baseline" in labels and "baseline" not in spec.fixed:
            result[~usable, labels.index("baseline")] = self.data.to_numpy()[0, ~usable]

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
            divisive normalisation rescale their gain parameters and may need more).
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
        for label in ("baseline", "amplitude"):
            if label not in labels:
                raise ValueError(
                    f"{type(self.model).__name__} has no {label!r} parameter to refine"
                )
        gain_labels = ["amplitude"] if self.model.linear_in_amplitude else [
            label for label in ("amplitude", "neural_baseline") if label in labels]
        theta = frame.to_numpy(np.float32).copy()
        gains = [labels.index(label) for label in gain_labels]
        base = labels.index("baseline")
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
                theta[rows, gains] *= gain[:, None]
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
        self.model._check_parameter_ranges(frame, what)
        return frame


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
