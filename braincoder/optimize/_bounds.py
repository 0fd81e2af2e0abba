"""Box bounds of each model parameter, used to keep trial points of fits in range."""

from __future__ import annotations


def parameter_bounds(model, paradigm=None, data=None):
    """Lower and upper bound of every parameter label (natural space).

    A thin call to the model's :meth:`~braincoder.models.EncodingModel.get_parameter_bounds`,
    which documents the bounds of each model.

    Parameters
    ----------
    model : EncodingModel
        The model.
    paradigm : DataFrame, optional
        The paradigm fitted (1D models); falls back to the model's.
    data : DataFrame, optional
        The data fitted (amplitude and baseline bounds of the 1D models).

    Returns
    -------
    lower, upper : ndarray, shape (n_parameters,)
        Bounds (``-inf``/``inf`` where unbounded).
    """
    return model.get_parameter_bounds(paradigm, data)
