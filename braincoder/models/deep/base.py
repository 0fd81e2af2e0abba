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

from ...utils.formatting import TIME, VOXEL
from ...utils.validation import check_finite

__all__ = ["DeepEncodingModel"]


class DeepEncodingModel:
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
        what = self.paradigm_name
        expected = tuple(self.paradigm_shape)
        if isinstance(paradigm, pd.DataFrame):
            check_finite(paradigm, what)
            index = paradigm.index
            values = paradigm.to_numpy(dtype="float32")
        else:
            values = np.asarray(paradigm, dtype="float32")
            index = pd.RangeIndex(len(values), name=TIME) if values.ndim else None
        if values.ndim == 2 and values.shape[1] == int(np.prod(expected)):
            values = values.reshape(len(values), *expected)
        if expected[-1] == 1 and tuple(values.shape[1:]) == expected[:-1]:
            values = values[..., None]
        if values.ndim < 1 or tuple(values.shape[1:]) != expected:
            detail = ""
            if values.ndim != len(expected) + 1:
                detail = f": rank {values.ndim}, expected rank {len(expected) + 1}"
            elif self.paradigm_axes is not None:
                wrong = [
                    f"{found} {axis} (expected {size})"
                    for axis, found, size in zip(
                        self.paradigm_axes, values.shape[1:], expected, strict=True
                    )
                    if found != size
                ]
                detail = f": {', '.join(wrong)}"
            raise ValueError(
                f"{what} must have shape (n_samples, {', '.join(map(str, expected))}) "
                f"(or n_samples × {int(np.prod(expected))} flattened), got "
                f"{tuple(values.shape)}{detail}"
            )
        if not np.all(np.isfinite(values)):
            bad = int(np.sum(~np.isfinite(values)))
            raise ValueError(f"{what} has {bad} non-finite values")
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
