"""Linear encoding models: responses are weighted sums of the paradigm's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from ..stimuli import Stimulus
from .base import EncodingModel, HRFConstructor, _align_by_label
from .registry import register_model

__all__ = ["LinearModel", "LinearModelWithBaseline", "LinearModelWithBaselineHRF"]


@register_model("linear")
class LinearModel(EncodingModel):
    """Linear model: ``response = paradigm @ weights``.

    The paradigm's columns are regressors (stimulus features); ``weights`` (feature × voxel)
    map them to voxels. The model has no parameters; fit the weights with
    :class:`~braincoder.optimize.WeightFitter`.

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`.
    hrf_model, flexible_hrf_parameters : optional
        Convolve the weighted sum with an HRF (see :class:`EncodingModel`).

    Notes
    -----
    .. math:: \\hat y_{t,v} = \\sum_j s_{t,j} w_{j,v}

    Examples
    --------
    >>> import numpy as np
    >>> from braincoder.models import LinearModel
    >>> model = LinearModel()
    >>> model.predict(paradigm=np.eye(2), weights=[[1.0, 2.0], [3.0, 4.0]]).to_numpy().tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """

    parameter_labels: list = []

    def _make_stimulus(self):
        return Stimulus(None)

    def _neural(self, paradigm, parameters):
        return paradigm

    def _check_shapes(self, paradigm, parameters, weights):
        if weights is None:
            raise ValueError(f"{type(self).__name__} needs weights (stimulus feature × voxel)")
        if len(weights) != paradigm.shape[1]:
            raise ValueError(
                f"weights have {len(weights)} rows but the paradigm has {paradigm.shape[1]} "
                "columns (one weight row per paradigm column)"
            )

    def _output_columns(self, parameters, weights):
        return weights.columns

    def _get_parameters(self, parameters):
        if not self.get_parameter_labels():
            return None
        return super()._get_parameters(parameters)

    def _closed_form_weights(self, per_voxel_hrf):
        return not per_voxel_hrf

    def _weight_design(self, paradigm, parameters):
        if not self.capabilities.closed_form_weights:
            raise ValueError(
                "weights cannot be fitted in closed form with per-voxel HRFs; use a shared HRF"
            )
        design = self._apply_hrf(tf.constant(paradigm.to_numpy(np.float32)), None)
        offset = None
        if parameters is not None and "baseline" in parameters.columns:
            offset = parameters["baseline"].to_numpy(np.float64)
        return np.asarray(design, dtype=np.float64), offset

    def _weight_index(self, paradigm, parameters):
        return paradigm.columns

    def basis_predictions(self, paradigm=None, parameters=None):
        """Return the regressors the weights multiply: the paradigm's columns.

        With an HRF they are convolved with it; the baseline is not included.

        Parameters
        ----------
        paradigm : DataFrame or array-like, optional
            Stimulus features per time point (falls back to the constructor's).
        parameters : optional
            Unused: a linear model's basis functions have no parameters.

        Returns
        -------
        DataFrame
            Time × stimulus feature.
        """
        paradigm = self.get_paradigm(paradigm)
        design, _ = self._weight_design(paradigm, None)
        return pd.DataFrame(design, index=paradigm.index, columns=paradigm.columns)


@register_model("linear_baseline")
class LinearModelWithBaseline(LinearModel):
    """Linear model with a voxel-specific baseline: ``response = paradigm @ weights + baseline``.

    Parameters
    ----------
    paradigm, data, parameters, weights, omega, verbosity
        See :class:`EncodingModel`. ``parameters`` has one row per voxel (the weights'
        columns) and the single column ``baseline``.
    hrf_model, flexible_hrf_parameters : optional
        Convolve the weighted sum with an HRF (see :class:`EncodingModel`).

    Notes
    -----
    .. math:: \\hat y_{t,v} = b_v + \\sum_j s_{t,j} w_{j,v}
    """

    parameter_labels = ["baseline"]
    _parameter_rows_are_voxels = True

    def _check_shapes(self, paradigm, parameters, weights):
        super()._check_shapes(paradigm, parameters, weights)
        if parameters is not None and len(parameters) != weights.shape[1]:
            raise ValueError(
                f"parameters have {len(parameters)} rows but weights have {weights.shape[1]} "
                "voxel columns (one baseline per voxel)"
            )

    def _align_labels(self, parameters, weights):
        if parameters is None or weights is None:
            return parameters, weights
        parameters = _align_by_label(parameters, weights.columns, "parameter rows",
                                     "weights' voxel columns")
        return parameters, weights

    def _predict(self, paradigm, parameters, weights=None):
        paradigm = tf.convert_to_tensor(paradigm, dtype=tf.float32)
        parameters = tf.convert_to_tensor(parameters, dtype=tf.float32)
        neural = tf.matmul(paradigm, tf.convert_to_tensor(weights, dtype=tf.float32))
        return self._apply_hrf(neural, parameters) + parameters[tf.newaxis, :, 0]


@register_model("linear_baseline_hrf")
class LinearModelWithBaselineHRF(HRFConstructor, LinearModelWithBaseline):
    """:class:`LinearModelWithBaseline` whose weighted sum is convolved with an HRF.

    Parameters
    ----------
    paradigm, data, parameters, weights : optional
        See :class:`EncodingModel`.
    hrf_model : HRFModel, optional
        The HRF (see :class:`~braincoder.hrf.SPMHRFModel`).
    omega, verbosity : optional
        See :class:`EncodingModel`.
    flexible_hrf_parameters : bool, optional
        Per-voxel (True) or shared (False) HRF parameters, overriding
        ``hrf_model.unique_hrfs`` on a copy of the HRF model; None keeps it.

    Notes
    -----
    .. math:: \\hat y_{t,v} = b_v + \\sum_k h_k \\sum_j s_{t-k,j} w_{j,v}
    """
