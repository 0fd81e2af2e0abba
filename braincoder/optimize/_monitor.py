"""One monitor for every fit: progress bar, TensorBoard, Ctrl-C returning the best so far.

:class:`Monitor` serves both kinds of training loop:

* host-driven loops (:class:`~braincoder.optimize.ParameterFitter`, the first-order loop of
  :mod:`._loop`, the stimulus and noise fitters) call :meth:`Monitor.scalars`,
  :meth:`Monitor.histograms` and :meth:`Monitor.advance`;
* Keras trainers pass it to ``model.fit`` as a callback: it writes each epoch's logs as
  ``epoch_<name>`` scalars (``run_dir/train`` and, for ``val_`` logs, ``run_dir/validation``,
  the layout of Keras' TensorBoard callback), drives the bar over epochs and keeps the
  weights of the best epoch.

Used as a context manager it closes the bar and the writers, and turns Ctrl-C into a
``RuntimeWarning``: the loop stops and the caller keeps the best state seen so far
(:attr:`Monitor.interrupted` tells it happened).

``log_dir`` convention (every fitter): ``None`` or ``False`` — no logging (the default);
a directory — a timestamped run folder is created in it.
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = ["Monitor", "FitMonitor", "resolve_log_dir"]


def resolve_log_dir(log_dir, run_name="fit"):
    """Timestamped TensorBoard run directory, or None when logging is off.

    Parameters
    ----------
    log_dir : str, path, None or False
        A directory (a timestamped subfolder is created in it); ``None`` or ``False`` for
        no logging.
    run_name : str, default "fit"
        Prefix of the run folder.

    Returns
    -------
    str or None
        The run directory.
    """
    if log_dir is None or log_dir is False:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(os.fspath(log_dir), f"{run_name}-{stamp}")


class Monitor(keras.callbacks.Callback):
    """Progress bar, TensorBoard writer and Ctrl-C handling of one fit.

    Parameters
    ----------
    run_dir : str or None
        TensorBoard run directory (see :func:`resolve_log_dir`); None: no logging.
    total : int or None
        Length of the bar (steps, chunks or epochs); for Keras, the number of epochs is
        taken from ``model.fit`` when None.
    progressbar : bool, default True
        Show a tqdm bar.
    description : str, default "fit"
        Bar description.
    restore_best : str or None, default None
        Keras only: log key (``"val_loss"``, ``"loss"``) whose lowest epoch's weights are
        restored when training stops early, ends or is interrupted.
    what : str, default "fit"
        Name used in the interruption warning.

    Attributes
    ----------
    interrupted : bool
        Whether Ctrl-C stopped the loop.
    records : list of dict
        Keras only: the logs of every finished epoch.
    """

    def __init__(self, run_dir=None, total=None, progressbar=True, description="fit",
                 restore_best=None, what="fit"):
        super().__init__()
        self.run_dir = run_dir
        self.total = total
        self.progressbar = progressbar
        self.description = description
        self.restore_best = restore_best
        self.what = what
        self.interrupted = False
        self.records = []
        self._writers = {}
        self._bar = None
        self._best = None
        self._best_weights = None

    # ------------------------------------------------------------------ resources
    @property
    def bar(self):
        """The tqdm bar (created on first use)."""
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.description,
                             disable=not self.progressbar, leave=False)
        return self._bar

    def _writer(self, sub=""):
        if self.run_dir is None:
            return None
        if sub not in self._writers:
            self._writers[sub] = tf.summary.create_file_writer(
                os.path.join(self.run_dir, sub) if sub else self.run_dir)
        return self._writers[sub]

    @property
    def writer(self):
        """The run's TensorBoard writer, or None without logging."""
        return self._writer()

    def close(self):
        """Flush and close the writers and the bar."""
        if self._bar is not None:
            self._bar.close()
        for writer in self._writers.values():
            writer.flush()
            writer.close()
        self._writers = {}

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close()
        if kind is KeyboardInterrupt:
            self.interrupt()
            return True
        return False

    def interrupt(self, what=None, step=None, detail=None):
        """Record a Ctrl-C and warn that the best result so far is returned.

        Parameters
        ----------
        what : str, optional
            Name of the loop (default: the monitor's ``what``).
        step : int, optional
            Steps run before the interruption.
        detail : str, optional
            What was kept, replacing "returning the best result so far".
        """
        self.interrupted = True
        after = "" if step is None else f" after {step} steps"
        detail = "; returning the best result so far" if detail is None else f": {detail}"
        warnings.warn(f"{what or self.what} interrupted{after}{detail}", RuntimeWarning,
                      stacklevel=3)

    # ------------------------------------------------------------------ host loops
    def scalars(self, step, values, sub=""):
        """Log scalars at ``step``.

        Parameters
        ----------
        step : int
            Iteration (or epoch) number.
        values : dict
            Tag → float.
        sub : str, default ""
            Subfolder of the run directory.
        """
        writer = self._writer(sub)
        if writer is None:
            return
        with writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value), step=int(step))

    def histograms(self, step, parameters, labels):
        """Log one histogram per parameter label.

        Parameters
        ----------
        step : int
            Iteration number.
        parameters : ndarray, shape (n_voxels, n_parameters)
            Current parameter values.
        labels : sequence of str
            Parameter labels (columns).
        """
        writer = self.writer
        if writer is None:
            return
        with writer.as_default():
            for column, label in enumerate(labels):
                values = np.asarray(parameters[:, column], np.float32)
                values = values[np.isfinite(values)]
                if values.size:
                    tf.summary.histogram(f"parameters/{label}", values, step=int(step))

    def images(self, step, tag, images, sub="images", max_outputs=8):
        """Log a batch of images.

        Parameters
        ----------
        step : int
            Iteration (or epoch) number.
        tag : str
            Image tag.
        images : ndarray, shape (n, height, width, channels)
            Values in [0, 1].
        sub : str, default "images"
            Subfolder of the run directory.
        max_outputs : int, default 8
            Images kept per step.
        """
        writer = self._writer(sub)
        if writer is None:
            return
        with writer.as_default():
            tf.summary.image(tag, np.asarray(images, np.float32), step=int(step),
                             max_outputs=max_outputs)
        writer.flush()

    def advance(self, n, **postfix):
        """Advance the bar by ``n`` and show ``postfix`` values."""
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    # ------------------------------------------------------------------ Keras callback
    def on_train_begin(self, logs=None):
        if self.total is None and self.params:
            self.total = self.params.get("epochs")
        self.bar.reset(total=self.total)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.records.append({key: float(np.asarray(value)) for key, value in logs.items()})
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        validation = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        self.scalars(epoch, train, sub="train")
        if validation:
            self.scalars(epoch, validation, sub="validation")
        shown = {key: float(np.asarray(logs[key])) for key in ("loss", "val_loss", "val_top1")
                 if key in logs}
        self.advance(1, **shown)
        if self.restore_best is not None and self.restore_best in logs:
            value = float(np.asarray(logs[self.restore_best]))
            if np.isfinite(value) and (self._best is None or value < self._best):
                self._best = value
                self._best_weights = self.model.get_weights()

    def restore(self, model=None):
        """Set the model to the weights of its best epoch (when ``restore_best`` was given).

        Parameters
        ----------
        model : keras.Model, optional
            The model (defaults to the one Keras attached).

        Returns
        -------
        bool
            Whether weights were restored.
        """
        model = model if model is not None else self.model
        if self._best_weights is None or model is None:
            return False
        model.set_weights(self._best_weights)
        return True


#: Name used by the parameter fitter's chunk loop.
FitMonitor = Monitor
