"""The one first-order loop, its stop rules and the one monitor."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from braincoder.optimize._loop import (
    FirstOrderLoop,
    LossPlateau,
    MaxSteps,
    NonFiniteLoss,
    R2Plateau,
    adam_minimize,
    drive,
)
from braincoder.optimize._monitor import Monitor, resolve_log_dir


def test_adam_minimize_finds_the_minimum_of_a_quadratic():
    target = np.array([1.5, -2.0, 0.25], np.float32)
    result = adam_minimize(lambda x: tf.reduce_sum(tf.square(x - target)), np.zeros(3),
                           learning_rate=0.05, max_n_iterations=5000, min_n_iterations=10,
                           lag=50, rtol=1e-7, progressbar=False)
    np.testing.assert_allclose(result.x, target, atol=1e-3)
    assert result.stop_reason == "converged"
    assert result.n_iterations < 5000 and len(result.losses) == result.n_iterations
    assert result.best_loss == pytest.approx(float(np.sum((result.x - target) ** 2)), abs=1e-6)


def test_any_keras_optimizer_and_best_point_under_non_finite_loss():
    # The loss is finite only for x < 3: SGD walks towards 5 and must keep the best point.
    def loss(x):
        value = tf.square(x[0] - 5.0)
        return tf.where(x[0] < 3.0, value, tf.constant(np.nan, tf.float32))

    result = adam_minimize(loss, np.zeros(1), max_n_iterations=1000, progressbar=False,
                           optimizer=keras.optimizers.SGD(0.1))
    assert result.stop_reason == "non-finite loss"
    assert result.x[0] < 3.0
    assert result.best_loss == pytest.approx((result.x[0] - 5.0) ** 2, rel=1e-5)


def test_stop_rules_fire_where_their_formula_says():
    losses = [10.0, 8.0, 7.0, 6.9, 6.89, 6.889, 6.889]
    history = {"loss": losses}
    rule = LossPlateau(lag=2, rtol=0.01)
    expected = next(k for k in range(2, len(losses))
                    if losses[k - 2] - losses[k] <= 0.01 * abs(losses[k - 2])) + 1
    assert rule.first_stop(history, 0) == (expected, "converged")
    assert LossPlateau(lag=2, rtol=0.01, min_steps=6).first_stop(history, 0)[0] == 7
    assert NonFiniteLoss().first_stop({"loss": [1.0, np.nan, 2.0]}, 0)[0] == 2
    assert MaxSteps(3).first_stop(history, 0)[0] == 3
    assert R2Plateau(lag=2, atol=0.1).first_stop({"best_r2": [0.1, 0.5, 0.55, 0.56]}, 0)[0] == 4
    assert R2Plateau(lag=2, atol=0.1).first_stop({"best_r2": [0.1, 0.5, 0.65]}, 0) is None


def test_drive_turns_ctrl_c_into_best_so_far():
    loop = FirstOrderLoop(lambda x: tf.reduce_sum(tf.square(x - 2.0)), np.zeros(2),
                          keras.optimizers.Adam(0.1))
    calls = {"n": 0}

    def run(n):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return loop.run_steps(n)

    with pytest.warns(RuntimeWarning, match="interrupted after 20 steps"):
        n_steps, reason, history = drive(run, [], 1000, 10)
    assert (n_steps, reason) == (20, "interrupted")
    assert len(history["loss"]) == 20
    assert float(loop.best_loss.numpy()) == pytest.approx(np.min(history["loss"]))


def test_log_dir_convention(tmp_path):
    assert resolve_log_dir(None) is None and resolve_log_dir(False) is None
    assert resolve_log_dir(tmp_path, "run").startswith(os.path.join(str(tmp_path), "run-"))


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_monitor_as_keras_callback_logs_and_keeps_the_best_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    monitor = Monitor(resolve_log_dir(tmp_path), progressbar=False, restore_best="val_loss")
    with pytest.warns(RuntimeWarning, match="interrupted"):
        with monitor:
            model.fit(x, y, validation_split=0.25, epochs=10, callbacks=[monitor, _Interrupt()],
                      verbose=0)
    assert monitor.interrupted and len(monitor.records) == 3
    best = int(np.argmin([record["val_loss"] for record in monitor.records]))
    assert monitor.restore(model)
    x_val, y_val = x[48:], y[48:]
    val_loss = float(np.mean((model.predict(x_val, verbose=0) - y_val) ** 2))
    assert val_loss == pytest.approx(monitor.records[best]["val_loss"], rel=1e-4)
    tags = set()
    for sub in ("train", "validation"):
        for path in glob.glob(os.path.join(monitor.run_dir, sub, "events.*")):
            accumulator = EventAccumulator(path, size_guidance={"tensors": 0})
            accumulator.Reload()
            tags |= {f"{sub}/{tag}" for tag in accumulator.Tags()["tensors"]}
    assert {"train/epoch_loss", "validation/epoch_loss"} <= tags
