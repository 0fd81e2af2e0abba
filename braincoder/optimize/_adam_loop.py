"""Compiled Adam with early stopping for the decoding fitters (noise model, stimuli).

``adam_minimize`` runs up to ``steps_per_call`` Adam steps inside one ``tf.function`` call
(a ``tf.while_loop``), so Python only sees one summary per call. The early-stopping test
runs inside the loop: after ``min_n_iterations`` steps, stop once the loss improved by less
than ``rtol`` (relative) over the last ``lag`` steps. The best point seen is returned; a
non-finite loss stops the run, and so does Ctrl-C between calls.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

_RUNNING, _CONVERGED, _NONFINITE = 0, 1, 2
_REASONS = {
    _RUNNING: "max_n_iterations reached",
    _CONVERGED: "converged",
    _NONFINITE: "non-finite loss",
}


@dataclass
class AdamResult:
    """Outcome of :func:`adam_minimize`.

    Attributes
    ----------
    x : ndarray
        Best point (lowest loss seen).
    best_loss : float
        Loss at ``x``.
    losses : ndarray
        Loss at every step taken.
    n_iterations : int
        Number of steps taken.
    stop_reason : str
        Why the run stopped.
    """

    x: np.ndarray
    best_loss: float
    losses: np.ndarray
    n_iterations: int
    stop_reason: str


def _check_schedule(max_n_iterations, min_n_iterations, lag, rtol, learning_rate):
    for name, value in (("max_n_iterations", max_n_iterations), ("lag", lag)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if int(min_n_iterations) < 0:
        raise ValueError(f"min_n_iterations must be >= 0, got {min_n_iterations}")
    if not float(learning_rate) > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not float(rtol) >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")


def adam_minimize(
    loss_fn, init, learning_rate=0.01, max_n_iterations=1000, min_n_iterations=100, lag=100,
    rtol=1e-6, steps_per_call=100, progressbar=True, description="Adam", dtype=tf.float32,
    beta_1=0.9, beta_2=0.999, epsilon=1e-7,
):
    """Minimise a scalar tensor function with Adam, many steps per compiled call.

    Parameters
    ----------
    loss_fn : callable
        Tensor function ``x -> scalar loss`` (traced once).
    init : array-like
        Starting point (any shape).
    learning_rate : float, default 0.01
        Adam step size.
    max_n_iterations, min_n_iterations : int
        Step budget and minimum number of steps before early stopping.
    lag : int, default 100
        Window of the early-stopping test.
    rtol : float, default 1e-6
        Stop when ``loss[k − lag] − loss[k] <= rtol · |loss[k − lag]|``.
    steps_per_call : int, default 100
        Steps per compiled call (the progress bar updates between calls).
    progressbar : bool, default True
        Show a tqdm bar.
    description : str
        Label of the progress bar.
    dtype : tf.DType, default float32
        Dtype of the optimised variable.
    beta_1, beta_2, epsilon : float
        Adam constants.

    Returns
    -------
    AdamResult
        Best point, losses and stop reason.
    """
    _check_schedule(max_n_iterations, min_n_iterations, lag, rtol, learning_rate)
    max_n_iterations, min_n_iterations, lag = int(max_n_iterations), int(min_n_iterations), int(lag)
    x0 = tf.constant(np.asarray(init), dtype=dtype)
    lr = tf.constant(learning_rate, dtype)
    b1, b2 = tf.constant(beta_1, dtype), tf.constant(beta_2, dtype)
    eps = tf.constant(epsilon, dtype)
    rtol_ = tf.constant(rtol, dtype)

    def step_loop(x, m, v, k, buffer, best_x, best_loss, n_steps):
        def cond(i, x, m, v, k, buffer, best_x, best_loss, status, losses):
            return tf.logical_and(i < n_steps, tf.equal(status, _RUNNING))

        def body(i, x, m, v, k, buffer, best_x, best_loss, status, losses):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.cast(loss_fn(x), dtype)
            grad = tape.gradient(loss, x)
            finite = tf.logical_and(
                tf.math.is_finite(loss), tf.reduce_all(tf.math.is_finite(grad))
            )
            better = tf.logical_and(finite, loss < best_loss)
            best_x = tf.where(better, x, best_x)
            best_loss = tf.where(better, loss, best_loss)
            t = tf.cast(k + 1, dtype)
            m = b1 * m + (1.0 - b1) * grad
            v = b2 * v + (1.0 - b2) * tf.square(grad)
            m_hat = m / (1.0 - tf.pow(b1, t))
            v_hat = v / (1.0 - tf.pow(b2, t))
            x_new = x - lr * m_hat / (tf.sqrt(v_hat) + eps)
            slot = tf.math.floormod(k, lag)
            old = buffer[slot]
            buffer = tf.tensor_scatter_nd_update(buffer, [[slot]], [loss])
            k = k + 1
            stalled = tf.logical_and(
                tf.logical_and(k > min_n_iterations, k > lag), old - loss <= rtol_ * tf.abs(old)
            )
            status = tf.where(
                tf.logical_not(finite),
                _NONFINITE,
                tf.where(stalled, _CONVERGED, _RUNNING),
            )
            x = tf.where(finite, x_new, x)
            losses = losses.write(i, loss)
            return i + 1, x, m, v, k, buffer, best_x, best_loss, status, losses

        losses = tf.TensorArray(dtype, size=n_steps)
        out = tf.while_loop(
            cond, body,
            (tf.constant(0), x, m, v, k, buffer, best_x, best_loss, tf.constant(_RUNNING), losses),
        )
        i, x, m, v, k, buffer, best_x, best_loss, status, losses = out
        return x, m, v, k, buffer, best_x, best_loss, status, losses.stack()[:i]

    # A partial gives every call its own tracing key: each run traces its own loss once, and
    # TensorFlow does not mistake runs for retracing of one function.
    compiled = tf.function(functools.partial(step_loop))
    x, m, v = x0, tf.zeros_like(x0), tf.zeros_like(x0)
    k = tf.constant(0)
    buffer = tf.fill([lag], tf.constant(np.inf, dtype))
    best_x, best_loss = x0, tf.constant(np.inf, dtype)
    history = []
    status = _RUNNING
    reason = None
    bar = tqdm(total=max_n_iterations, desc=description, disable=not progressbar, leave=False)
    try:
        while status == _RUNNING and int(k) < max_n_iterations:
            n_steps = tf.constant(min(int(steps_per_call), max_n_iterations - int(k)))
            x, m, v, k, buffer, best_x, best_loss, status_t, losses = compiled(
                x, m, v, k, buffer, best_x, best_loss, n_steps
            )
            status = int(status_t)
            losses = losses.numpy()
            history.append(losses)
            bar.update(len(losses))
            if len(losses):
                bar.set_postfix(loss=f"{losses[-1]:.4g}", best=f"{float(best_loss):.4g}")
    except KeyboardInterrupt:
        reason = "interrupted"
        logger.warning("%s interrupted after %d steps; keeping the best point", description,
                       int(k))
    finally:
        bar.close()
    reason = reason or _REASONS[status]
    losses = np.concatenate(history) if history else np.zeros(0)
    if not np.isfinite(float(best_loss)):
        best_x = x0
    logger.info("%s: %s after %d steps (best loss %.6g)", description, reason, int(k),
                float(best_loss))
    return AdamResult(best_x.numpy(), float(best_loss), losses, int(k), reason)
