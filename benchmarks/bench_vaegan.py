"""Benchmark: image reconstruction from simulated V1–V3 fMRI (VAE-GAN vs ridge vs pRF inversion).

Runs the reference 90/10 split (100 trials) and the large 80/20 split (all 361 digits 6/9),
reports PCC, MSE, SSIM, 2-way identification and 6-vs-9 classification accuracy of the
reconstructions of the test trials for the three methods, plus VAE-GAN training samples/s
per stage, and writes a timestamped JSON into benchmarks/results/.

``--setting hard`` simulates a harder experiment (50 voxels per area, SNR 0.3: the size of
one subject's V1–V3 at 2 mm and a noisy block design); ``--voxels`` and ``--snr`` override
either.

VAE-GAN recipe (the defaults): latent dimension 32; stage 1 trains 60 epochs on the
training images plus 4 randomly shifted (up to 2 px) and rotated (up to 10 degrees) copies
of each (training images only; validation and test images are never augmented); stage 2
trains a linear fMRI encoder (``--encoder-hidden`` with no widths; input dropout 0.3) on
latent distillation plus 3 x pixel MSE through the frozen generator (``--image-weight``);
stage 3 fine-tunes the generator on the fMRI latents with the pixel MSE alone (no
feature-wise or adversarial term: ``--generator-feature-weight 0
--generator-adversarial-weight 0``), learning rate 2e-4, up to 100 epochs. The pixel-only
stage 3 turns the generator into a mean-image decoder of the predicted latents, which is
what correlation-based identification and SSIM reward. Early stopping in every stage uses
a 10 % validation part of the training trials, never the test trials. ``--ensemble 2``
trains two VAE-GANs independently (seeds ``seed`` and ``seed + 1000``) and averages their
reconstructions; the scores of each member are stored in the JSON
(``timing.vae_gan_members``), the samples/s are the first member's.

Options kept off by default: ``--n-samples K`` averages the generator's images of K
latent draws with the fMRI encoder's held-out latent SD (``--sd-scale``), and
``--latent-noise s`` adds that noise to the stage-3 latents; neither improved 2-way
identification on seed 0.

Ridge picks its alpha per pixel from a wide grid (1e-1 to 1e9) so that it is not
under-regularised at low SNR; the share of pixels choosing the grid's largest alpha is
reported.

    python benchmarks/bench_vaegan.py [--fast] [--seed 0] [--setting default|hard]
        [--voxels 50 50 50] [--snr 0.3] [--splits large] [--latent-dim 32] [--ensemble 2] ...
"""

import argparse
import datetime
import json
import os
import platform
import time

import keras
import numpy as np

import braincoder
from braincoder.datasets import simulate_image_fmri, split_image_fmri
from braincoder.models import GaussianPRF2D
from braincoder.models.deep import VAEGAN, fMRIEncoder
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import classification_accuracy, mse, pixel_correlation
from braincoder.utils.metrics import n_way_identification, ssim

RIDGE_ALPHAS = tuple(10.0 ** np.arange(-1, 10))
SETTINGS = {
    "default": {"voxels": (400, 300, 200), "snr": 1.0},
    "hard": {"voxels": (50, 50, 50), "snr": 0.3},
}


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


def run_vae_gan(train, test, args, seed):
    epochs = (5, 10, 5) if args.fast else tuple(args.epochs)
    model = VAEGAN(latent_dim=args.latent_dim, filters=(16, 32), seed=seed)
    encoder = fMRIEncoder(train.responses.shape[1], args.latent_dim,
                          hidden=tuple(args.encoder_hidden), dropout=args.encoder_dropout,
                          seed=seed)
    trainer = VAEGANTrainer(model, fmri_encoder=encoder, seed=seed)
    fit = dict(progressbar=False, batch_size=16)
    # Warm-up (tracing) on one epoch is included in the first stage's timing.
    trainer.fit_vae_gan(train.images, epochs=epochs[0], learning_rate=2e-3,
                        kl_weight=args.kl_weight, augment_copies=args.augment_copies,
                        augment_shift=args.augment_shift,
                        augment_rotation=args.augment_rotation, **fit)
    trainer.fit_fmri_encoder(train.responses, train.images, epochs=epochs[1],
                             learning_rate=args.encoder_lr, weight_decay=args.weight_decay,
                             image_weight=args.image_weight,
                             ridge_init_alphas=RIDGE_ALPHAS if args.ridge_init else None,
                             **fit)
    if epochs[2] > 0:
        trainer.fit_generator(train.responses, train.images, epochs=epochs[2],
                              learning_rate=args.generator_lr,
                              feature_weight=args.generator_feature_weight,
                              adversarial_weight=args.generator_adversarial_weight,
                              latent_noise=args.latent_noise, **fit)
    images = model.reconstruct(test.responses, n_samples=args.n_samples,
                               sd_scale=args.sd_scale, seed=seed)[0]
    latent_sd = keras.ops.convert_to_numpy(model.fmri_encoder.latent_sd)
    timing = {"vae_gan_samples_per_s": dict(trainer.samples_per_second),
              "vae_gan_epochs_run": {k: len(v) for k, v in trainer.history.items()},
              "vae_gan_latent_sd_mean": float(latent_sd.mean()),
              "vae_gan_best_val_pcc": {k: float(v["val_pcc"].max())
                                       for k, v in trainer.history.items()
                                       if "val_pcc" in v}}
    return images, timing


def run_setting(sim, split, args):
    train, test = split_image_fmri(sim, split, seed=args.seed)
    rows, timing = {}, {}
    start = time.perf_counter()
    ridge = RidgeImageDecoder(alphas=RIDGE_ALPHAS).fit(train.responses, train.images)
    timing["ridge_fit_s"] = time.perf_counter() - start
    chosen = ridge.solution.alphas
    timing["ridge_alpha_median"] = float(np.median(chosen))
    timing["ridge_alpha_at_max"] = float(np.mean(chosen >= RIDGE_ALPHAS[-1]))
    rows["ridge"] = scores(train, test, ridge.reconstruct(test.responses)[0])
    start = time.perf_counter()
    prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
    prf.fit(train.responses, train.images)
    timing["prf_inversion_fit_s"] = time.perf_counter() - start
    rows["prf_inversion"] = scores(train, test, prf.reconstruct(test.responses)[0])
    if not args.no_vae_gan:
        # Ensemble member k is seeded seed + 1000 k (member 0 is the single model).
        members = [run_vae_gan(train, test, args, args.seed + 1000 * k)
                   for k in range(args.ensemble)]
        rows["vae_gan"] = scores(train, test, np.mean([m[0] for m in members], axis=0))
        if args.ensemble > 1:
            timing["vae_gan_members"] = [scores(train, test, m[0]) for m in members]
        timing.update(members[0][1])
    return {"n_train": len(train.images), "n_test": len(test.images), "scores": rows,
            "timing": timing}


#: Numeric command-line options: flag, type, default, help.
NUMERIC_OPTIONS = (
    ("--latent-dim", int, 32, "VAE latent dimensions"),
    ("--kl-weight", float, 1.0, "weight of the stage-1 KL term"),
    ("--encoder-dropout", float, 0.3, "dropout of the fMRI encoder"),
    ("--encoder-lr", float, 1e-3, "stage-2 learning rate"),
    ("--weight-decay", float, 1e-3, "stage-2 weight decay"),
    ("--generator-lr", float, 2e-4, "stage-3 learning rate"),
    ("--generator-feature-weight", float, 0.0,
     "stage-3 feature-wise loss weight (0: pixel MSE only)"),
    ("--generator-adversarial-weight", float, 0.0, "stage-3 GAN loss weight"),
    ("--latent-noise", float, 0.0, "stage-3 latent noise in units of the held-out latent SD"),
    ("--ensemble", int, 2, "independently trained VAE-GANs whose reconstructions are averaged"),
    ("--n-samples", int, 1, "latent draws averaged per reconstruction (1: none)"),
    ("--sd-scale", float, 1.0, "factor on the latent SD of the draws of --n-samples"),
    ("--image-weight", float, 3.0, "stage-2 pixel MSE weight through the frozen generator"),
    ("--augment-copies", int, 4, "stage-1 shifted/rotated copies per training image (0: none)"),
    ("--augment-shift", int, 2, "stage-1 shift in pixels"),
    ("--augment-rotation", float, 10.0, "stage-1 rotation in degrees"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="few epochs, fewer voxels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="default")
    parser.add_argument("--voxels", type=int, nargs=3, default=None,
                        help="voxels in V1 V2 V3 (overrides --setting)")
    parser.add_argument("--snr", type=float, default=None, help="overrides --setting")
    parser.add_argument("--splits", nargs="+", choices=("reference", "large"),
                        default=("reference", "large"))
    parser.add_argument("--no-vae-gan", action="store_true", help="baselines only")
    parser.add_argument("--epochs", type=int, nargs=3, default=(60, 150, 100),
                        help="epochs of the three VAE-GAN stages (0 skips stage 3)")
    for flag, kind, default, help_text in NUMERIC_OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=help_text)
    parser.add_argument("--encoder-hidden", type=int, nargs="*", default=(),
                        help="hidden widths of the fMRI encoder (none: linear)")
    parser.add_argument("--ridge-init", action="store_true",
                        help="initialise the linear fMRI encoder with latent ridge (CV alpha)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    args = parser.parse_args()
    if args.ensemble < 1:
        parser.error("--ensemble must be >= 1")
    setting = SETTINGS[args.setting]
    if args.fast:
        voxels = (100, 60, 40)
    else:
        voxels = tuple(args.voxels) if args.voxels else setting["voxels"]
    snr = args.snr if args.snr is not None else setting["snr"]
    sim = simulate_image_fmri(n_voxels_per_area=voxels, snr=snr, seed=args.seed)
    results = {}
    for split in args.splits:
        results[split] = run_setting(sim, split, args)

    label = f"{sum(voxels)}vox/snr{snr:g}"
    header = (f"{'data':<14} {'split':<10} {'method':<14} {'PCC':>6} {'MSE':>7} {'SSIM':>6} "
              f"{'2-way':>6} {'6v9':>6}")
    print(header)
    for split, result in results.items():
        for method, row in result["scores"].items():
            print(f"{label:<14} {split:<10} {method:<14} {row['pcc']:6.3f} {row['mse']:7.4f} "
                  f"{row['ssim']:6.3f} {row['two_way']:6.3f} {row['accuracy_6v9']:6.3f}")
    print("\nridge alpha (median, share at grid maximum)")
    for split, result in results.items():
        timing = result["timing"]
        print(f"{split:<10} {timing['ridge_alpha_median']:.3g}  "
              f"{timing['ridge_alpha_at_max']:.3f}")
    if not args.no_vae_gan:
        print("\nVAE-GAN training samples/s per stage")
        for split, result in results.items():
            sps = result["timing"]["vae_gan_samples_per_s"]
            print(f"{split:<10} " + "  ".join(f"{k}={v:.0f}" for k, v in sps.items()))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    config = {key: (list(value) if isinstance(value, tuple) else value)
              for key, value in vars(args).items()}
    config.update({"n_voxels_per_area": list(voxels), "snr": snr,
                   "ridge_alphas": list(RIDGE_ALPHAS)})
    record = {
        "benchmark": "vaegan",
        "config": config,
        "versions": {"braincoder": getattr(braincoder, "__version__", "unknown"),
                     "numpy": np.__version__},
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    suffix = ("-fast" if args.fast else "") + (f"-{args.tag}" if args.tag else "")
    path = os.path.join(out_dir, f"vaegan-{stamp}-{args.setting}{suffix}.json")
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
