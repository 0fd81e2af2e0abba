"""StimulusFitter: maximum-a-posteriori stimulus per time point by gradient descent."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

from ..stimuli import (
    CircularStimulus,
    ImageStimulus,
    PositiveStimulus,
    StimulusWithAmplitude,
)
from ..utils.distributions import mvn_logpdf, mvt_logpdf
from ..utils.formatting import format_data
from ..utils.posterior import _wrap
from ._loop import adam_minimize

__all__ = ["StimulusFitter", "make_bar_stimulus_fn"]

logger = logging.getLogger(__name__)


def make_bar_stimulus_fn(grid_coordinates, edge_width=0.1):
    """Return a ``stimulus_fn`` drawing a vertical bar from its position and width.

    Parameters
    ----------
    grid_coordinates : DataFrame, shape (n_pixels, 2)
        Pixel positions (columns ``x``, ``y``), as given to the 2D model.
    edge_width : float, default 0.1
        Softness of the bar's edges (logistic scale, in the units of ``x``).

    Returns
    -------
    callable
        ``stimulus_fn(params) -> images``: ``params`` is a float32 tensor (n_timepoints, 2)
        holding the bar's centre ``x`` and its width; images are (n_timepoints, n_pixels),
        1 inside the bar and 0 outside, with smooth (differentiable) edges.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from braincoder.stimuli import make_grid_coordinates
    >>> from braincoder.optimize.stimulus import make_bar_stimulus_fn
    >>> draw = make_bar_stimulus_fn(make_grid_coordinates(5, extent=2.0), edge_width=0.01)
    >>> image = draw(tf.constant([[0.0, 1.0]])).numpy().reshape(5, 5)
    >>> image[0].round().tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    x = tf.constant(np.asarray(grid_coordinates)[:, 0], tf.float32)
    edge = float(edge_width)
    if not edge > 0:
        raise ValueError(f"edge_width must be > 0, got {edge_width}")

    def stimulus_fn(params):
        centre, width = params[:, 0:1], params[:, 1:2]
        return tf.sigmoid((0.5 * tf.abs(width) - tf.abs(x[tf.newaxis, :] - centre)) / edge)

    return stimulus_fn


def _fit_mask(mask, shape):
    """Return the fitted entries as a boolean array of ``shape`` (all without a mask)."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    values = np.asarray(mask)
    if values.dtype != bool:
        if not np.isin(values, (0, 1)).all():
            raise ValueError("mask must hold booleans (or 0/1)")
        values = values.astype(bool)
    if values.ndim == 3 and values.shape[0] == shape[0]:
        values = values.reshape(shape[0], -1)
    if values.shape not in ((shape[1],), shape):
        raise ValueError(
            f"mask must have shape ({shape[1]},) or {shape} (time × column), got "
            f"{np.shape(mask)}"
        )
    values = np.broadcast_to(values, shape)
    if not values.any():
        raise ValueError("mask selects no entries to fit")
    return values


def _column_kinds(space, n_columns, stimulus_fn):
    """Which stimulus columns are optimised in log space, and the circular space, if any.

    Returns a boolean mask over the ``n_columns`` columns (positive stimuli: the first
    column of a :class:`~braincoder.stimuli.PositiveStimulus`, alone or with an amplitude)
    and the :class:`~braincoder.stimuli.CircularStimulus` whose first column is wrapped
    into one period (or None).
    """
    positive = np.zeros(n_columns, dtype=bool)
    if stimulus_fn is not None:
        return positive, None
    base = space.base if isinstance(space, StimulusWithAmplitude) else space
    positive[0] = isinstance(base, PositiveStimulus) and n_columns > 0
    return positive, base if isinstance(base, CircularStimulus) else None


def _neighbour_pairs(grid_coordinates):
    """Index pairs of horizontally and vertically adjacent pixels on a regular lattice."""
    coords = np.asarray(grid_coordinates, dtype=np.float64)
    xs, ys = np.unique(coords[:, 0]), np.unique(coords[:, 1])
    ix, iy = np.searchsorted(xs, coords[:, 0]), np.searchsorted(ys, coords[:, 1])
    lattice = np.full((len(ys), len(xs)), -1)
    lattice[iy, ix] = np.arange(len(coords))
    pairs = []
    for a, b in ((lattice[:, :-1], lattice[:, 1:]), (lattice[:-1, :], lattice[1:, :])):
        keep = (a >= 0) & (b >= 0)
        pairs.append(np.stack([a[keep], b[keep]], axis=1))
    return np.concatenate(pairs).astype(np.int32)


class StimulusFitter:
    """Maximum-a-posteriori stimulus for every time point, by gradient descent.

    Each time point's objective is ``−log p(data_t | s_t)`` (Gaussian or Student-t noise
    with covariance ``omega``) plus optional priors on the stimulus. Starting from a grid
    search (the most likely candidate of a stimulus grid), Adam refines all time points at
    once (each time point has its own Adam moments, so they do not interact), many steps per
    compiled call, with early stopping. A time point keeps its grid start if the refinement
    did not lower its objective, so the result is never worse than the start.

    What is optimised:

    * 1D models: the stimulus value (in log space for positive stimuli, e.g. log-Gaussian
      tuning; circular stimuli are wrapped into the grid's period).
    * Image models: the pixel values, or — with ``stimulus_fn`` — the parameters of a
      parametric stimulus (e.g. :func:`~braincoder.optimize.stimulus.make_bar_stimulus_fn`).
    * 1D models with ``model_stimulus_amplitude``: the stimulus value (as above) and its
      amplitude.
    * Other multi-dimensional models: the stimulus features.

    Parameters
    ----------
    data : DataFrame, shape (n_timepoints, n_voxels)
        Responses to decode.
    model : EncodingModel
        The fitted encoding model.
    omega : DataFrame or array, shape (n_voxels, n_voxels)
        Noise covariance (from :class:`~braincoder.optimize.ResidualFitter`).
    parameters, weights : DataFrame, optional
        Fall back to the model's. Voxels are matched to ``data`` by label.
    dof : float, optional
        Student-t degrees of freedom; Gaussian noise when None.

    Attributes
    ----------
    estimated_stimulus : DataFrame
        The fitted stimuli (after :meth:`fit`).
    log_posterior, init_log_posterior : Series
        Per time point: the (unnormalised) log posterior at the fit and at the start.
    costs : ndarray
        Total objective per step.
    n_iterations : int
        Steps taken.
    stop_reason : str
        Why the optimisation stopped.

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import GaussianPRF
    >>> from braincoder.optimize import StimulusFitter
    >>> parameters = np.column_stack([np.linspace(0, 10, 11), np.full(11, 1.5),
    ...                               np.ones(11), np.zeros(11)])
    >>> model = GaussianPRF(parameters=parameters)
    >>> data = model.predict(paradigm=[2.5, 7.3])
    >>> fitter = StimulusFitter(data, model, omega=0.01 * np.eye(11))
    >>> fitter.fit(progressbar=False).round(2)["x"].tolist()
    [2.5, 7.3]
    """

    def __init__(self, data, model, omega, parameters=None, weights=None, dof=None):
        self.model = model
        self.data = format_data(data)
        self.inputs = model.decoding_inputs(self.data.columns, parameters, weights, omega, dof)
        self.estimated_stimulus = None
        self.log_posterior = None
        self.init_log_posterior = None
        self.costs = None
        self.n_iterations = 0
        self.stop_reason = None

    def fit_grid(self, *values):
        """Most likely stimulus of a grid, per time point (the usual start of :meth:`fit`).

        Parameters
        ----------
        *values : array-like
            One 1D array of candidate values per stimulus dimension, in the order of the
            stimulus space's dimensions; the grid is their Cartesian product. Image models
            take a single array of candidate images instead, shape (n_candidates,
            n_pixels).

        Returns
        -------
        DataFrame
            Time × stimulus dimension (time × pixel for image models), indexed like the
            data; pass it to :meth:`fit` as ``init_pars``.

        Raises
        ------
        ValueError
            When the number of arrays does not match the stimulus dimensions, or a value
            lies outside the stimulus space.

        Examples
        --------
        A linear model of two stimulus features, searched over a 5 × 5 grid:

        >>> import numpy as np
        >>> from braincoder.models import LinearModel
        >>> from braincoder.optimize import StimulusFitter
        >>> model = LinearModel(weights=np.eye(2))
        >>> responses = model.predict(paradigm=[[0.9, -0.6], [0.1, 0.4]])
        >>> search = StimulusFitter(responses, model, omega=np.eye(2))
        >>> search.fit_grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)).to_numpy().tolist()
        [[1.0, -0.5], [0.0, 0.5]]
        """
        space = self.model.stimulus
        if isinstance(space, ImageStimulus):
            if len(values) != 1:
                raise ValueError(
                    "an image model takes one array of candidate images (n_candidates, "
                    f"n_pixels), got {len(values)} arrays"
                )
            candidates = values[0]
        else:
            n_dims = space.n_dimensions
            if n_dims is not None and len(values) != n_dims:
                labels = space.dimension_labels
                named = "" if labels is None else f" ({', '.join(map(str, labels))})"
                raise ValueError(
                    f"fit_grid needs one array of values per stimulus dimension: {n_dims}"
                    f"{named}, got {len(values)}"
                )
            axes = [np.asarray(axis, dtype=np.float64).ravel() for axis in values]
            for number, axis in enumerate(axes):
                if axis.size == 0:
                    raise ValueError(f"fit_grid: the values of dimension {number} are empty")
            candidates = np.stack(
                [mesh.ravel() for mesh in np.meshgrid(*axes, indexing="ij")], axis=1
            )
        best = self._best_of_grid(candidates, what="fit_grid values")
        return pd.DataFrame(best, index=self.data.index,
                            columns=self._stimulus_columns(best.shape[1]))

    def fit(
        self, init_pars=None, max_n_iterations=1000, min_n_iterations=100, lag=100, rtol=1e-6,
        learning_rate=0.01, progressbar=True, l2_norm=0.0, smoothness=0.0, stimulus_fn=None,
        stimulus_range=None, l1_norm=0.0, mask=None, legacy_adam=False,
    ):
        """Find the MAP stimulus of every time point.

        Parameters
        ----------
        init_pars : array-like or DataFrame, optional
            Starting stimuli, one row per time point (for ``stimulus_fn``: its parameters,
            whose column labels label the output). None: grid search over
            ``stimulus_range``.
        max_n_iterations, min_n_iterations, lag, rtol : optional
            Budget and early stopping (relative improvement over ``lag`` steps).
        learning_rate : float, default 0.01
            Adam step size.
        progressbar : bool, default True
            Show a tqdm bar.
        l2_norm : float, default 0.0
            Weight of the L2 prior ``l2_norm · Σ s²`` on the stimulus (image). None means 0.
        smoothness : float, default 0.0
            Weight of ``smoothness · Σ (s_i − s_j)²`` over adjacent pixels (image models).
        stimulus_fn : callable, optional
            Tensor function ``params (n_timepoints, n_params) -> images (n_timepoints,
            n_pixels)`` of a parametric stimulus; needs ``init_pars``.
        stimulus_range : array-like or DataFrame, optional
            Grid of the starting search (see
            :meth:`~braincoder.models.decoding.DecodingMixin.get_stimulus_pdf`); the model's
            default grid when None.
        l1_norm : float, default 0.0
            Weight of the L1 (sparsity) prior ``l1_norm · Σ |s|`` on the stimulus. None
            means 0.
        mask : array-like of bool, optional
            Which entries are fitted: shape (n_columns,) for the same columns at every time
            point, or (n_timepoints, n_columns) (images also (n_timepoints, height,
            width)), the columns being those of the result. The other entries keep their
            starting values. With a mask and no ``init_pars``, an image fit starts from a
            blank image, so that only the masked pixels (e.g. where a stimulus was shown)
            carry the decoded drive.
        legacy_adam : bool, default False
            Accepted for scripts written for the public braincoder (where it picks the
            TensorFlow 2.10 Adam); Keras 3 has a single Adam, used either way.

        Returns
        -------
        DataFrame
            Time × stimulus dimension (1D models), time × pixel (images) or time × stimulus
            parameter (``stimulus_fn``).

        Raises
        ------
        ValueError
            For negative prior weights, ``smoothness`` without a pixel grid, ``stimulus_fn``
            without ``init_pars``, starting values of the wrong shape, or a mask of the
            wrong shape or selecting nothing.
        """
        del legacy_adam  # one Adam in Keras 3
        l1_norm = 0.0 if l1_norm is None else l1_norm
        l2_norm = 0.0 if l2_norm is None else l2_norm
        for name, value in (("l2_norm", l2_norm), ("l1_norm", l1_norm),
                            ("smoothness", smoothness)):
            if not float(value) >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        space = self.model.stimulus
        if smoothness and not isinstance(space, ImageStimulus):
            raise ValueError("smoothness needs an image model (a pixel grid)")
        if stimulus_fn is not None and not callable(stimulus_fn):
            raise TypeError("stimulus_fn must be callable: params tensor -> images tensor")
        if mask is not None and init_pars is None and isinstance(space, ImageStimulus):
            init_pars = np.zeros((len(self.data), space.n_dimensions))
        init, columns = self._initial(init_pars, stimulus_fn, stimulus_range)
        fitted = _fit_mask(mask, init.shape)
        positive, circular = _column_kinds(space, init.shape[1], stimulus_fn)
        init = np.where(positive, np.log(np.where(positive, init, 1.0)), init).astype(np.float32)
        log_columns = tf.constant(positive.astype(np.float32))
        free = tf.constant(fitted.astype(np.float32))
        start = tf.constant(init)

        inputs = self.model, self.inputs
        chol = tf.linalg.cholesky(tf.constant(self.inputs.omega, tf.float64))
        observed = tf.constant(self.data.to_numpy(np.float64))
        pairs = None
        if smoothness:
            pairs = tf.constant(_neighbour_pairs(space.grid_coordinates))

        def objective(u):
            """Negative log posterior per time point (float64, (n_timepoints,))."""
            model, ins = inputs
            u = start + free * (u - start)  # entries outside the mask stay at their start
            # exp() on the positive columns (optimised in log space), identity elsewhere
            stimulus = u + log_columns * (tf.exp(u * log_columns) - u)
            if stimulus_fn is not None:
                stimulus = tf.cast(stimulus_fn(stimulus), tf.float32)
            response = tf.cast(
                model.stimulus_response_tensor(stimulus, ins.parameters, ins.weights, ins.columns),
                tf.float64,
            )
            if ins.dof is None:
                cost = -mvn_logpdf(observed, response, chol)
            else:
                cost = -mvt_logpdf(observed, response, chol, ins.dof)
            image = tf.cast(stimulus, tf.float64)
            if l2_norm:
                cost += l2_norm * tf.reduce_sum(tf.square(image), axis=1)
            if l1_norm:
                cost += l1_norm * tf.reduce_sum(tf.abs(image), axis=1)
            if pairs is not None:
                diff = tf.gather(image, pairs[:, 0], axis=1) - tf.gather(image, pairs[:, 1], axis=1)
                cost += smoothness * tf.reduce_sum(tf.square(diff), axis=1)
            return cost

        result = adam_minimize(
            lambda u: tf.reduce_sum(objective(u)), init, learning_rate=learning_rate,
            max_n_iterations=max_n_iterations, min_n_iterations=min_n_iterations, lag=lag,
            rtol=rtol, progressbar=progressbar, description="StimulusFitter",
        )
        start_cost = objective(tf.constant(init, tf.float32)).numpy()
        final_cost = objective(tf.constant(result.x, tf.float32)).numpy()
        keep_start = ~(final_cost <= start_cost)
        if keep_start.any():
            logger.info("%d time points kept their grid start", int(keep_start.sum()))
        best = np.where(keep_start[:, np.newaxis], init, result.x).astype(np.float64)
        best = np.where(fitted, best, init)
        values = np.where(positive, np.exp(np.where(positive, best, 0.0)), best)
        if circular is not None:
            low = float(circular.default_grid(2).to_numpy().min())
            values[:, 0] = _wrap(values[:, 0], low)
        index = self.data.index
        self.estimated_stimulus = pd.DataFrame(values, index=index, columns=columns)
        self.log_posterior = pd.Series(-np.minimum(final_cost, start_cost), index=index,
                                       name="log_posterior")
        self.init_log_posterior = pd.Series(-start_cost, index=index, name="log_posterior")
        self.costs = result.losses
        self.n_iterations = result.n_iterations
        self.stop_reason = result.stop_reason
        return self.estimated_stimulus

    def _initial(self, init_pars, stimulus_fn, stimulus_range):
        """Return starting values (float32, (n_timepoints, n)) and the output's labels."""
        n_timepoints = len(self.data)
        space = self.model.stimulus
        if stimulus_fn is not None:
            if init_pars is None:
                raise ValueError("stimulus_fn needs init_pars (time × stimulus parameter)")
            frame = init_pars if isinstance(init_pars, pd.DataFrame) else pd.DataFrame(
                np.asarray(init_pars, dtype=np.float64).reshape(n_timepoints, -1)
            )
            columns = frame.columns
            init = frame.to_numpy(np.float64)
        elif init_pars is not None:
            init = np.asarray(init_pars, dtype=np.float64)
            init = init.reshape(n_timepoints, -1) if init.size % n_timepoints == 0 else init
            columns = self._stimulus_columns(init.shape[-1] if init.ndim == 2 else 0)
        else:
            init = self._best_of_grid(stimulus_range)
            columns = self._stimulus_columns(init.shape[1])
        expected = None if stimulus_fn is not None else space.n_dimensions
        if init.ndim != 2 or init.shape[0] != n_timepoints or (
            expected is not None and init.shape[1] != expected
        ):
            raise ValueError(
                f"init_pars must have one row per time point ({n_timepoints})"
                + ("" if expected is None else f" and {expected} column(s)")
                + f", got shape {np.shape(init_pars)}"
            )
        if not np.isfinite(init).all():
            raise ValueError("init_pars holds NaN/inf values")
        if stimulus_fn is None:
            self._check_width(init, "init_pars")
        positive, _ = _column_kinds(space, init.shape[1], stimulus_fn)
        if (init[:, positive] <= 0).any():
            raise ValueError("init_pars must be > 0 for a positive stimulus space")
        return init.astype(np.float32), columns

    def _best_of_grid(self, stimulus_range, what="stimulus_range"):
        """Most likely candidate of a stimulus grid per time point (float64 array)."""
        grid, _, _ = self.model.stimulus_grid(stimulus_range, what)
        ins = self.inputs
        self._check_width(grid, what)
        response = self.model.stimulus_response_tensor(grid, ins.parameters, ins.weights,
                                                       ins.columns)
        log_like = self.model.log_likelihood_tensor(
            self.data.to_numpy(np.float64), response, ins.omega, ins.dof
        )
        return grid[np.argmax(log_like.numpy(), axis=1)].astype(np.float64)

    def _check_width(self, stimuli, what):
        """Raise if the stimuli's columns do not fit the model (e.g. a linear model's weights)."""
        try:
            self.model.check_shapes(stimuli, self.inputs.parameters, self.inputs.weights)
        except ValueError as error:
            raise ValueError(f"{what}: {error}") from None

    def _stimulus_columns(self, n_columns):
        labels = self.model.stimulus.dimension_labels
        if labels is not None and len(labels) == n_columns:
            return labels
        return pd.RangeIndex(n_columns, name="stimulus_dimension")
