"""DeepEncodingModel: the library's EncodingModel contract for Keras deep models.

Deep models map a paradigm (EEG band power, or BOLD volumes for the fMRI autoencoder) to
BOLD volumes. The mixin gives them the pandas face of the classic encoding models
(``predict`` returns time × voxel DataFrames, ``simulate`` adds noise), parameter labels,
a text summary and ``.keras`` saving/loading with ``safe_mode=True``.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pandas as pd
from keras import ops

from ...utils._input_checks import check_samples, is_concrete
from ...utils.formatting import TIME, VOXEL

__all__ = ["DeepEncodingModel", "CheckedInputMixin"]


class CheckedInputMixin:
    """Check concrete inputs of a Keras model's ``__call__``, ``fit`` and ``predict``.

    Listed before :class:`keras.Model` in a model's bases. NumPy arrays, DataFrames and
    eager tensors given to ``model(x)``, ``model.fit(x, ...)`` or ``model.predict(x)`` are
    checked against ``_sample_spec`` (one shared check, ``check_samples``), so that a wrong
    size or NaN raises a ``ValueError`` naming the expected and received sizes; symbolic
    tensors (model building, compiled training steps) pass through untouched.
    """

    def _sample_spec(self):
        """Return ``(sample_shape, name, axis_names)`` of the model's input."""
        return (tuple(self.paradigm_shape), self.paradigm_name, self.paradigm_axes)

    def _checked_input(self, inputs):
        if not is_concrete(inputs):
            return inputs
        shape, what, axes = self._sample_spec()
        values = check_samples(inputs, shape, what, axes)
        return inputs if hasattr(inputs, "numpy") and not isinstance(inputs, np.ndarray) \
            else values

    def __call__(self, inputs, *args, **kwargs):
        """Check concrete inputs, then run the Keras model.

        Parameters
        ----------
        inputs : array-like, DataFrame or tensor
            Model input (see ``_sample_spec``).
        *args, **kwargs
            Passed to :meth:`keras.Model.__call__` (``training``, ...).

        Returns
        -------
        object
            The model's output.

        Raises
        ------
        ValueError
            If a concrete input has the wrong sample shape or non-finite values.
        """
        return super().__call__(self._checked_input(inputs), *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        """Check concrete inputs, then train with :meth:`keras.Model.fit`.

        Parameters
        ----------
        x : array-like, DataFrame, tensor or dataset, optional
            Training inputs (arrays and DataFrames are checked).
        *args, **kwargs
            Passed to :meth:`keras.Model.fit`.

        Returns
        -------
        keras.callbacks.History
            The training history.

        Raises
        ------
        ValueError
            If a concrete input has the wrong sample shape or non-finite values.
        """
        return super().fit(self._checked_input(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Check concrete inputs, then predict with :meth:`keras.Model.predict`.

        Parameters
        ----------
        x : array-like, DataFrame, tensor or dataset
            Inputs (arrays and DataFrames are checked).
        *args, **kwargs
            Passed to :meth:`keras.Model.predict`.

        Returns
        -------
        object
            The model's outputs.

        Raises
        ------
        ValueError
            If a concrete input has the wrong sample shape or non-finite values.
        """
        return super().predict(self._checked_input(x), *args, **kwargs)


class DeepEncodingModel(CheckedInputMixin):
    """Mixin giving Keras models ``predict``/``simulate``/``save``/``load`` on pandas data.

    Subclasses are :class:`keras.Model` subclasses listing this mixin first; they define
    ``paradigm_shape`` (per-sample input shape), ``volume_shape`` and a ``call`` returning a
    dict with at least the key ``"volume"`` of shape (batch, x, y, z, 1).

    Attributes
    ----------
    paradigm_shape : tuple of int
        Shape of one input sample.
    volume_shape : tuple of 3 int
        Shape of the predicted volumes.
    paradigm_name : str
        Name of the input in error messages (``"eeg"``, ``"volumes"``).
    paradigm_axes : tuple of str or None
        Names of the per-sample input axes, used to say which axis has the wrong size.
    """

    paradigm_name = "paradigm"
    paradigm_axes = None

    def format_paradigm(self, paradigm):
        """Convert a paradigm to a float32 array of input samples, with its row labels.

        Parameters
        ----------
        paradigm : DataFrame or array-like
            Either an array of shape ``(n_samples, *paradigm_shape)`` or a DataFrame/2D array
            of shape (n_samples, prod(paradigm_shape)) flattened in C order.

        Returns
        -------
        values : ndarray, shape ``(n_samples, *paradigm_shape)``
            Input samples.
        index : Index
            Row labels (the frame's index, or a RangeIndex named ``time``).

        Raises
        ------
        ValueError
            If the shape does not match ``paradigm_shape`` or values are not finite.
        """
        values = check_samples(paradigm, self.paradigm_shape, self.paradigm_name,
                               self.paradigm_axes)
        if isinstance(paradigm, pd.DataFrame):
            index = paradigm.index
        else:
            index = pd.RangeIndex(len(values), name=TIME)
        return values, index

    def volumes_to_frame(self, volumes, index, voxels=None):
        """Flatten volumes to a DataFrame (sample × voxel, voxels in C order).

        Parameters
        ----------
        volumes : ndarray, shape (n_samples, x, y, z[, 1])
            Volumes.
        index : Index
            Row labels.
        voxels : Index or array-like, optional
            Column labels, one per voxel in C order of ``volume_shape``; default the flat
            volume index (a RangeIndex named ``voxel``).

        Returns
        -------
        DataFrame, shape (n_samples, n_voxels)
            Flattened volumes.

        Raises
        ------
        ValueError
            If ``voxels`` does not have one label per voxel.
        """
        n_voxels = int(np.prod(self.volume_shape))
        if voxels is None:
            columns = pd.RangeIndex(n_voxels, name=VOXEL)
        else:
            columns = voxels if isinstance(voxels, pd.Index) else pd.Index(voxels, name=VOXEL)
            if len(columns) != n_voxels:
                raise ValueError(
                    f"voxels must have one label per voxel ({n_voxels} for a volume of shape "
                    f"{tuple(self.volume_shape)}), got {len(columns)}"
                )
        return pd.DataFrame(
            np.asarray(volumes).reshape(len(volumes), n_voxels), index=index, columns=columns
        )

    def predict_outputs(self, values, batch_size=64):
        """Run the model in inference mode on an array, batch by batch.

        Parameters
        ----------
        values : ndarray, shape ``(n_samples, *paradigm_shape)``
            Input samples.
        batch_size : int, default 64
            Samples per forward pass.

        Returns
        -------
        dict of ndarray
            The model outputs (``"volume"``, ``"latent"``, ...), concatenated over batches.
        """
        parts = [
            self(values[start : start + batch_size], training=False)
            for start in range(0, len(values), batch_size)
        ]
        return {
            key: np.concatenate([ops.convert_to_numpy(part[key]) for part in parts])
            for key in parts[0]
        }

    def predict(self, paradigm, batch_size=64, voxels=None):
        """Predict BOLD volumes as a time × voxel DataFrame.

        Parameters
        ----------
        paradigm : DataFrame or array-like
            Input samples (see :meth:`format_paradigm`).
        batch_size : int, default 64
            Samples per forward pass.
        voxels : Index or array-like, optional
            Voxel labels (one per voxel, C order of ``volume_shape``), e.g. the columns of
            the BOLD frame; default the flat volume index.

        Returns
        -------
        DataFrame, shape (n_samples, n_voxels)
            Predictions indexed like the paradigm, voxels in C order of ``volume_shape``.

        Raises
        ------
        ValueError
            If the paradigm does not match the model's input shape or is not finite, or
            ``voxels`` has the wrong length.

        Examples
        --------
        >>> import numpy as np
        >>> from braincoder.models.deep import fMRI_AE
        >>> ae = fMRI_AE((2, 2, 2), (4, 4, 4), None, None, 2, seed=0,
        ...              na_spec=([(3, 3, 3)], [(1, 1, 1)], False, (1, 1, 1), (1, 1, 1)))
        >>> frame = ae.predict(np.zeros((2, 4, 4, 4)), voxels=[f"v{i}" for i in range(64)])
        >>> list(frame.columns[:2])
        ['v0', 'v1']
        """
        values, index = self.format_paradigm(paradigm)
        outputs = self.predict_outputs(values, batch_size)
        return self.volumes_to_frame(outputs["volume"], index, voxels)

    def simulate(self, paradigm, noise=1.0, seed=None, voxels=None):
        """Predict BOLD and add Gaussian noise.

        Parameters
        ----------
        paradigm : DataFrame or array-like
            Input samples.
        noise : float, default 1.0
            Standard deviation of the noise.
        seed : int, optional
            Seed of ``numpy.random.default_rng``.
        voxels : Index or array-like, optional
            Voxel labels, as in :meth:`predict`.

        Returns
        -------
        DataFrame, shape (n_samples, n_voxels)
            Noisy predictions.

        Raises
        ------
        ValueError
            If ``noise`` is negative.
        """
        if noise < 0:
            raise ValueError(f"noise must be non-negative, got {noise!r}")
        prediction = self.predict(paradigm, voxels=voxels)
        rng = np.random.default_rng(seed)
        return prediction + rng.normal(scale=noise, size=prediction.shape).astype("float32")

    def get_parameter_labels(self):
        """Return the names (paths) of all Keras weights.

        Returns
        -------
        list of str
            Weight paths, e.g. ``"eeg_to_fmri/encoder_conv_0/kernel"``.
        """
        return [weight.path for weight in self.weights]

    def summary(self, **kwargs):
        """Return the Keras summary table as a string (nothing is printed).

        Parameters
        ----------
        **kwargs
            Arguments of :meth:`keras.Model.summary` other than ``print_fn``.

        Returns
        -------
        str
            The summary table.
        """
        lines = []
        keras.Model.summary(self, print_fn=lambda line, *args, **kw: lines.append(line), **kwargs)
        return "\n".join(lines)

    def save(self, filepath, overwrite=True):
        """Save architecture and weights to a ``.keras`` file.

        Parameters
        ----------
        filepath : str or path
            Destination ending in ``.keras``.
        overwrite : bool, default True
            Overwrite an existing file.

        Raises
        ------
        ValueError
            If the file name does not end in ``.keras``.
        """
        if not os.fspath(filepath).endswith(".keras"):
            raise ValueError(f"filepath must end in '.keras', got {os.fspath(filepath)!r}")
        keras.Model.save(self, filepath, overwrite=overwrite)

    @classmethod
    def load(cls, filepath):
        """Load a model saved with :meth:`save` (``safe_mode=True``, not compiled).

        Parameters
        ----------
        filepath : str or path
            A ``.keras`` file.

        Returns
        -------
        DeepEncodingModel
            The model with its weights.

        Raises
        ------
        TypeError
            If the file holds another kind of model.
        """
        model = keras.saving.load_model(filepath, compile=False, safe_mode=True)
        if not isinstance(model, cls):
            raise TypeError(f"{filepath} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
