"""Benchmark: training and inference throughput of the deep EEG-to-fMRI models.

Two configurations: ``tiny`` (16 EEG channels, 8×8×8 volumes, the test configuration) and
``realistic`` (64 EEG channels, 32×32×16 volumes). For each, the fMRI autoencoder and the
EEG_to_fMRI model are trained on simulated data (one warm-up epoch, then timed epochs) and
run in inference mode (one warm-up pass, then timed passes). Samples per second are
reported and written to a timestamped JSON file in ``benchmarks/results``.

Usage::

    python benchmarks/bench_deep.py            # full run
    python benchmarks/bench_deep.py --fast     # smoke run
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from braincoder.datasets import normalize_eeg, simulate_eeg_fmri
from braincoder.models.deep import EEG_to_fMRI, fMRI_AE
from braincoder.optimize import DeepFitter

CONFIGS = {
    "tiny": dict(
        n_channels=16, volume_shape=(8, 8, 8), latent=(2, 2, 2), filters=8,
        ae_spec=([(3, 3, 3), (3, 3, 3)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (2, 2, 2)),
        eeg_spec=([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1)),
    ),
    "realistic": dict(
        n_channels=64, volume_shape=(32, 32, 16), latent=(4, 4, 4), filters=8,
        ae_spec=([(3, 3, 3), (3, 3, 3), (3, 3, 3)], [(1, 1, 1)] * 3, True, (2, 2, 2),
                 (2, 2, 2)),
        eeg_spec=([(3, 3, 1), (3, 3, 1)], [(2, 2, 1), (2, 1, 1)], False, (1, 1, 1), (1, 1, 1)),
    ),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smoke run")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    return parser.parse_args(argv)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def _train_rate(model, inputs, targets, epochs, batch_size, seed, **fit_kwargs):
    """Samples/s over the epochs after the first (which includes tracing)."""
    fitter = DeepFitter(model, inputs, targets)
    timer = _EpochTimer()
    original_fit = model.fit

    def fit_with_timer(*args, callbacks=(), **kwargs):
        return original_fit(*args, callbacks=[*callbacks, timer], **kwargs)

    model.fit = fit_with_timer
    try:
        fitter.fit(epochs=epochs + 1, batch_size=batch_size, validation_split=0.0,
                   progressbar=False, log_dir=False, early_stopping_patience=None, seed=seed,
                   **fit_kwargs)
    finally:
        del model.fit
    seconds = float(np.sum(timer.seconds[1:]))
    return epochs * len(inputs) / seconds, seconds


def _inference_rate(model, inputs, repeats, batch_size=64):
    predict = tf.function(lambda x: model(x, training=False)["volume"])
    predict(inputs[:batch_size]).numpy()  # warm-up (tracing)
    start = time.perf_counter()
    for _ in range(repeats):
        for first in range(0, len(inputs), batch_size):
            predict(inputs[first : first + batch_size]).numpy()
    seconds = time.perf_counter() - start
    return repeats * len(inputs) / seconds, seconds


def run_config(name, config, n_samples, epochs, batch_size, seed):
    sim = simulate_eeg_fmri(
        n_subjects=1, n_volumes=n_samples, n_channels=config["n_channels"],
        volume_shape=config["volume_shape"], seed=seed,
    )
    eeg = normalize_eeg(sim.eeg, sim.subjects)
    volumes = sim.volumes / sim.volumes.std()
    latent, shape = config["latent"], config["volume_shape"]
    ae = fMRI_AE(latent, shape, None, None, config["filters"], seed=seed,
                 na_spec=config["ae_spec"])
    model = EEG_to_fMRI(latent, eeg.shape[1:], config["eeg_spec"], config["filters"],
                        seed=seed, fmri_args=(latent, shape))
    rows = []
    for model_name, net, inputs, extra in [
        ("fmri_ae", ae, volumes, {}),
        ("eeg_to_fmri", model, eeg, {"latent_target": ae}),
    ]:
        keras.utils.set_random_seed(seed)
        train, train_s = _train_rate(net, inputs, volumes, epochs, batch_size, seed, **extra)
        infer, infer_s = _inference_rate(net, inputs, repeats=max(1, epochs))
        rows.append(dict(
            config=name, model=model_name, n_samples=n_samples, epochs=epochs,
            batch_size=batch_size, n_parameters=int(net.count_params()),
            train_samples_per_s=train, train_seconds=train_s,
            inference_samples_per_s=infer, inference_seconds=infer_s,
            eeg_shape=list(eeg.shape[1:]), volume_shape=list(shape),
        ))
        print(f"{name:>10} {model_name:>12}: train {train:8.1f} samples/s, "
              f"inference {infer:9.1f} samples/s ({net.count_params()} parameters)", flush=True)
    return rows


def main(argv=None):
    args = parse_args(argv)
    n_samples, epochs = (64, 1) if args.fast else (args.n_samples, args.epochs)
    rows = []
    for name in args.configs:
        rows.extend(run_config(name, CONFIGS[name], n_samples, epochs, args.batch_size, args.seed))
    print()
    print(f"| {'config':<10} | {'model':<12} | {'params':>8} | {'train samples/s':>15} | "
          f"{'inference samples/s':>19} |")
    print(f"|{'-' * 12}|{'-' * 14}|{'-' * 10}|{'-' * 17}|{'-' * 21}|")
    for row in rows:
        print(f"| {row['config']:<10} | {row['model']:<12} | {row['n_parameters']:>8} | "
              f"{row['train_samples_per_s']:>15.1f} | {row['inference_samples_per_s']:>19.1f} |")
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"bench_deep-{stamp}.json")
    record = dict(
        benchmark="bench_deep", fast=args.fast, seed=args.seed, results=rows,
        versions=dict(python=sys.version.split()[0], numpy=np.__version__,
                      tensorflow=tf.__version__, keras=keras.__version__),
        hardware=dict(machine=platform.machine(), processor=platform.processor(),
                      cpu_count=os.cpu_count(), gpus=len(tf.config.list_physical_devices("GPU")),
                      load_average=list(os.getloadavg())),
    )
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    print(f"\nload average (1, 5, 15 min): {os.getloadavg()}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
