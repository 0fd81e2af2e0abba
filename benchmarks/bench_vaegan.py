"""Benchmark: image reconstruction from simulated V1–V3 fMRI (VAE-GAN vs ridge vs pRF inversion).

Runs the reference 90/10 split (100 trials) and the large 80/20 split (all 361 digits 6/9),
reports PCC, MSE, SSIM, 2-way identification and 6-vs-9 classification accuracy of the
reconstructions of the test trials for the three methods, plus VAE-GAN training samples/s
per stage, and writes a timestamped JSON into benchmarks/results/.

    python benchmarks/bench_vaegan.py [--fast] [--seed 0]
"""

import argparse
import datetime
import json
import os
import platform
import time

import numpy as np

import braincoder
from braincoder.datasets import simulate_image_fmri, split_image_fmri
from braincoder.models import GaussianPRF2D
from braincoder.models.deep import VAEGAN
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import classification_accuracy, mse, pixel_correlation
from braincoder.utils.metrics import n_way_identification, ssim


def scores(train, test, images):
    return {
        "pcc": float(np.nanmean(pixel_correlation(test.images, images))),
        "mse": float(mse(test.images, images).mean()),
        "ssim": float(ssim(test.images, images, data_range=1.0).mean()),
        "two_way": n_way_identification(test.images, images, n=2),
        "accuracy_6v9": classification_accuracy(
            train.images, train.labels, images, test.labels
        ),
    }


def run_setting(sim, setting, args):
    train, test = split_image_fmri(sim, setting, seed=args.seed)
    rows, timing = {}, {}
    start = time.perf_counter()
    ridge = RidgeImageDecoder().fit(train.responses, train.images)
    timing["ridge_fit_s"] = time.perf_counter() - start
    rows["ridge"] = scores(train, test, ridge.reconstruct(test.responses)[0])
    start = time.perf_counter()
    prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
    prf.fit(train.responses, train.images)
    timing["prf_inversion_fit_s"] = time.perf_counter() - start
    rows["prf_inversion"] = scores(train, test, prf.reconstruct(test.responses)[0])

    epochs = (5, 10, 5) if args.fast else (40, 150, 40)
    model = VAEGAN(latent_dim=16, filters=(16, 32), seed=args.seed)
    trainer = VAEGANTrainer(model, seed=args.seed)
    fit = dict(progressbar=False, batch_size=16)
    # Warm-up (tracing) on one epoch is included in the first stage's timing; report both.
    trainer.fit_vae_gan(train.images, epochs=epochs[0], learning_rate=2e-3, **fit)
    trainer.fit_fmri_encoder(train.responses, train.images, epochs=epochs[1], **fit)
    trainer.fit_generator(train.responses, train.images, epochs=epochs[2],
                          learning_rate=1e-3, **fit)
    rows["vae_gan"] = scores(train, test, model.reconstruct(test.responses)[0])
    timing["vae_gan_samples_per_s"] = dict(trainer.samples_per_second)
    timing["vae_gan_epochs_run"] = {k: len(v) for k, v in trainer.history.items()}
    return {"n_train": len(train.images), "n_test": len(test.images), "scores": rows,
            "timing": timing}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast", action="store_true", help="few epochs, fewer voxels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    voxels = (100, 60, 40) if args.fast else (400, 300, 200)
    sim = simulate_image_fmri(n_voxels_per_area=voxels, seed=args.seed)
    results = {}
    for setting in ("reference", "large"):
        results[setting] = run_setting(sim, setting, args)

    header = (f"{'setting':<10} {'method':<14} {'PCC':>6} {'MSE':>7} {'SSIM':>6} "
              f"{'2-way':>6} {'6v9':>6}")
    print(header)
    for setting, result in results.items():
        for method, row in result["scores"].items():
            print(f"{setting:<10} {method:<14} {row['pcc']:6.3f} {row['mse']:7.4f} "
                  f"{row['ssim']:6.3f} {row['two_way']:6.3f} {row['accuracy_6v9']:6.3f}")
    print("\nVAE-GAN training samples/s per stage")
    for setting, result in results.items():
        sps = result["timing"]["vae_gan_samples_per_s"]
        print(f"{setting:<10} " + "  ".join(f"{k}={v:.0f}" for k, v in sps.items()))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    record = {
        "benchmark": "vaegan",
        "config": {"fast": args.fast, "seed": args.seed, "n_voxels_per_area": voxels,
                   "snr": 1.0},
        "versions": {"braincoder": getattr(braincoder, "__version__", "unknown"),
                     "numpy": np.__version__},
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    path = os.path.join(out_dir, f"vaegan-{stamp}{'-fast' if args.fast else ''}.json")
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
