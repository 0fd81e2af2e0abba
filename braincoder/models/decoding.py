"""Decoding methods of encoding models: stimulus likelihoods, posteriors, Fisher information.

Every row of ``data`` is treated as the response to one stimulus (e.g. single-trial
estimates). The noise of a voxel pattern around the model's prediction ``f(s)`` is
multivariate normal ``N(f(s), Ω)`` or, given ``dof``, multivariate Student-t with shape
``Ω`` and ``dof`` degrees of freedom (fit both with
:class:`~braincoder.optimize.ResidualFitter`). Models with an HRF are decoded with their
HRF-free response (stimulus-driven response plus baseline).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf

from ..stimuli import ImageStimulus
from ..utils.distributions import (
    check_covariance,
    cholesky_log_det,
    cross_mahalanobis,
    mvn_logpdf,
    mvn_logpdf_from_mahalanobis,
    mvt_logpdf,
    mvt_logpdf_from_mahalanobis,
    sample_noise,
)
from ..utils.formatting import format_data
from ..utils.labels import label_positions
from ..utils.posterior import _cell_widths

logger = logging.getLogger(__name__)

#: Elements of the largest float64 tensor built by the sampled Fisher information.
_SAMPLE_BUDGET = 2**23


def match_voxels(reference, other, reference_name, other_name):
    """Positions of ``reference``'s voxel labels within ``other``'s labels.

    Labels are matched by name (any order; ``other`` may hold more voxels). An unlabelled
    side (see :func:`~braincoder.utils.labels.is_unlabelled`) is matched by position.

    Parameters
    ----------
    reference, other : Index
        Voxel labels.
    reference_name, other_name : str
        Names of the inputs for the message.

    Returns
    -------
    ndarray of int
        ``other[positions]`` lines up with ``reference``.

    Raises
    ------
    ValueError
        If the labels cannot be aligned; the message names the missing voxels.
    """
    return label_positions(reference, other, reference_name, other_name, what="voxels")


@dataclass
class _Inputs:
    """Validated decoding inputs (numpy, aligned to ``voxels``)."""

    voxels: pd.Index
    parameters: np.ndarray
    weights: np.ndarray | None
    columns: np.ndarray
    omega: np.ndarray
    dof: float | None


class DecodingMixin:
    """Methods that invert an encoding model, available on every encoding model.

    :class:`~braincoder.models.EncodingModel` inherits them: :meth:`likelihood`,
    :meth:`get_stimulus_pdf`, :meth:`get_fisher_information` and :meth:`get_rf_overlap`.
    """

    # ------------------------------------------------------------------ helpers
    def _decoding_view(self):
        """Return the model without its HRF (a shallow view sharing its state)."""
        from .base import HRFEncodingModel

        if self.hrf_model is None:
            return self
        base = type(self)
        if isinstance(self, HRFEncodingModel):
            base = getattr(type(self), "_decoding_class", None) or next(
                c for c in type(self).__mro__ if not issubclass(c, HRFEncodingModel))
        view = object.__new__(base)
        view.__dict__.update(self.__dict__)
        view.hrf_model = None
        return view

    def _stimulus_response(self, stimuli, parameters, weights, columns):
        """HRF-free response to each stimulus row, float32 tensor (n_stimuli, n_voxels)."""
        response = self._decoding_view()._predict(stimuli, parameters, weights)
        return tf.gather(response, columns, axis=1)

    def _decoding_inputs(self, voxels, parameters, weights, omega, dof, grid=None):
        """Validate parameters, weights, Ω and dof; align them to the ``voxels`` labels.

        ``voxels`` is the data's columns, or None (then the model's own voxels).
        """
        parameters = self._get_parameters(parameters)
        weights = self._get_weights(weights)
        if grid is not None:
            self._check_shapes(grid, parameters, weights)
        model_voxels = self._output_columns(parameters, weights)
        if voxels is None:
            voxels = model_voxels
        what = "weights" if weights is not None else "parameters"
        columns = match_voxels(voxels, model_voxels, "data", what)
        if omega is None:
            omega = getattr(self, "omega", None)
            if omega is None:
                raise ValueError(
                    "no omega (noise covariance) given; fit one with "
                    "braincoder.optimize.ResidualFitter or pass it to the constructor"
                )
        if isinstance(omega, pd.DataFrame):
            if not omega.index.equals(omega.columns):
                raise ValueError("omega must have the same voxel labels on its rows and columns")
            order = match_voxels(voxels, omega.index, "data", "omega")
            omega = omega.iloc[order, order]
        omega = check_covariance(omega, "omega", n=len(voxels))
        if dof is not None:
            dof = float(dof)
            if not (np.isfinite(dof) and dof > 0):
                raise ValueError(f"dof must be a finite number > 0, got {dof}")
        return _Inputs(
            voxels=voxels,
            parameters=self._parameter_array(parameters),
            weights=None if weights is None else weights.to_numpy(np.float32),
            columns=columns.astype(np.int32),
            omega=omega,
            dof=dof,
        )

    def _stimulus_grid(self, stimuli, what="stimulus_range"):
        """Candidate stimuli as (float32 array (n, n_dimensions), column labels, widths).

        ``widths`` holds the cell width of each point of a strictly increasing 1D grid (the
        posterior is a density over it), else None (the posterior is a mass per candidate).
        """
        space = self.stimulus
        if stimuli is None:
            try:
                stimuli = space.default_grid()
            except NotImplementedError:
                raise ValueError(
                    f"{what} is required: {type(space).__name__} has no default grid"
                ) from None
            if isinstance(space, ImageStimulus):
                stimuli = space.grid_coordinates
        if isinstance(space, ImageStimulus):
            return self._image_grid(stimuli, what)
        if isinstance(stimuli, pd.Series):
            stimuli = stimuli.to_frame()
        frame = stimuli if isinstance(stimuli, pd.DataFrame) else None
        array = np.asarray(stimuli, dtype=np.float64)
        if array.ndim == 1:
            array = array[:, np.newaxis]
        n_dims = space.n_dimensions
        wrong = n_dims is not None and array.ndim == 2 and array.shape[1] != n_dims
        if array.ndim != 2 or array.shape[0] == 0 or wrong:
            expected = "any number of" if n_dims is None else str(n_dims)
            raise ValueError(
                f"{what} must have shape (n_stimuli, {expected}) for {type(self).__name__} "
                f"(stimulus space with {expected} dimension{'s' if n_dims != 1 else ''}), "
                f"got shape {np.shape(stimuli)}"
            )
        try:
            space.clean_paradigm(array)
        except ValueError as error:
            raise ValueError(f"{what}: {error}") from None
        if array.shape[1] == 1:
            columns = pd.Index(array[:, 0], name="stimulus")
            return array.astype(np.float32), columns, _cell_widths(array[:, 0])
        columns = frame.index if frame is not None else pd.RangeIndex(len(array), name="candidate")
        return array.astype(np.float32), columns, None

    def _image_grid(self, stimuli, what):
        """Candidate images, or dot images at (x, y) positions (nearest pixel)."""
        space = self.stimulus
        if isinstance(stimuli, pd.DataFrame) and list(stimuli.columns) == ["x", "y"]:
            positions = stimuli.to_numpy(np.float64)
            if not np.isfinite(positions).all():
                raise ValueError(f"{what}: dot positions must be finite")
            pixels = space.grid_coordinates.to_numpy(np.float64)
            distance = ((positions[:, np.newaxis, :] - pixels[np.newaxis]) ** 2).sum(-1)
            images = np.zeros((len(positions), len(pixels)), np.float32)
            images[np.arange(len(positions)), distance.argmin(axis=1)] = 1.0
            return images, pd.MultiIndex.from_frame(stimuli), None
        array = np.asarray(stimuli, dtype=np.float64)
        if array.ndim == 3:
            array = array.reshape(array.shape[0], -1)
        if array.ndim != 2 or array.shape[1] != space.n_dimensions:
            raise ValueError(
                f"{what} must be candidate images of shape (n_candidates, "
                f"{space.n_dimensions}) (one column per pixel) or a DataFrame of dot "
                f"positions with columns ['x', 'y'], got shape {np.shape(stimuli)}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{what}: candidate images hold NaN/inf values")
        columns = (
            stimuli.index if isinstance(stimuli, pd.DataFrame)
            else pd.RangeIndex(len(array), name="candidate")
        )
        return array.astype(np.float32), columns, None

    def _log_likelihood(self, data, response, omega, dof):
        """Return log p(data_t | stimulus_g) as a float64 tensor (n_timepoints, n_stimuli)."""
        chol = tf.linalg.cholesky(tf.constant(omega, tf.float64))
        maha = cross_mahalanobis(
            tf.constant(data, tf.float64), tf.cast(response, tf.float64), chol
        )
        n = omega.shape[0]
        log_det = cholesky_log_det(chol)
        if dof is None:
            return mvn_logpdf_from_mahalanobis(maha, log_det, n)
        return mvt_logpdf_from_mahalanobis(maha, log_det, n, dof)

    # ------------------------------------------------------------------ public
    def get_rf_overlap(self, parameters=None, weights=None):
        """Return the voxel × voxel overlap matrix ``WWᵀ`` of the noise model.

        With weights (basis function × voxel), ``W`` is their transpose and ``WWᵀ`` is the
        weights' inner product between voxels. Without weights (pRF models), ``W`` holds each
        voxel's stimulus-driven response (no baseline, no HRF) to every stimulus of a grid
        — by default ``self.stimulus.default_grid()`` (for 2D models, a dot at every pixel,
        i.e. the receptive fields), or the grid given to :meth:`init_pseudoWWT` — divided
        by the square root of the grid size. Either way the matrix is scaled so that its
        diagonal averages 1, which makes ``σ²`` in
        :class:`~braincoder.optimize.ResidualFitter` the average variance of the
        stimulus-space noise component.

        Parameters
        ----------
        parameters, weights : DataFrame, optional
            Fall back to the constructor's.

        Returns
        -------
        DataFrame, shape (n_voxels, n_voxels)
            Symmetric positive semi-definite overlap, labelled by voxel.

        Raises
        ------
        ValueError
            If the model has neither weights nor a stimulus grid.
        """
        parameters = self._get_parameters(parameters)
        weights = self._get_weights(weights)
        voxels = self._output_columns(parameters, weights)
        overlap = self._get_rf_overlap(
            self._parameter_array(parameters),
            None if weights is None else weights.to_numpy(np.float64),
        )
        return pd.DataFrame(overlap, index=voxels, columns=voxels)

    def init_pseudoWWT(self, stimulus_range, parameters=None, subtract_baseline=False):  # noqa: N802
        """Set the stimulus grid of the receptive-field overlap and return ``WᵀW`` over it.

        As in the public braincoder, ``W`` (stimulus × voxel) holds every voxel's response
        to every stimulus of ``stimulus_range`` without HRF, *including* its baseline
        unless ``subtract_baseline``, and the raw ``WᵀW`` is returned. From then on,
        :meth:`get_rf_overlap` (and so :class:`~braincoder.optimize.ResidualFitter`)
        computes its overlap — stimulus-driven responses only, diagonal averaging 1 —
        over ``stimulus_range`` instead of the stimulus space's default grid.

        Parameters
        ----------
        stimulus_range : array-like or DataFrame
            Stimulus grid, one row per stimulus (for image models: candidate images, or a
            DataFrame of dot positions with columns ``x`` and ``y``).
        parameters : DataFrame, optional
            Falls back to the constructor's.
        subtract_baseline : bool, default False
            Leave the baseline out of ``W`` (the stimulus-driven responses only).

        Returns
        -------
        DataFrame, shape (n_voxels, n_voxels)
            The raw ``WᵀW``, labelled by voxel.

        Raises
        ------
        ValueError
            If the grid does not fit the stimulus space.
        """
        grid, _, _ = self._stimulus_grid(stimulus_range, "stimulus_range")
        self._overlap_grid = grid
        parameters = self._get_parameters(parameters)
        array = tf.constant(self._parameter_array(parameters), tf.float32)
        view = self._decoding_view()
        response = np.asarray(view._neural(tf.constant(np.asarray(grid, np.float32)), array),
                              dtype=np.float64)
        baseline = view._baseline(array)
        if baseline is not None and not subtract_baseline:
            response = response + np.asarray(baseline, dtype=np.float64)[np.newaxis, :]
        voxels = self._output_columns(parameters, None)
        self._pseudo_wwt = pd.DataFrame(response.T @ response, index=voxels, columns=voxels)
        return self._pseudo_wwt

    def get_pseudoWWT(self):  # noqa: N802
        """Return ``WᵀW`` as the public braincoder does.

        With weights, their raw inner product between voxels; otherwise the raw matrix of
        the last :meth:`init_pseudoWWT`, or, before any, :meth:`get_rf_overlap` (the
        normalised overlap over the default grid).

        Returns
        -------
        DataFrame, shape (n_voxels, n_voxels)
            Labelled by voxel.
        """
        if self.weights is not None:
            return self.weights.T @ self.weights
        stored = getattr(self, "_pseudo_wwt", None)
        return stored if stored is not None else self.get_rf_overlap()

    def _get_rf_overlap(self, parameters, weights):
        """Normalised ``WWᵀ`` (numpy float64, n_voxels × n_voxels); see get_rf_overlap."""
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).T
        else:
            grid = getattr(self, "_overlap_grid", None)
            if grid is None:
                try:
                    grid = self.stimulus.overlap_grid()
                except NotImplementedError:
                    raise ValueError(
                        f"{type(self).__name__} has no weights and its stimulus space has no "
                        "default grid, so the receptive-field overlap cannot be computed; "
                        "give a grid with init_pseudoWWT(stimulus_range)"
                    ) from None
            grid = tf.constant(np.asarray(grid, dtype=np.float32))
            response = self._decoding_view()._neural(grid, tf.constant(parameters, tf.float32))
            w = np.asarray(response, dtype=np.float64).T / np.sqrt(grid.shape[0])
        overlap = w @ w.T
        scale = np.mean(np.diag(overlap))
        return overlap / scale if scale > 0 else overlap

    def likelihood(
        self, stimuli, data=None, parameters=None, weights=None, omega=None, dof=None,
        logp=False, normalize=True,
    ):
        """Likelihood of every time point's data under every candidate stimulus.

        Parameters
        ----------
        stimuli : array-like or DataFrame
            Candidate stimuli: 1D values (1D models); for image models, candidate images
            (n_candidates × n_pixels) or a DataFrame of dot positions (columns ``x``, ``y``;
            each becomes an image lighting the nearest pixel); None for the default grid.
        data : DataFrame, shape (n_timepoints, n_voxels), optional
            Responses to decode (fall back to the constructor's).
        parameters, weights : DataFrame, optional
            Fall back to the constructor's. Voxels are matched to ``data`` by label.
        omega : DataFrame or array, shape (n_voxels, n_voxels), optional
            Noise covariance (Student-t shape matrix with ``dof``).
        dof : float, optional
            Degrees of freedom of Student-t noise; Gaussian noise when None.
        logp : bool, default False
            Return log values.
        normalize : bool, default True
            Normalise over the candidates per time point (the posterior under a flat prior):
            densities integrating to 1 over a strictly increasing 1D grid (sum of density
            times cell width, the grid step for regular grids), otherwise masses summing to 1.

        Returns
        -------
        DataFrame, shape (n_timepoints, n_stimuli)
            Indexed like ``data``; columns are the stimulus values (1D), the dot positions
            (MultiIndex ``x``, ``y``) or the candidates' labels.

        Raises
        ------
        ValueError
            For a stimulus grid of the wrong dimensionality, voxels that cannot be matched,
            or an ``omega`` that is not symmetric positive definite.
        """
        if data is None:
            data = getattr(self, "data", None)
            if data is None:
                raise ValueError("no data given (pass them here or to the constructor)")
        data = format_data(data)
        grid, columns, widths = self._stimulus_grid(stimuli, "stimuli")
        inputs = self._decoding_inputs(
            data.columns, parameters, weights, omega, dof, pd.DataFrame(grid)
        )
        response = self._stimulus_response(grid, inputs.parameters, inputs.weights, inputs.columns)
        log_like = self._log_likelihood(data.to_numpy(np.float64), response, inputs.omega,
                                        inputs.dof)
        if normalize:
            log_w = 0.0 if widths is None else tf.constant(np.log(widths)[np.newaxis, :])
            log_like = log_like - tf.reduce_logsumexp(log_like + log_w, axis=1, keepdims=True)
        values = log_like.numpy() if logp else np.exp(log_like.numpy())
        return pd.DataFrame(values, index=data.index, columns=columns)

    def get_stimulus_pdf(
        self, data, stimulus_range=None, parameters=None, weights=None, omega=None, dof=None,
        normalize=True, include_multidimensional_stimulus_index=False,
    ):
        """Posterior over a grid of stimuli for every time point (flat prior).

        Computed in log space and normalised with a log-sum-exp.

        Parameters
        ----------
        data : DataFrame, shape (n_timepoints, n_voxels)
            Responses to decode.
        stimulus_range : array-like or DataFrame, optional
            Stimulus grid (see :meth:`likelihood`); ``self.stimulus.default_grid()`` when
            None (every pixel's dot, labelled by ``(x, y)``, for image models).
        parameters, weights, omega, dof : optional
            See :meth:`likelihood`.
        normalize : bool, default True
            See :meth:`likelihood`.
        include_multidimensional_stimulus_index : bool, default False
            For a grid with several dimensions, label the columns with a MultiIndex of the
            stimulus values (one level per dimension, named like the grid's columns, or
            by the stimulus space for arrays), so that marginals are a
            ``groupby(level=...)`` away. Not for image models.

        Returns
        -------
        DataFrame, shape (n_timepoints, n_stimuli)
            Posterior density (1D grids) or mass (candidates), time × stimulus.

        Examples
        --------
        >>> import numpy as np
        >>> from braincoder.models import GaussianPRF
        >>> model = GaussianPRF(parameters=[[2.0, 1.0, 1.0, 0.0], [6.0, 1.0, 1.0, 0.0]])
        >>> data = model.predict(paradigm=[2.0])
        >>> pdf = model.get_stimulus_pdf(data, np.linspace(0, 8, 81), omega=0.01 * np.eye(2))
        >>> float(pdf.columns[pdf.to_numpy().argmax()])
        2.0
        """
        if stimulus_range is None:
            self._stimulus_grid(None, "stimulus_range")  # a clear error if there is no default
        pdf = self.likelihood(
            stimulus_range, data, parameters, weights, omega, dof, logp=False,
            normalize=normalize,
        )
        if include_multidimensional_stimulus_index and self.stimulus.n_dimensions != 1:
            if isinstance(self.stimulus, ImageStimulus):
                raise ValueError(
                    "include_multidimensional_stimulus_index is not available for image "
                    "models (one dimension per pixel)"
                )
            grid, _, _ = self._stimulus_grid(stimulus_range)
            labels = range(grid.shape[1])
            if isinstance(stimulus_range, pd.DataFrame):
                labels = stimulus_range.columns  # the caller's names for the dimensions
            elif (self.stimulus.dimension_labels is not None
                  and len(self.stimulus.dimension_labels) == grid.shape[1]):
                labels = self.stimulus.dimension_labels
            pdf.columns = pd.MultiIndex.from_arrays(
                [grid[:, j].astype(np.float64) for j in range(grid.shape[1])],
                names=[str(label) for label in labels],
            )
        return pdf

    def get_expected_uncertainty(
        self, stimuli=None, omega=None, dof=None, parameters=None, weights=None,
        n_simulations=100, stimulus_range=None, seed=0, batch_stimuli=None, progress=False,
    ):
        """Bias and spread of the decoded posterior mean, by simulating and re-decoding.

        For every stimulus ``s``, ``n_simulations`` responses are drawn from the fitted
        model (its HRF-free response to ``s`` plus noise from ``omega``, Student-t with
        ``dof``), each is decoded with :meth:`get_stimulus_pdf` over ``stimulus_range``,
        and the posterior means are summarised. Unlike the Fisher information (a local
        bound for unbiased decoders), this shows the decoder's bias, e.g. regression
        towards the preferred stimuli of the population. Circular stimuli use circular
        means and wrapped errors.

        Parameters
        ----------
        stimuli : array-like, optional
            True stimuli to simulate (default: the stimulus space's default grid).
        omega, dof : optional
            Noise model (see :meth:`likelihood`).
        parameters, weights : DataFrame, optional
            Fall back to the constructor's.
        n_simulations : int, default 100
            Simulated responses per stimulus (at least 2).
        stimulus_range : array-like, optional
            Grid the simulated responses are decoded over (default: ``stimuli``).
        seed : int, default 0
            Seed of the simulated noise.
        batch_stimuli : int, optional
            Stimuli simulated and decoded at once (bounds memory); by default sized so
            that a batch evaluates about two million likelihoods.
        progress : bool, default False
            Show a tqdm bar over the batches.

        Returns
        -------
        DataFrame
            Indexed by the true stimulus: ``mean_E`` (mean of the posterior means),
            ``var_E`` (their variance across simulations), ``mean_error`` (bias),
            ``mean_abs_error`` and ``n_sims``.

        Raises
        ------
        ValueError
            For stimulus spaces with more than one dimension, fewer than 2 simulations,
            or a bad noise model.

        Examples
        --------
        >>> import numpy as np
        >>> from braincoder.models import GaussianPRF
        >>> parameters = np.column_stack([np.linspace(0, 10, 11), np.full(11, 1.5),
        ...                               np.ones(11), np.zeros(11)])
        >>> model = GaussianPRF(parameters=parameters)
        >>> summary = model.get_expected_uncertainty(np.linspace(2, 8, 4),
        ...                                          omega=0.01 * np.eye(11),
        ...                                          stimulus_range=np.linspace(0, 10, 201))
        >>> bool((summary["mean_abs_error"] < 0.2).all())
        True
        """
        from ._uncertainty import expected_uncertainty

        return expected_uncertainty(self, stimuli, omega, dof, parameters, weights,
                                    n_simulations, stimulus_range, seed, batch_stimuli,
                                    progress)

    def get_fisher_information(
        self, stimuli=None, omega=None, dof=None, weights=None, parameters=None, n=1000,
        analytical=True, seed=0,
    ):
        """Fisher information of the voxel population about the stimulus.

        Analytical: :math:`J(s) = F(s)^\\top \\Omega^{-1} F(s)` with :math:`F` the voxel ×
        dimension Jacobian of the (HRF-free) prediction from automatic differentiation, for
        all stimuli at once; scaled by :math:`(\\nu + n)/(\\nu + n + 2)` for Student-t noise
        with :math:`\\nu` degrees of freedom and :math:`n` voxels. Sampled: the covariance,
        over ``n`` noisy responses simulated at each stimulus, of the score
        :math:`\\nabla_s \\log p(y \\mid s)`. A 1D stimulus gives one value per stimulus; a
        stimulus with :math:`d` dimensions gives the :math:`d \\times d` Fisher information
        matrix per stimulus (its inverse bounds the covariance of unbiased decoders).

        Parameters
        ----------
        stimuli : array-like, shape (n_stimuli,) or (n_stimuli, n_dimensions), optional
            Stimuli at which to evaluate (default grid when None).
        omega, dof : optional
            Noise model (see :meth:`likelihood`).
        weights, parameters : DataFrame, optional
            Fall back to the constructor's.
        n : int, default 1000
            Simulated responses per stimulus (sampled estimate).
        analytical : bool, default True
            Analytical (True) or sampled (False) estimate.
        seed : int, default 0
            Seed of the simulated noise.

        Returns
        -------
        Series or DataFrame
            1D stimuli: a Series indexed by stimulus value, named ``"Fisher information"``
            (as in the public braincoder).
            Several dimensions: a DataFrame indexed like ``stimuli`` whose columns, a
            ``(dimension, dimension)`` MultiIndex of the stimulus dimension labels (the
            columns of ``stimuli`` when it is a DataFrame), hold the entries of the symmetric
            matrix.

        Raises
        ------
        ValueError
            For image stimuli (one dimension per pixel: decode positions or candidates with
            :meth:`likelihood` instead), stimuli of the wrong width, or a bad ``omega``.

        Examples
        --------
        >>> import numpy as np
        >>> from braincoder.models import GaussianPRF
        >>> model = GaussianPRF(parameters=[[2.0, 1.0, 1.0, 0.0], [6.0, 1.0, 1.0, 0.0]])
        >>> info = model.get_fisher_information([1.0, 2.0, 3.0], omega=np.eye(2))
        >>> bool(info.loc[2.0] < info.loc[1.0])  # flat at the pRF peak, steep on its flank
        True
        """
        if isinstance(self.stimulus, ImageStimulus):
            raise ValueError(
                "Fisher information is not computed for image stimuli (one dimension per "
                "pixel); use likelihood() over candidate positions or images instead"
            )
        grid, columns, _ = self._stimulus_grid(stimuli, "stimuli")
        inputs = self._decoding_inputs(
            None, parameters, weights, omega, dof, pd.DataFrame(grid)
        )
        chol = tf.linalg.cholesky(tf.constant(inputs.omega, tf.float64))
        if analytical:
            values = self._analytical_fisher(grid, inputs, chol)
        else:
            if int(n) < 2:
                raise ValueError(f"n must be >= 2 for the sampled estimate, got {n}")
            values = self._sampled_fisher(grid, inputs, chol, int(n), seed)
        n_dims = grid.shape[1]
        if n_dims == 1:
            return pd.Series(values[:, 0, 0], index=columns, name="Fisher information")
        labels = stimuli.columns if isinstance(stimuli, pd.DataFrame) else \
            self.stimulus.dimension_labels
        if labels is None or len(labels) != n_dims:
            labels = pd.RangeIndex(n_dims, name="dimension")
        name = labels.name or "dimension"
        pairs = pd.MultiIndex.from_product([labels, labels], names=[name, f"{name}_2"])
        return pd.DataFrame(values.reshape(len(grid), -1), index=columns, columns=pairs)

    def _analytical_fisher(self, grid, inputs, chol):
        """Fisher information matrices, shape (n_stimuli, n_dimensions, n_dimensions)."""
        stimuli = tf.constant(grid)
        with tf.GradientTape() as tape:
            tape.watch(stimuli)
            response = self._stimulus_response(
                stimuli, inputs.parameters, inputs.weights, inputs.columns
            )
        jacobian = tf.cast(tape.batch_jacobian(response, stimuli), tf.float64)  # s × v × d
        n_stimuli, n_voxels, n_dims = jacobian.shape
        stacked = tf.reshape(tf.transpose(jacobian, [1, 0, 2]), (n_voxels, -1))
        whitened = tf.linalg.triangular_solve(chol, stacked, lower=True)
        whitened = tf.transpose(tf.reshape(whitened, (n_voxels, n_stimuli, n_dims)), [1, 0, 2])
        fisher = tf.einsum("svi,svj->sij", whitened, whitened).numpy()
        if inputs.dof is not None:
            fisher = fisher * (inputs.dof + n_voxels) / (inputs.dof + n_voxels + 2.0)
        return fisher

    def _sampled_fisher(self, grid, inputs, chol, n, seed):
        rng = np.random.default_rng(seed)
        n_voxels = inputs.omega.shape[0]
        noise_chol = np.linalg.cholesky(inputs.omega)
        chunk = max(1, _SAMPLE_BUDGET // (n * n_voxels))
        out = []
        for start in range(0, len(grid), chunk):
            stimuli = tf.constant(np.repeat(grid[start : start + chunk], n, axis=0))
            mean = self._stimulus_response(
                stimuli, inputs.parameters, inputs.weights, inputs.columns
            )
            noise = sample_noise(rng, stimuli.shape[0], noise_chol, inputs.dof)
            observed = tf.cast(mean, tf.float64) + noise
            with tf.GradientTape() as tape:
                tape.watch(stimuli)
                prediction = tf.cast(
                    self._stimulus_response(
                        stimuli, inputs.parameters, inputs.weights, inputs.columns
                    ),
                    tf.float64,
                )
                if inputs.dof is None:
                    log_p = mvn_logpdf(observed, prediction, chol)
                else:
                    log_p = mvt_logpdf(observed, prediction, chol, inputs.dof)
                total = tf.reduce_sum(log_p)
            score = tape.gradient(total, stimuli).numpy().astype(np.float64)
            score = score.reshape(-1, n, grid.shape[1])
            centred = score - score.mean(axis=1, keepdims=True)
            out.append(np.einsum("sni,snj->sij", centred, centred) / (n - 1))
        return np.concatenate(out)
