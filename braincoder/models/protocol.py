"""What fitters may ask of an encoding model: the protocol and the capabilities record.

Fitters (:mod:`braincoder.optimize`), the command line and the reports talk to an encoding
model only through public methods, listed by :class:`FittableModel`, and learn what the
model can do from one record, :class:`ModelCapabilities` (``model.capabilities``), in the
spirit of scikit-learn's estimator tags. They never read private members nor probe a model
with ``getattr``/``hasattr``: a new model declares its capabilities and implements the
methods, and every fast path of the fitters follows.

The tensor methods (``*_tensor``) take and return float32 tensors in the model's natural
parameter space, shapes time × unit; they are thin (one call into the model's private
implementation) so that fitters may call them inside compiled loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["FittableModel", "ModelCapabilities"]

#: Grid values of parameters no model hook sets (see :meth:`ProtocolMixin.default_grid`).
_GRID_DEFAULTS = {
    "baseline": [0.0], "amplitude": [1.0], "srf_amplitude": [0.1, 0.5],
    "srf_size": [2.0, 4.0], "neural_baseline": [1.0], "rf_amplitude": [0.1, 1.0, 10.0],
    "bold_baseline": [0.0], "surround_baseline": [1.0], "hrf_delay": [4.5, 5.5, 6.5],
    "hrf_dispersion": [1.0], "hrf_delta": [0.0],
}


@dataclass(frozen=True)
class ModelCapabilities:
    """What an encoding model can do, as fitters need to know it (``model.capabilities``).

    Attributes
    ----------
    has_hrf : bool
        The response is convolved with ``model.hrf_model``.
    per_voxel_hrf : bool
        Voxels have different HRF kernels (per-voxel HRF parameters, or a custom kernel per
        voxel): the convolution cannot be shared across voxels.
    per_voxel_hrf_parameters : bool
        The HRF has per-voxel parameters, the last columns of the parameter table
        (``hrf_parameter_labels``).
    hrf_parameter_labels : tuple of str
        Labels of the per-voxel HRF parameters (empty without them).
    linear_in_paradigm : bool
        The neural response is ``paradigm @ receptive_field_tensor(parameters)``.
    linear_in_amplitude : bool
        The response is ``baseline + amplitude · f(paradigm; other parameters)``, so a grid
        search can solve baseline and amplitude in closed form.
    closed_form_jacobian : bool
        :meth:`ProtocolMixin.receptive_field_jacobian` gives the receptive field's
        derivatives in closed form.
    isotropic_gaussian_rf : bool
        The receptive field is :class:`~braincoder.models.GaussianPRF2D`'s (an isotropic
        Gaussian on the pixel grid times ``rf_norm_tensor(sd)`` times the amplitude,
        columns ``x, y, sd, baseline, amplitude``), so it factorises along the grid's axes.
    image_stimulus : bool
        The paradigm is images on a pixel grid (``model.grid_coordinates``).
    stimulus_dimensions : int or None
        Columns of the paradigm (pixels for images); None when any number is accepted.
    has_parameters : bool
        The model has per-unit parameters (False: weights only).
    parameter_rows_are_voxels : bool
        With weights, parameter rows are still voxels (e.g. one baseline per voxel), not
        basis functions.
    closed_form_weights : bool
        :meth:`ProtocolMixin.weight_design` is available: weights can be fitted by ridge
        regression on a fixed design.
    baseline_label : str or None
        The parameter added to the response after any HRF (None: no baseline).
    gain_parameters : tuple of (str, int)
        Parameters multiplied by ``g`` (power 1) or ``1/g`` (power −1) to scale the
        stimulus-driven response by ``g``; ``(("amplitude", 1),)`` for the usual
        ``baseline + amplitude · f`` models.
    """

    has_hrf: bool = False
    per_voxel_hrf: bool = False
    per_voxel_hrf_parameters: bool = False
    hrf_parameter_labels: tuple = ()
    linear_in_paradigm: bool = False
    linear_in_amplitude: bool = False
    closed_form_jacobian: bool = False
    isotropic_gaussian_rf: bool = False
    image_stimulus: bool = False
    stimulus_dimensions: int | None = None
    has_parameters: bool = True
    parameter_rows_are_voxels: bool = False
    closed_form_weights: bool = False
    baseline_label: str | None = None
    gain_parameters: tuple = (("amplitude", 1),)


@runtime_checkable
class FittableModel(Protocol):
    """The methods and attributes fitters use of an encoding model.

    Every :class:`~braincoder.models.EncodingModel` satisfies it. Parameters are in the
    natural space, columns in :meth:`get_parameter_labels` order; tensors are float32.
    ``capabilities`` tells which optional methods apply (``receptive_field_tensor`` needs
    ``linear_in_paradigm``, ``receptive_field_jacobian`` needs ``closed_form_jacobian``,
    ``weight_design`` needs ``closed_form_weights``).

    Parameters
    ----------
    *args, **kwargs
        None: a protocol is a structural type, checked with ``isinstance`` but never
        instantiated.

    Attributes
    ----------
    capabilities : ModelCapabilities
        What the model can do.
    hrf_model : HRFModel or None
        The HRF the response is convolved with.
    stimulus : Stimulus
        The stimulus space (paradigm checks, decoding grids).
    """

    capabilities: ModelCapabilities
    hrf_model: object
    stimulus: object

    def get_parameter_labels(self) -> list:
        """Parameter labels, in column order."""

    def get_parameter_transforms(self) -> dict:
        """Label → transform to the unbounded space."""

    def get_parameter_bounds(self, paradigm=None, data=None):
        """Lower and upper bound of every parameter (natural space)."""

    def transform_tensor_forward(self, unbounded):
        """Unbounded → natural parameters (tensor)."""

    def predict_tensor(self, paradigm, parameters, weights=None):
        """Predicted response (time × unit or voxel)."""

    def neural_tensor(self, paradigm, parameters):
        """Stimulus-driven response before HRF and baseline (time × unit)."""

    def baseline_tensor(self, parameters):
        """Baseline per unit, or None."""

    def receptive_field_tensor(self, parameters):
        """Receptive fields (stimulus dimension × unit)."""

    def receptive_field_jacobian(self, parameters):
        """Receptive fields and their derivatives per parameter column."""

    def check_parameters(self, frame, what="parameters"):
        """Raise a ValueError naming the units whose values are out of range."""

    def default_grid(self, paradigm=None, size=10, n_sd=8, sd_range=None) -> dict:
        """Label → values of a grid search over this model."""


class ProtocolMixin:
    """Implementation of :class:`FittableModel` shared by every encoding model.

    Each method is one call into the model's private implementation (``_predict``,
    ``_neural``, ``_rf``, …), which subclasses override.
    """

    #: The HRF the response is convolved with (None: no HRF).
    hrf_model = None
    #: Whether the paradigm is images on a pixel grid (models built on ``grid_coordinates``).
    image_stimulus = False
    #: Parameters scaled by ``g`` or ``1/g`` to scale the response (None: the amplitude).
    gain_parameters = None

    # ------------------------------------------------------------------ capabilities
    @property
    def capabilities(self):
        """What the model can do (see :class:`ModelCapabilities`).

        Returns
        -------
        ModelCapabilities
            Computed from the model's class and its HRF.
        """
        hrf = self.hrf_model
        hrf_labels = tuple(hrf.parameter_labels) if hrf is not None else ()
        per_voxel = hrf is not None and (hrf.unique_hrfs or np.ndim(hrf.get_hrf()) == 2)
        labels = self.get_parameter_labels()
        linear = bool(self.linear_in_paradigm)
        gains = self.gain_parameters or {"amplitude": 1}
        return ModelCapabilities(
            has_hrf=hrf is not None,
            per_voxel_hrf=bool(per_voxel),
            per_voxel_hrf_parameters=bool(hrf is not None and hrf.unique_hrfs and hrf_labels),
            hrf_parameter_labels=hrf_labels,
            linear_in_paradigm=linear,
            linear_in_amplitude=bool(self.linear_in_amplitude),
            closed_form_jacobian=linear and hasattr(self, "_rf_jacobian"),
            isotropic_gaussian_rf=linear and self._isotropic_gaussian_rf(),
            image_stimulus=bool(self.image_stimulus),
            stimulus_dimensions=self.stimulus.n_dimensions,
            has_parameters=bool(labels),
            parameter_rows_are_voxels=bool(self._parameter_rows_are_voxels),
            closed_form_weights=self._closed_form_weights(per_voxel),
            baseline_label=self._baseline_label(labels),
            gain_parameters=tuple((str(k), int(v)) for k, v in gains.items()),
        )

    def _isotropic_gaussian_rf(self):
        """Whether the receptive field is GaussianPRF2D's (2D models override)."""
        return False

    def _closed_form_weights(self, per_voxel_hrf):
        """Whether :meth:`weight_design` applies (linear models override)."""
        return True

    def _baseline_label(self, labels):
        """Label of the additive baseline, or None."""
        return "baseline" if "baseline" in labels else None

    # ------------------------------------------------------------------ tensors
    def predict_tensor(self, paradigm, parameters, weights=None):
        """Predicted response, the tensor under :meth:`predict`.

        Parameters
        ----------
        paradigm : tensor or ndarray, shape (n_timepoints, n_dimensions)
            Stimulus per time point.
        parameters : tensor or ndarray, shape (n_units, n_parameters)
            Natural parameters, columns in label order.
        weights : tensor or ndarray, shape (n_units, n_voxels), optional
            Weights mixing units into voxels.

        Returns
        -------
        tensor, shape (n_timepoints, n_units or n_voxels)
            float32 prediction (HRF and baseline included).
        """
        return self._predict(paradigm, parameters, weights)

    def neural_tensor(self, paradigm, parameters):
        """Stimulus-driven response, before the HRF and without the baseline.

        Parameters
        ----------
        paradigm : tensor, shape (n_timepoints, n_dimensions)
            Stimulus per time point (float32).
        parameters : tensor, shape (n_units, n_parameters)
            Natural parameters (float32).

        Returns
        -------
        tensor, shape (n_timepoints, n_units)
            The neural response.
        """
        return self._neural(paradigm, parameters)

    def baseline_tensor(self, parameters):
        """Baseline added to every unit's response after the HRF.

        Parameters
        ----------
        parameters : tensor, shape (n_units, n_parameters)
            Natural parameters.

        Returns
        -------
        tensor, shape (n_units,), or None
            The baseline, or None when the model has none.
        """
        return self._baseline(parameters)

    def receptive_field_tensor(self, parameters):
        """Receptive field of every unit, so that the neural response is ``paradigm @ rf``.

        Parameters
        ----------
        parameters : tensor, shape (n_units, n_parameters)
            Natural parameters.

        Returns
        -------
        tensor, shape (n_dimensions, n_units)
            The receptive fields (amplitude included).

        Raises
        ------
        TypeError
            If the model is not linear in the paradigm (``capabilities.linear_in_paradigm``).
        """
        if not self.linear_in_paradigm:
            raise TypeError(f"{type(self).__name__} is not linear in the paradigm: it has no "
                            "receptive-field matrix")
        return self._rf(parameters)

    def receptive_field_jacobian(self, parameters):
        """Receptive fields and their closed-form derivatives along every parameter.

        Parameters
        ----------
        parameters : tensor, shape (n_units, n_parameters)
            Natural parameters.

        Returns
        -------
        field : tensor, shape (n_dimensions, n_units)
            The receptive fields.
        derivatives : list
            Per parameter column, the derivative of the field (same shape), or None where
            it is zero.

        Raises
        ------
        TypeError
            Without ``capabilities.closed_form_jacobian``.
        """
        if not (self.linear_in_paradigm and hasattr(self, "_rf_jacobian")):
            raise TypeError(f"{type(self).__name__} has no closed-form receptive-field "
                            "Jacobian")
        return self._rf_jacobian(parameters)

    def transform_tensor_forward(self, unbounded):
        """Map unbounded parameters to the natural space (tensor version).

        Parameters
        ----------
        unbounded : tensor, shape (n_units, n_parameters)
            Unbounded values, columns in label order.

        Returns
        -------
        tensor, shape (n_units, n_parameters)
            Natural values (see :meth:`transform_parameters_forward`).
        """
        return self._transform_forward(unbounded)

    def get_parameter_bounds(self, paradigm=None, data=None):
        """Lower and upper bound of every parameter (natural space), for fits.

        Bounds come from the parameter transforms (e.g. ``sd > 0``, HRF delay within its
        bounds), tightened by the model so that voxels without signal do not drift off to
        degenerate values: 2D models keep positions within 1.5× the field's extent and
        widths between 0.8 pixel spacings and the field's width; 1D models (given the
        paradigm) keep preferred stimuli within the stimulus range widened by half its span
        on either side (log-Gaussian: a factor of two), widths between 1 % and twice the
        span (``kappa`` at most 100) and, given the data, amplitudes within ±10 data ranges
        per unit of the tuning curve's peak and baselines within one data range of the
        data. Strict bounds are open: values keep a margin of 1e-6 of the range inside.

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            The paradigm fitted (1D models); falls back to the model's.
        data : DataFrame or array-like, optional
            The data fitted (amplitude and baseline bounds of the 1D models).

        Returns
        -------
        lower, upper : ndarray, shape (n_parameters,)
            float64 bounds in label order (``-inf``/``inf`` where unbounded).
        """
        labels = self.get_parameter_labels()
        transforms = self.get_parameter_transforms()
        lower = np.array([transforms[label].lower for label in labels], dtype=np.float64)
        upper = np.array([transforms[label].upper for label in labels], dtype=np.float64)
        paradigm = self.paradigm if paradigm is None else paradigm
        self._tighten_bounds(_BoundClipper(labels, lower, upper), paradigm, data)
        finite = np.isfinite(lower) & np.isfinite(upper)
        margin = np.where(finite, 1e-6 * (upper - lower), 1e-6)
        return (np.where(np.isfinite(lower), lower + margin, lower),
                np.where(np.isfinite(upper), upper - margin, upper))

    def _tighten_bounds(self, clip, paradigm, data):
        """Narrow the transform bounds (``clip(label, low, high)``); models override."""

    # ------------------------------------------------------------------ tables
    def resolve_parameters(self, parameters=None):
        """Return the validated parameter table, falling back to the constructor's.

        Parameters
        ----------
        parameters : DataFrame or array-like, optional
            Unit × parameter values.

        Returns
        -------
        DataFrame or None
            The parameters (None for models without parameters).

        Raises
        ------
        ValueError
            If none are given nor stored, labels do not match or values are out of range.
        """
        return self._get_parameters(parameters)

    def resolve_weights(self, weights=None):
        """Return the validated weights, falling back to the constructor's.

        Parameters
        ----------
        weights : DataFrame or array-like, optional
            Basis function × voxel weights.

        Returns
        -------
        DataFrame or None
            The weights (None when neither given nor stored).
        """
        return self._get_weights(weights)

    def parameter_array(self, parameters):
        """Return a parameter table as float32 array (empty for models without parameters).

        Parameters
        ----------
        parameters : DataFrame or None
            Validated parameters (:meth:`resolve_parameters`).

        Returns
        -------
        ndarray, shape (n_units, n_parameters)
            float32 values in label order.
        """
        return self._parameter_array(parameters)

    def check_parameters(self, frame, what="parameters"):
        """Raise if a value lies outside its parameter's range (e.g. ``sd <= 0``).

        Parameters
        ----------
        frame : DataFrame
            Unit × parameter values, columns the parameter labels.
        what : str, default "parameters"
            Name of the table in the message.

        Raises
        ------
        ValueError
            Naming the parameter and the offending units.
        """
        self._check_parameter_ranges(frame, what)

    def check_shapes(self, paradigm, parameters, weights):
        """Raise if paradigm, parameters and weights do not fit together.

        Parameters
        ----------
        paradigm : DataFrame or ndarray
            Stimulus per time point (or candidate stimuli).
        parameters : DataFrame or None
            Unit × parameter values.
        weights : DataFrame or None
            Basis function × voxel weights.

        Raises
        ------
        ValueError
            Naming the mismatched sizes.
        """
        self._check_shapes(paradigm, parameters, weights)

    def weight_design(self, paradigm, parameters):
        """Design matrix of a weight fit: the responses the weights multiply.

        Parameters
        ----------
        paradigm : DataFrame
            Stimulus per time point (validated).
        parameters : DataFrame or None
            Basis function × parameter values (voxel × parameter for models whose
            parameter rows are voxels).

        Returns
        -------
        design : ndarray, shape (n_timepoints, n_basis)
            float64 design.
        offset : ndarray, shape (n_voxels,), or None
            Per-voxel offset to subtract from the data before the fit (e.g. baselines).

        Raises
        ------
        ValueError
            If the weights cannot be fitted in closed form (per-voxel HRFs).
        """
        return self._weight_design(paradigm, parameters)

    def weight_index(self, paradigm, parameters):
        """Row labels of fitted weights (basis functions, or the paradigm's columns).

        Parameters
        ----------
        paradigm : DataFrame
            Stimulus per time point.
        parameters : DataFrame or None
            Basis function × parameter values.

        Returns
        -------
        Index
            One label per weight row.
        """
        return self._weight_index(paradigm, parameters)

    # ------------------------------------------------------------------ grids
    def default_grid(self, paradigm=None, size=10, n_sd=8, sd_range=None):
        """Values of every parameter a grid search over this model should try.

        Positions span the stimulus (the paradigm's range, or the pixel grid), widths are
        geometric; baseline 0 and amplitude 1 (solved in closed form by the grid search of
        models linear in the amplitude); other parameters get a few typical values.

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            The paradigm to be fitted (1D models; falls back to the constructor's).
        size : int, default 10
            Points per position axis.
        n_sd : int, default 8
            Points of the width axis (``sd``, ``kappa``, ``fwhm``).
        sd_range : tuple of float, optional
            ``(min, max)`` of the width axis; by default from the stimulus's span.

        Returns
        -------
        dict
            Label → 1D array, in :meth:`get_parameter_labels` order.

        Raises
        ------
        ValueError
            If the model has a parameter without a default grid.
        """
        grid = dict(self._default_grid_values(paradigm, int(size), int(n_sd), sd_range))
        labels = self.get_parameter_labels()
        missing = [label for label in labels if label not in grid and label not in _GRID_DEFAULTS]
        if missing:
            raise ValueError(f"{type(self).__name__} has no default grid for parameters "
                             f"{missing}; give their values to fit_grid")
        return {label: np.asarray(grid.get(label, _GRID_DEFAULTS.get(label)), np.float64)
                for label in labels}

    def _default_grid_values(self, paradigm, size, n_sd, sd_range):
        """Grid of the stimulus-dependent parameters (position, width); models override."""
        return {}

    # ------------------------------------------------------------------ decoding
    def decoding_inputs(self, voxels, parameters, weights, omega, dof, grid=None):
        """Validate decoding inputs and align them to the data's voxels.

        Parameters
        ----------
        voxels : Index or None
            The data's voxel labels (None: the model's own voxels).
        parameters, weights : DataFrame or None
            Fall back to the constructor's.
        omega : DataFrame or array-like or None
            Noise covariance (falls back to the constructor's).
        dof : float or None
            Degrees of freedom of Student-t noise (None: Gaussian).
        grid : DataFrame or ndarray, optional
            Candidate stimuli, checked against parameters and weights.

        Returns
        -------
        object
            Record with ``voxels``, ``parameters`` (float32), ``weights``, ``columns``
            (positions of the voxels in the model's output), ``omega`` and ``dof``.

        Raises
        ------
        ValueError
            For missing omega, misaligned voxels or a bad ``dof``.
        """
        return self._decoding_inputs(voxels, parameters, weights, omega, dof, grid)

    def stimulus_response_tensor(self, stimuli, parameters, weights, columns):
        """HRF-free response to each candidate stimulus (what decoding compares with data).

        Parameters
        ----------
        stimuli : tensor, shape (n_stimuli, n_dimensions)
            Candidate stimuli.
        parameters : ndarray or tensor, shape (n_units, n_parameters)
            Natural parameters.
        weights : ndarray or tensor or None
            Basis function × voxel weights.
        columns : ndarray of int
            Output columns to keep (the data's voxels).

        Returns
        -------
        tensor, shape (n_stimuli, n_voxels)
            float32 responses.
        """
        return self._stimulus_response(stimuli, parameters, weights, columns)

    def stimulus_grid(self, stimuli, what="stimulus_range"):
        """Candidate stimuli as an array, their labels and (1D) cell widths.

        Parameters
        ----------
        stimuli : array-like or DataFrame or None
            Candidates (None: the stimulus space's default grid).
        what : str, default "stimulus_range"
            Name of the argument in messages.

        Returns
        -------
        array : ndarray, shape (n_stimuli, n_dimensions)
            float32 candidates.
        labels : Index
            One label per candidate.
        widths : ndarray or None
            Cell widths of a strictly increasing 1D grid, else None.
        """
        return self._stimulus_grid(stimuli, what)

    def log_likelihood_tensor(self, data, response, omega, dof):
        """Log-likelihood of every data row under every candidate's response.

        Parameters
        ----------
        data : ndarray, shape (n_timepoints, n_voxels)
            Observed patterns.
        response : tensor, shape (n_stimuli, n_voxels)
            Responses to the candidates.
        omega : ndarray, shape (n_voxels, n_voxels)
            Noise covariance.
        dof : float or None
            Student-t degrees of freedom (None: Gaussian).

        Returns
        -------
        tensor, shape (n_timepoints, n_stimuli)
            float64 log-likelihoods.
        """
        return self._log_likelihood(data, response, omega, dof)


# The protocol's methods are documented once, by their implementation.
for _name, _member in list(vars(FittableModel).items()):
    if callable(_member) and not _name.startswith("_"):
        _member.__doc__ = getattr(ProtocolMixin, _name, _member).__doc__ or _member.__doc__


class _BoundClipper:
    """Intersect the bounds of labelled parameters with ``[bottom, top]``, in place."""

    def __init__(self, labels, lower, upper):
        self.labels, self.lower, self.upper = list(labels), lower, upper

    def __call__(self, label, bottom, top):
        if label in self.labels:
            index = self.labels.index(label)
            self.lower[index] = max(self.lower[index], bottom)
            self.upper[index] = min(self.upper[index], top)
