"""Progress bar and TensorBoard logging of long fits."""

from __future__ import annotations

import datetime
import logging
import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def resolve_log_dir(log_dir, run_name="fit"):
    """Timestamped TensorBoard run directory, or None when logging is off.

    Parameters
    ----------
    log_dir : str, path, None or False
        A directory (a timestamped subfolder is created in it), ``None`` for ``logs/fit``,
        ``False`` for no logging.
    run_name : str, default "fit"
        Prefix of the run folder.

    Returns
    -------
    str or None
        The run directory.
    """
    if log_dir is False:
        return None
    if log_dir is None:
        log_dir = os.path.join("logs", "fit")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(os.fspath(log_dir), f"{run_name}-{stamp}")


class FitMonitor:
    """Writes scalars and histograms to TensorBoard and drives a tqdm progress bar.

    Parameters
    ----------
    run_dir : str or None
        TensorBoard run directory (None: no logging).
    total : int
        Maximum number of steps (progress bar length).
    progressbar : bool
        Show a tqdm bar.
    description : str
        Bar description.
    """

    def __init__(self, run_dir, total, progressbar, description):
        self.run_dir = run_dir
        self.writer = tf.summary.create_file_writer(run_dir) if run_dir else None
        self.bar = tqdm(total=total, desc=description, disable=not progressbar, leave=False)

    def scalars(self, step, values):
        """Log scalars at ``step``.

        Parameters
        ----------
        step : int
            Iteration number.
        values : dict
            Tag → float.
        """
        if self.writer is None:
            return
        with self.writer.as_default():
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
        if self.writer is None:
            return
        with self.writer.as_default():
            for column, label in enumerate(labels):
                values = np.asarray(parameters[:, column], np.float32)
                values = values[np.isfinite(values)]
                if values.size:
                    tf.summary.histogram(f"parameters/{label}", values, step=int(step))

    def advance(self, n, **postfix):
        """Advance the bar by ``n`` steps and show ``postfix`` values."""
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in postfix.items()}, refresh=False)

    def close(self):
        """Flush the writer and close the bar."""
        self.bar.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
