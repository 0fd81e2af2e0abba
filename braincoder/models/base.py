"""EncodingModel: what a voxel (or a basis function) responds to a stimulus, and its HRF.

A private tensor layer (``_neural``, ``_predict``; float32, no pandas) sits under a public
pandas layer (``predict``, ``simulate``). Every prediction — grid search, gradient fits,
simulation, decoding — goes through :meth:`EncodingModel._predict`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import tensorflow as tf

from ..hrf import HRFModel, SPMHRFModel
from ..stimuli import OneDimensionalStimulus
from ..utils.distributions import check_covariance, sample_noise
from ..utils.formatting import PARAMETER, VOXEL, format_data, format_parameters, to_frame
from ..utils.labels import align
from ..utils.math import Identity
from ..utils.validation import check_same_index, format_labels
from .decoding import DecodingMixin
from .protocol import ProtocolMixin
from .serialization import SerializationMixin

logger = logging.getLogger(__name__)


class EncodingModel(ProtocolMixin, DecodingMixin, SerializationMixin):
    """Abstract base class of encoding models.

    A model maps a paradigm (time × stimulus dimension) and parameters (unit × parameter) to
    predicted responses (time × unit). Units are voxels, or basis functions mixed into
    voxels by ``weights`` (basis function × voxel).

    Parameters
    ----------
    paradigm : DataFrame or array-like, shape (n_timepoints, n_dimensions), optional
        Stimulus per time point; used whenever a method is called without one.
    data : DataFrame or array-like, shape (n_timepoints, n_voxels), optional
        Measured responses.
    parameters : DataFrame or array-like, shape (n_units, n_parameters), optional
        Parameters with columns :meth:`get_parameter_labels`.
    weights : DataFrame or array-like, shape (n_basis, n_voxels), optional
        Weights mixing units (basis functions) into voxels.
    omega : DataFrame or array-like, shape (n_voxels, n_voxels), optional
        Noise covariance of the residuals (for decoding).
    verbosity : int, default 20
        Logging level of the model's logger (``logging.INFO``).
    hrf_model : HRFModel, optional
        Convolve the response with this HRF (the baseline is added after convolution);
        with ``unique_hrfs=True`` the labels gain the HRF's per-voxel parameters. The
        ``...WithHRF`` classes are these models with an HRF required.
    flexible_hrf_parameters : bool, optional
        With ``hrf_model``: per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.

    Attributes
    ----------
    parameter_labels : list of str
        Names of the model's parameters: the class attribute lists the model's own, the
        instance attribute (as in the public braincoder) also the per-voxel HRF labels.
    parameter_transforms : dict
        Label → :class:`~braincoder.utils.math.Transform` to an unbounded space.
    """

    parameter_labels: list = []
    parameter_transforms: dict = {}
    #: Whether the neural response is ``paradigm @ rf(parameters)`` (enables fast paths).
    linear_in_paradigm = False
    #: With weights, parameter rows are still voxels (not basis functions).
    _parameter_rows_are_voxels = False
    #: Whether the response is ``baseline + amplitude · f(...)`` (closed-form grid search).
    linear_in_amplitude = False

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, omega=None, verbosity=20,
        hrf_model=None, flexible_hrf_parameters=None,
    ):
        if hrf_model is not None:
            self.hrf_model = _check_hrf_model(hrf_model, flexible_hrf_parameters)
        elif flexible_hrf_parameters is not None and self.hrf_model is None:
            raise ValueError("flexible_hrf_parameters needs an hrf_model")
        self.verbosity = verbosity
        logger.setLevel(verbosity)
        # The full labels (with per-voxel HRF labels), as the public braincoder's attribute.
        self.parameter_labels = self.get_parameter_labels()
        if not hasattr(self, "stimulus"):
            self.stimulus = self._make_stimulus()
        self.paradigm = None if paradigm is None else self.get_paradigm(paradigm)
        self.data = None if data is None else format_data(data)
        if self.paradigm is not None and self.data is not None:
            check_same_index(self.data, self.paradigm, "data", "paradigm")
        self.parameters = None
        if parameters is not None:
            self.parameters = self._format_parameters(parameters)
        self.weights = None if weights is None else self._format_weights(weights)
        self.omega = None if omega is None else np.asarray(omega, dtype=np.float64)

    # ------------------------------------------------------------------ description
    def _make_stimulus(self):
        return OneDimensionalStimulus()

    def get_parameter_labels(self):
        """Return the ordered list of parameter labels used by the model.

        Returns
        -------
        list of str
            Labels, e.g. ``['x', 'y', 'sd', 'baseline', 'amplitude']``.
        """
        hrf_labels = [] if self.hrf_model is None else list(self.hrf_model.parameter_labels)
        return self._model_parameter_labels() + hrf_labels

    def _model_parameter_labels(self):
        """Labels of the model itself, without HRF parameters (the class attribute)."""
        return list(type(self).parameter_labels)

    def get_parameter_transforms(self):
        """Return the transform of every parameter label (identity where none is declared).

        Returns
        -------
        dict
            Label → :class:`~braincoder.utils.math.Transform`.
        """
        transforms = {
            label: self.parameter_transforms.get(label, Identity())
            for label in self._model_parameter_labels()
        }
        if self.hrf_model is not None:
            transforms.update(self.hrf_model.parameter_transforms)
        return transforms

    def transform_parameters_forward(self, parameters):
        """Map unbounded parameters to the model's natural space.

        Parameters
        ----------
        parameters : DataFrame or array-like, shape (n_units, n_parameters)
            Unbounded values; a DataFrame's columns are matched to
            :meth:`get_parameter_labels` by name (any order), an array's are in label order.

        Returns
        -------
        DataFrame
            Natural values (float64), columns in label order.

        Raises
        ------
        ValueError
            If labels are missing or extra, or values are NaN or infinite.
        """
        frame = format_parameters(parameters, self.get_parameter_labels(), "parameters")
        out = frame.astype(np.float64)
        for label, transform in self.get_parameter_transforms().items():
            out[label] = transform.forward_numpy(frame[label].to_numpy())
        return out

    def transform_parameters_backward(self, parameters):
        """Map natural parameters to the unbounded space the fitters optimise.

        Parameters
        ----------
        parameters : DataFrame or array-like, shape (n_units, n_parameters)
            Natural values; a DataFrame's columns are matched to
            :meth:`get_parameter_labels` by name (any order), an array's are in label order.

        Returns
        -------
        DataFrame
            Unbounded values (float64), columns in label order.

        Raises
        ------
        ValueError
            If labels are missing or extra, or a value lies outside its transform's range
            (e.g. ``sd <= 0``); the message names the parameter and the voxels.
        """
        frame = self._format_parameters(parameters)
        out = frame.astype(np.float64)
        for label, transform in self.get_parameter_transforms().items():
            out[label] = transform.backward_numpy(frame[label].to_numpy())
        return out

    def _transform_forward(self, unbounded):
        """Tensor version of :meth:`transform_parameters_forward` (columns in label order)."""
        columns = [
            transform.forward(unbounded[:, i])
            for i, transform in enumerate(self.get_parameter_transforms().values())
        ]
        return tf.stack(columns, axis=1)

    # ------------------------------------------------------------------ inputs
    def get_paradigm(self, paradigm=None):
        """Return the cleaned paradigm DataFrame, falling back to the stored one.

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            Stimulus per time point.

        Returns
        -------
        DataFrame
            Validated paradigm (time × stimulus dimension).

        Raises
        ------
        ValueError
            If no paradigm was given here or to the constructor, or it is invalid.
        """
        if paradigm is None:
            paradigm = getattr(self, "paradigm", None)
            if paradigm is None:
                raise ValueError("no paradigm given (pass one here or to the constructor)")
            return paradigm
        return self.stimulus.clean_paradigm(paradigm)

    def _get_parameters(self, parameters):
        if parameters is None:
            if self.parameters is None and self.get_parameter_labels():
                raise ValueError("no parameters given (pass them here or to the constructor)")
            return self.parameters
        return self._format_parameters(parameters)

    def _format_parameters(self, parameters, what="parameters"):
        frame = format_parameters(parameters, self.get_parameter_labels(), what)
        self._check_parameter_ranges(frame, what)
        return frame

    def _check_parameter_ranges(self, frame, what):
        for label, transform in self.get_parameter_transforms().items():
            if isinstance(transform, Identity):
                continue
            values = frame[label].to_numpy(dtype=np.float64)
            bad = np.flatnonzero(transform.invalid(values))
            if bad.size:
                bounds = f"> {transform.lower:g}" if np.isinf(transform.upper) else (
                    f"within ({transform.lower:g}, {transform.upper:g})"
                )
                raise ValueError(
                    f"{what}: parameter {label!r} must be {bounds}, but {bad.size} "
                    f"{frame.index.name or 'unit'}{'s' if bad.size > 1 else ''} "
                    f"({format_labels(frame.index[bad])}) have values such as "
                    f"{values[bad[0]]:g}"
                )

    def _format_weights(self, weights, n_units=None, unit_index=None):
        frame = to_frame(weights, "weights", index_name="basis", columns_name=VOXEL)
        if n_units is not None and frame.shape[0] != n_units:
            raise ValueError(
                f"weights have {frame.shape[0]} rows but the model has {n_units} basis functions"
            )
        if unit_index is not None and not isinstance(weights, pd.DataFrame):
            frame.index = unit_index
        from ..utils.validation import check_finite

        check_finite(frame, "weights")
        return frame

    def _get_weights(self, weights):
        return self.weights if weights is None else self._format_weights(weights)

    # ------------------------------------------------------------------ tensors
    def _neural(self, paradigm, parameters):
        """Stimulus-driven response without baseline, shape (n_timepoints, n_units).

        Parameters
        ----------
        paradigm : tensor, shape (n_timepoints, n_dimensions)
        parameters : tensor, shape (n_units, n_parameters), natural space
        """
        raise NotImplementedError

    def _baseline(self, parameters):
        """Baseline per unit, shape (n_units,), or None when the model has none."""
        labels = self.get_parameter_labels()
        if "baseline" in labels:
            return parameters[:, labels.index("baseline")]
        return None

    def _hrf_parameters(self, parameters):
        """Per-unit HRF parameters (the last columns), or None."""
        n_hrf = len(self.hrf_model.parameter_labels)
        return None if n_hrf == 0 else parameters[:, -n_hrf:]

    def _apply_hrf(self, neural, parameters):
        """Convolve the neural response with the HRF (unchanged without one)."""
        if self.hrf_model is None:
            return neural
        return self.hrf_model.convolve(neural, self._hrf_parameters(parameters))

    def _predict(self, paradigm, parameters, weights=None):
        """Predicted response, float32 tensor of shape (n_timepoints, n_units or n_voxels).

        Parameters
        ----------
        paradigm : tensor, shape (n_timepoints, n_dimensions)
        parameters : tensor, shape (n_units, n_parameters), natural space
        weights : tensor, shape (n_units, n_voxels), optional
        """
        paradigm = tf.convert_to_tensor(paradigm, dtype=tf.float32)
        parameters = tf.convert_to_tensor(parameters, dtype=tf.float32)
        response = self._apply_hrf(self._neural(paradigm, parameters), parameters)
        baseline = self._baseline(parameters)
        if baseline is not None:
            response = response + baseline[tf.newaxis, :]
        if weights is not None:
            response = tf.matmul(response, tf.convert_to_tensor(weights, dtype=tf.float32))
        return response

    # ------------------------------------------------------------------ public
    def predict(self, paradigm=None, parameters=None, weights=None):
        """Return predictions as a DataFrame (time × voxel).

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            Stimulus per time point (falls back to the constructor's).
        parameters : DataFrame or array-like, optional
            Unit × parameter values (falls back to the constructor's).
        weights : DataFrame or array-like, optional
            Basis function × voxel weights (falls back to the constructor's). Without
            weights, every parameter row is a voxel.

        Returns
        -------
        DataFrame
            Predictions indexed by the paradigm's time index, columns the parameters' index
            (no weights) or the weights' columns.
        """
        paradigm = self.get_paradigm(paradigm)
        parameters = self._get_parameters(parameters)
        weights = self._get_weights(weights)
        self._check_shapes(paradigm, parameters, weights)
        parameters, weights = self._align_labels(parameters, weights)
        values = paradigm.to_numpy(np.float32)
        array = self._parameter_array(parameters)
        if weights is None:
            # Every parameter row is a voxel: predict in voxel chunks so memory stays bounded.
            step = _voxel_chunk(values.shape)
            starts = range(0, len(array), step) if len(array) > step else [0]
            prediction = np.concatenate(
                [self._predict(values, array[start:start + step]).numpy() for start in starts],
                axis=1,
            )
        else:
            prediction = self._predict(values, array, weights.to_numpy(np.float32)).numpy()
        columns = self._output_columns(parameters, weights)
        return pd.DataFrame(prediction, index=paradigm.index, columns=columns)

    def _check_shapes(self, paradigm, parameters, weights):
        """Raise if parameters and weights do not fit together."""
        if weights is not None and len(weights) != len(parameters):
            raise ValueError(
                f"weights have {len(weights)} rows but there are {len(parameters)} basis "
                "functions (parameter rows)"
            )

    def _align_labels(self, parameters, weights):
        """Match weight rows to basis functions (parameter rows) by label, not position."""
        if weights is None or parameters is None:
            return parameters, weights
        return parameters, _align_by_label(weights, parameters.index, "weights rows",
                                           "parameter rows")

    def _output_columns(self, parameters, weights):
        """Voxel labels of a prediction."""
        return weights.columns if weights is not None else parameters.index

    def _weight_design(self, paradigm, parameters):
        """Design of :class:`~braincoder.optimize.WeightFitter`: basis predictions.

        Returns the time × basis design (numpy) and an optional per-voxel offset to subtract
        from the data (None here).
        """
        # The basis predictions themselves: never mix them with weights stored on the model.
        design = self._predict(paradigm.to_numpy(np.float32), self._parameter_array(parameters))
        return np.asarray(design, dtype=np.float64), None

    def _weight_index(self, paradigm, parameters):
        """Row labels of fitted weights: one per basis function (parameter row)."""
        return parameters.index

    def _parameter_array(self, parameters):
        if parameters is None:
            return np.zeros((0, 0), np.float32)
        return parameters.to_numpy(np.float32)

    def simulate(
        self, paradigm=None, parameters=None, weights=None, noise=1.0, dof=None, n_repeats=1,
        seed=None,
    ):
        """Generate synthetic data by adding noise to predictions.

        Parameters
        ----------
        paradigm, parameters, weights : optional
            As in :meth:`predict`.
        noise : float, array-like, Series or DataFrame, default 1.0
            Standard deviation of the noise; per voxel if a vector of length n_voxels (in
            voxel order) or a Series (matched to the voxels by label). A square matrix (or
            a voxel × voxel DataFrame, matched by label) is the noise covariance:
            correlated multivariate noise, as assumed by the decoding methods.
        dof : float, optional
            Degrees of freedom of Student-t noise (scaled so ``noise`` is its scale; with a
            covariance, multivariate Student-t of shape ``noise``); Gaussian when None.
        n_repeats : int, default 1
            Number of noisy repeats; with more than one, rows are indexed by
            (``repeat``, time).
        seed : int, optional
            Seed of the noise generator.

        Returns
        -------
        DataFrame
            Simulated data, time × voxel (or (repeat, time) × voxel).

        Raises
        ------
        ValueError
            For negative or non-finite noise, a noise array of the wrong length, a noise
            Series lacking voxels, a covariance that is not symmetric positive definite,
            ``dof <= 0`` or ``n_repeats < 1``.
        """
        prediction = self.predict(paradigm, parameters, weights)
        if dof is not None and not dof > 0:
            raise ValueError(f"dof must be > 0, got {dof!r}")
        if int(n_repeats) < 1:
            raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
        shape = prediction.shape
        if isinstance(noise, pd.DataFrame) or np.ndim(noise) == 2:
            chol = np.linalg.cholesky(_noise_covariance(noise, prediction.columns))

            def draw(rng):
                return sample_noise(rng, shape[0], chol, dof)
        else:
            scale = _noise_scale(noise, prediction.columns)

            def draw(rng):
                return scale * (rng.standard_normal(shape) if dof is None
                                else rng.standard_t(dof, shape))
        rng = np.random.default_rng(seed)
        frames = [prediction + draw(rng) for _ in range(int(n_repeats))]
        if n_repeats == 1:
            return frames[0]
        return pd.concat(frames, keys=range(int(n_repeats)), names=["repeat"])

    def apply_mask(self, mask):
        """Keep only some voxels: the stored parameters (or weights), data and omega.

        Without weights every parameter row is a voxel and the parameters are subset;
        with weights, their voxel columns are. Stored data columns and ``omega`` rows and
        columns follow.

        Parameters
        ----------
        mask : array-like of bool, boolean Series, or list of voxel labels
            A boolean per voxel (a Series is matched by label) or the labels to keep.

        Returns
        -------
        EncodingModel
            The model itself, for chaining.

        Raises
        ------
        ValueError
            If there is nothing to subset, a boolean mask has the wrong length or misses
            voxels, labels are unknown, or nothing is kept.
        """
        voxels = self._output_columns(self.parameters, self.weights) if (
            self.parameters is not None or self.weights is not None) else None
        if voxels is None:
            raise ValueError("apply_mask needs parameters or weights (the voxels) first")
        keep = _mask_positions(mask, voxels)
        if self.weights is None:
            self.parameters = self.parameters.iloc[keep]
        else:
            self.weights = self.weights.iloc[:, keep]
            if self.parameters is not None and self._parameter_rows_are_voxels:
                self.parameters = self.parameters.iloc[keep]  # e.g. one baseline per voxel
        if self.data is not None and self.data.shape[1] == len(voxels):
            self.data = self.data.iloc[:, keep]
        if self.omega is not None and self.omega.shape == (len(voxels), len(voxels)):
            self.omega = self.omega[np.ix_(keep, keep)]
        return self

    def basis_predictions(self, paradigm=None, parameters=None):
        """Return every basis function's response to the paradigm, before the weights.

        The basis functions are the parameter rows; a model with weights predicts a
        voxel as the weighted sum of these columns. Without weights every parameter row is
        a voxel, and this equals :meth:`predict`.

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            Stimulus per time point (falls back to the constructor's).
        parameters : DataFrame or array-like, optional
            Basis function × parameter values (falls back to the constructor's).

        Returns
        -------
        DataFrame
            Time × basis function, indexed by the paradigm's time index, columns the
            parameters' index.
        """
        paradigm = self.get_paradigm(paradigm)
        parameters = self._get_parameters(parameters)
        response = self._predict(paradigm.to_numpy(np.float32), self._parameter_array(parameters))
        return pd.DataFrame(response.numpy(), index=paradigm.index, columns=parameters.index)

    def get_config(self):
        """Return the model's specification (class, stimulus space, HRF) as a dict.

        Returns
        -------
        dict
            JSON-serialisable specification without fitted values.
        """
        config = {"model": getattr(type(self), "registry_name", type(self).__name__)}
        if self.hrf_model is not None:
            config["hrf_model"] = self.hrf_model.get_config()
        return config

    def __repr__(self):
        """Return the class name and parameter labels."""
        return f"{type(self).__name__}(parameter_labels={self.get_parameter_labels()})"


class HRFEncodingModel:
    """Mixin of the ``...WithHRF`` classes: the model with an HRF required (first in the MRO).

    Every :class:`EncodingModel` convolves its response with ``hrf_model`` when given
    one; this mixin only makes the HRF the default of the class.

    Parameters
    ----------
    hrf_model : HRFModel, optional
        The HRF. Defaults to ``SPMHRFModel(tr=1.0)`` with a warning, since the repetition
        time is a property of the data the model cannot guess.
    flexible_hrf_parameters : bool, optional
        True gives every voxel its own HRF parameters (``hrf_delay``, ``hrf_dispersion``),
        False one shared HRF; None (default) keeps ``hrf_model.unique_hrfs``. The model
        then uses a copy of ``hrf_model`` with that setting; the caller's object is not
        changed.
    """

    def __init__(self, *args, hrf_model=None, flexible_hrf_parameters=None, **kwargs):
        if hrf_model is None:
            warnings.warn(
                f"{type(self).__name__}: no hrf_model given; using SPMHRFModel(tr=1.0). Pass "
                "hrf_model=SPMHRFModel(tr=<your TR>) to match your data.",
                UserWarning,
                stacklevel=2,
            )
            hrf_model = SPMHRFModel(tr=1.0)
        self.hrf_model = _check_hrf_model(hrf_model, flexible_hrf_parameters)
        super().__init__(*args, **kwargs)

    def get_config(self):
        """Return the model's specification, its HRF last (as saved files have it).

        Returns
        -------
        dict
            JSON-serialisable specification.
        """
        config = super().get_config()
        config["hrf_model"] = config.pop("hrf_model")
        return config


class HRFConstructor(HRFEncodingModel):
    """HRF mixin with braincoder's constructor order for models without a pixel grid."""

    def __init__(
        self, paradigm=None, data=None, parameters=None, weights=None, hrf_model=None,
        omega=None, verbosity=20, flexible_hrf_parameters=None,
    ):
        super().__init__(
            paradigm, data, parameters, weights, hrf_model=hrf_model, omega=omega,
            verbosity=verbosity, flexible_hrf_parameters=flexible_hrf_parameters,
        )


def _noise_scale(noise, voxels):
    """Return the noise standard deviation: a scalar, or one per voxel (Series by label)."""
    if isinstance(noise, pd.Series):
        missing = [voxel for voxel in voxels if voxel not in noise.index]
        if missing:
            raise ValueError(f"noise has no value for voxels {format_labels(missing)}")
        noise = noise.reindex(voxels)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.ndim > 1 or (noise.ndim == 1 and noise.shape[0] != len(voxels)):
        raise ValueError(f"noise has {noise.size} values but there are {len(voxels)} voxels")
    if (noise < 0).any() or not np.isfinite(noise).all():
        raise ValueError("noise must be finite and >= 0")
    return noise


def _noise_covariance(covariance, voxels):
    """Return the validated voxel × voxel noise covariance (a DataFrame matched by label)."""
    if isinstance(covariance, pd.DataFrame):
        missing = [voxel for voxel in voxels
                   if voxel not in covariance.index or voxel not in covariance.columns]
        if missing:
            raise ValueError(f"noise covariance has no row/column for voxels "
                             f"{format_labels(missing)}")
        covariance = covariance.loc[voxels, voxels]
    return check_covariance(covariance, "noise covariance", n=len(voxels))


def _mask_positions(mask, voxels):
    """Positions of the voxels a mask keeps (boolean per voxel, or labels)."""
    if isinstance(mask, pd.Series) and mask.dtype == bool:
        missing = [voxel for voxel in voxels if voxel not in mask.index]
        if missing:
            raise ValueError(f"mask has no value for voxels {format_labels(missing)}")
        values = mask.reindex(voxels).to_numpy()
    else:
        values = np.asarray(mask)
    if values.dtype == bool:
        if values.shape != (len(voxels),):
            raise ValueError(f"mask has {values.size} values but there are {len(voxels)} voxels")
        keep = np.flatnonzero(values)
    else:
        position = {voxel: number for number, voxel in enumerate(voxels)}
        unknown = [label for label in values.tolist() if label not in position]
        if unknown:
            raise ValueError(f"mask names unknown voxels {format_labels(unknown)}")
        keep = np.array([position[label] for label in values.tolist()], dtype=int)
    if keep.size == 0:
        raise ValueError("mask keeps no voxels")
    return keep


def _check_hrf_model(hrf_model, flexible_hrf_parameters):
    """Validate an HRF model; apply ``flexible_hrf_parameters`` on a copy."""
    if not isinstance(hrf_model, HRFModel):
        raise TypeError(f"hrf_model must be an HRFModel, got {type(hrf_model).__name__}")
    if flexible_hrf_parameters is not None:
        hrf_model = _with_unique_hrfs(hrf_model, flexible_hrf_parameters)
    return hrf_model


def _with_unique_hrfs(hrf_model, unique):
    """``hrf_model`` itself, or a copy with ``unique_hrfs`` set to ``unique``."""
    if not isinstance(unique, bool | np.bool_):
        raise TypeError(f"flexible_hrf_parameters must be True, False or None, got {unique!r}")
    if bool(unique) == hrf_model.unique_hrfs:
        return hrf_model
    config = hrf_model.get_config()
    if "unique_hrfs" not in config:
        raise ValueError(
            f"flexible_hrf_parameters: {type(hrf_model).__name__} has no per-voxel HRF "
            "parameters; use SPMHRFModel"
        )
    from ..hrf import hrf_model_from_config

    return hrf_model_from_config({**config, "unique_hrfs": bool(unique)})


def _align_by_label(frame, labels, what, reference, axis=0):
    """Reorder ``frame`` along ``axis`` to ``labels`` when both carry labels.

    Unlabelled sides (see :func:`~braincoder.utils.labels.is_unlabelled`) are matched by
    position; labelled sides with different label sets raise a ``ValueError`` naming the
    labels that do not match.
    """
    return align(frame, labels, what, reference, axis=axis)


def parameter_frame(values, labels, index=None):
    """Build a unit × parameter DataFrame (helper for examples and simulators).

    Parameters
    ----------
    values : dict or array-like
        Dict label → values, or an array with one column per label.
    labels : sequence of str
        Parameter labels.
    index : Index, optional
        Unit labels.

    Returns
    -------
    DataFrame
        Parameters with columns named ``parameter``.
    """
    if isinstance(values, dict):
        frame = pd.DataFrame({label: np.asarray(values[label], float) for label in labels})
    else:
        frame = pd.DataFrame(np.asarray(values, dtype=float), columns=list(labels))
    frame.columns.name = PARAMETER
    frame.index = pd.RangeIndex(len(frame), name=VOXEL) if index is None else index
    return frame


PREDICT_CHUNK_BYTES = 2**27


def _voxel_chunk(paradigm_shape):
    """Voxels per prediction chunk: about ``PREDICT_CHUNK_BYTES`` of float32 work arrays."""
    n_timepoints, n_dimensions = paradigm_shape
    per_voxel = 4 * 4 * (n_timepoints + max(n_dimensions, 1))
    return max(256, PREDICT_CHUNK_BYTES // per_voxel)

