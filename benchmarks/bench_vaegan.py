"""Benchmark: image reconstruction from simulated V1–V3 fMRI (VAE-GAN vs ridge vs pRF inversion).

Every repetition ``r`` (``--seeds``) simulates a new experiment (pRFs and noise, seed ``r``)
and draws a new train/test split (seed ``r``); ``--split-repeats k`` draws ``k`` splits per
simulation (split seeds ``1000 j + r``). For every setting (SNR × split × number of training
trials) the three decoders are fitted on the training trials and scored on the test trials
(PCC, MSE, SSIM, 2-way identification, 6-vs-9 classification of the reconstructions). One
table with the mean and SD over repetitions is printed and written, with all per-repetition
scores, as JSON and TSV into benchmarks/results/.

Splits: ``reference`` is the 6/9 experiment's size (100 trials, 90 train / 10 test),
``large`` all 361 digits 6/9 (80/20). ``--n-train 50 90 300`` keeps the reference test
trials and varies the training trials (nested sets: 50 of the 90; the 90 plus 210 more).
``--setting hard`` simulates 50 voxels per area at SNR 0.3; ``--snr`` may list several.

Visual prior (``--prior digits``, default): as in the design the VAE-GAN follows, stage 1
learns from many images without fMRI: every digit bundled with scikit-learn (all ten
classes, 1797 images, upsampled like the simulator's stimuli) except the test stimuli of the
split, which are removed by exact-image hashing and checked again by the trainer
(``exclude_images``). One prior is trained per split and shared by every setting with the
same test trials (the SNR and training-size rows), since stage 1 sees no fMRI.
``--prior paired`` trains stage 1 on the training stimuli of the split only (add
``--augment-copies 4`` for shifted and rotated copies), as earlier versions of this
benchmark did.

VAE-GAN recipe (the defaults): latent dimension 16, filters (16, 32); stage 1 with batch 64,
learning rate 2e-3, KL weight 1, ``--epochs[0]`` = 100 epochs, keeping the weights of the
epoch with the best auto-encoding pixel correlation on a 10 % validation part of the
stage-1 images (the adversarial term makes it fluctuate, so no early stop); stage 2 a
linear fMRI encoder (input dropout 0.3) started from the closed-form ridge regression of
the latent targets on the voxels (alpha cross-validated per latent dimension;
``--no-ridge-init`` starts from random weights) and trained on latent distillation plus
3 x pixel MSE through the frozen generator; stage 3 fine-tunes the generator on the fMRI
latents with the pixel MSE alone, learning rate 2e-4; finally ``VAEGANTrainer.fit_blend``
averages the generator's images with a ridge decoder's, the weight (0, 0.1, ..., 1) chosen
by the pixel correlation on the validation trials of stages 2 and 3 with ridge fitted on
the other training trials (``--no-blend``: the generator alone; the table's
``vae_gan_unblended`` rows show the generator alone of the same runs). ``--ensemble k`` averages the
reconstructions of k fMRI encoder/generator pairs trained from the same prior with
different seeds. Early stopping in stages 2 and 3 uses a 10 % validation part of the
training trials, never the test trials.

``--prior-cache DIR`` saves every trained prior (``VAEGAN.save``) under a hash of the
split's test images, the seed and the stage-1 options, and reloads it when they match:
stage 1 sees no fMRI, so later runs (other SNRs, training sizes, stage-2/3 options) reuse
it.

``--merge a.json b.json`` prints and writes one table over the repetitions of several runs
(for instance a 5-seed run of one setting and a 2-seed run of a grid of settings).

Ridge picks its alpha per pixel from a wide grid (1e-1 to 1e9).

    python benchmarks/bench_vaegan.py --setting hard --seeds 0 1 2 3 4
    python benchmarks/bench_vaegan.py --setting hard --snr 0.3 1 --n-train 50 90 300 --seeds 0 1
    python benchmarks/bench_vaegan.py --merge results/vaegan-A.json results/vaegan-B.json
"""

import argparse
import csv
import datetime
import hashlib
import json
import os
import platform
import time

import numpy as np

import braincoder
from braincoder.datasets import (
    image_hashes,
    load_digit_images,
    simulate_image_fmri,
    split_image_fmri,
)
from braincoder.models import GaussianPRF2D
from braincoder.models.deep import VAEGAN, fMRIEncoder
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import classification_accuracy, mse, pixel_correlation
from braincoder.utils.metrics import n_way_identification, ssim

RIDGE_ALPHAS = tuple(10.0 ** np.arange(-1, 10))
SETTINGS = {
    "default": {"voxels": (400, 300, 200), "snr": (1.0,)},
    "hard": {"voxels": (50, 50, 50), "snr": (0.3,)},
}
METHODS = ("ridge", "prf_inversion", "vae_gan", "vae_gan_unblended")
METRICS = ("pcc", "ssim", "two_way", "mse", "accuracy_6v9")


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


def _parts(model):
    return (model.image_encoder, model.generator, model.discriminator)


#: Stage-1 options a cached prior depends on (besides the split's test images and seed).
PRIOR_KEYS = ("prior", "latent_dim", "kl_weight", "prior_batch_size", "prior_patience",
              "augment_copies", "augment_shift", "augment_rotation")


def _prior_path(test, args, seed):
    """Cache folder of the prior of one split: a hash of everything stage 1 depends on."""
    spec = {key: getattr(args, key) for key in PRIOR_KEYS}
    spec.update(epochs=args.epochs[0], seed=seed, test=sorted(image_hashes(test.images)))
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(args.prior_cache, f"prior-{digest}")


def train_prior(train, test, args, seed):
    """Stage 1; returns the weights of the three parts and a record.

    With ``--prior-cache`` the trained prior is saved there (``VAEGAN.save``: one
    ``.keras`` file per part) and loaded instead of retrained when the same split, seed
    and stage-1 options come again (stage 1 sees no fMRI, so SNRs and runs share it).
    """
    path = _prior_path(test, args, seed) if args.prior_cache else None
    if path and os.path.exists(os.path.join(path, "prior.json")):
        model = VAEGAN.load(path)
        with open(os.path.join(path, "prior.json")) as handle:
            record = json.load(handle)
        record["cached"] = True
        return [part.get_weights() for part in _parts(model)], record
    model = VAEGAN(latent_dim=args.latent_dim, filters=(16, 32), seed=seed)
    trainer = VAEGANTrainer(model, seed=seed)
    unpaired = None
    if args.prior == "digits":
        unpaired, _ = load_digit_images(exclude=test.images)
        test_keys = set(image_hashes(test.images))
        assert not test_keys & set(image_hashes(unpaired)), "a test stimulus is in the prior"
    trainer.fit_vae_gan(train.images, unpaired_images=unpaired, exclude_images=test.images,
                        epochs=args.epochs[0], batch_size=args.prior_batch_size,
                        learning_rate=2e-3, kl_weight=args.kl_weight,
                        augment_copies=args.augment_copies, augment_shift=args.augment_shift,
                        augment_rotation=args.augment_rotation, progressbar=False,
                        early_stopping_patience=args.prior_patience)
    history = trainer.history["vae_gan"]
    record = {"n_prior_images": trainer.n_prior_images, "epochs_run": len(history),
              "best_val_pcc": float(history["val_pcc"].max()),
              "samples_per_s": trainer.samples_per_second["vae_gan"]}
    if path:
        model.save(path)
        with open(os.path.join(path, "prior.json"), "w") as handle:
            json.dump(record, handle)
    return [part.get_weights() for part in _parts(model)], record


def run_vae_gan(train, test, args, prior_weights, seed):
    """Stages 2 and 3 from a trained prior; returns test reconstructions and timing."""
    model = VAEGAN(latent_dim=args.latent_dim, filters=(16, 32), seed=seed)
    for part, weights in zip(_parts(model), prior_weights, strict=True):
        part.set_weights(weights)
    encoder = fMRIEncoder(train.responses.shape[1], args.latent_dim,
                          hidden=tuple(args.encoder_hidden), dropout=args.encoder_dropout,
                          seed=seed)
    trainer = VAEGANTrainer(model, fmri_encoder=encoder, seed=seed)
    fit = dict(progressbar=False, batch_size=16)
    trainer.fit_fmri_encoder(train.responses, train.images, epochs=args.epochs[1],
                             learning_rate=args.encoder_lr, weight_decay=args.weight_decay,
                             image_weight=args.image_weight,
                             ridge_init_alphas=RIDGE_ALPHAS if args.ridge_init else None, **fit)
    if args.epochs[2] > 0:
        trainer.fit_generator(train.responses, train.images, epochs=args.epochs[2],
                              learning_rate=args.generator_lr,
                              feature_weight=args.generator_feature_weight,
                              adversarial_weight=args.generator_adversarial_weight, **fit)
    raw = model.reconstruct(test.responses)[0]
    images, weight = raw, None
    if args.blend:
        trainer.fit_blend(train.responses, train.images, alphas=RIDGE_ALPHAS)
        images, weight = model.reconstruct(test.responses)[0], model.blend_weight
    return images, raw, {"samples_per_s": dict(trainer.samples_per_second),
                         "epochs_run": {k: len(v) for k, v in trainer.history.items()},
                         "blend_weight": weight}


def run_setting(sim, train, test, args, prior_weights, seed):
    rows, timing = {}, {}
    start = time.perf_counter()
    ridge = RidgeImageDecoder(alphas=RIDGE_ALPHAS).fit(train.responses, train.images)
    timing["ridge_fit_s"] = time.perf_counter() - start
    timing["ridge_alpha_at_max"] = float(np.mean(ridge.solution.alphas >= RIDGE_ALPHAS[-1]))
    rows["ridge"] = scores(train, test, ridge.reconstruct(test.responses)[0])
    prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
    prf.fit(train.responses, train.images)
    rows["prf_inversion"] = scores(train, test, prf.reconstruct(test.responses)[0])
    if prior_weights is not None:
        start = time.perf_counter()
        members = [run_vae_gan(train, test, args, prior_weights, seed + 1000 * k)
                   for k in range(args.ensemble)]
        timing["vae_gan_stage23_s"] = time.perf_counter() - start
        rows["vae_gan"] = scores(train, test, np.mean([m[0] for m in members], axis=0))
        if args.blend:
            rows["vae_gan_unblended"] = scores(train, test,
                                               np.mean([m[1] for m in members], axis=0))
        timing["vae_gan"] = members[0][2]
    return rows, timing


def summarise(records):
    """Mean and SD over repetitions of every (setting, method, metric)."""
    groups = {}
    for record in records:
        key = (record["snr"], record["split"], record["n_train"])
        for method, row in record["scores"].items():
            groups.setdefault(key + (method,), []).append(row)
    table = []
    for (snr, split, n_train, method), rows in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1], item[0][2],
                                          METHODS.index(item[0][3]))
    ):
        entry = {"snr": snr, "split": split, "n_train": n_train, "method": method,
                 "n_reps": len(rows)}
        for metric in METRICS:
            values = np.array([row[metric] for row in rows], dtype=float)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def print_table(table, voxels):
    print(f"{sum(voxels)} voxels; mean ± SD over repetitions (seeds × splits)")
    print(f"{'SNR':>4} {'split':<9} {'train':>5} {'method':<17} {'n':>2} "
          f"{'PCC':>13} {'SSIM':>13} {'2-way':>13} {'6v9':>13}")
    for row in table:
        cells = " ".join(f"{row[f'{m}_mean']:6.3f}±{row[f'{m}_sd']:.3f}"
                         for m in ("pcc", "ssim", "two_way", "accuracy_6v9"))
        print(f"{row['snr']:>4g} {row['split']:<9} {row['n_train']:>5} {row['method']:<17} "
              f"{row['n_reps']:>2} {cells}")


#: Numeric command-line options: flag, type, default, help.
NUMERIC_OPTIONS = (
    ("--latent-dim", int, 16, "VAE latent dimensions"),
    ("--kl-weight", float, 1.0, "weight of the stage-1 KL term"),
    ("--prior-batch-size", int, 64, "stage-1 batch size"),
    ("--prior-patience", int, 1000,
     "stage-1 early-stopping patience (default: all epochs, best restored)"),
    ("--encoder-dropout", float, 0.3, "dropout of the fMRI encoder"),
    ("--encoder-lr", float, 1e-3, "stage-2 learning rate"),
    ("--weight-decay", float, 1e-3, "stage-2 weight decay"),
    ("--generator-lr", float, 2e-4, "stage-3 learning rate"),
    ("--generator-feature-weight", float, 0.0,
     "stage-3 feature-wise loss weight (0: pixel MSE only)"),
    ("--generator-adversarial-weight", float, 0.0, "stage-3 GAN loss weight"),
    ("--ensemble", int, 1, "fMRI encoder/generator pairs whose reconstructions are averaged"),
    ("--image-weight", float, 3.0, "stage-2 pixel MSE weight through the frozen generator"),
    ("--augment-copies", int, 0, "stage-1 shifted/rotated copies per image (0: none)"),
    ("--augment-shift", int, 2, "stage-1 shift in pixels"),
    ("--augment-rotation", float, 10.0, "stage-1 rotation in degrees"),
    ("--split-repeats", int, 1, "train/test splits per simulation"),
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="few epochs, one seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=(0, 1, 2, 3, 4))
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="hard")
    parser.add_argument("--voxels", type=int, nargs=3, default=None,
                        help="voxels in V1 V2 V3 (overrides --setting)")
    parser.add_argument("--snr", type=float, nargs="+", default=None,
                        help="one or more SNRs (overrides --setting)")
    parser.add_argument("--splits", nargs="+", choices=("reference", "large"),
                        default=("reference",))
    parser.add_argument("--n-train", type=int, nargs="+", default=None,
                        help="training trials (reference split: nested sets, same test trials)")
    parser.add_argument("--prior", choices=("digits", "paired"), default="digits",
                        help="stage-1 images: all bundled digits except the test stimuli, "
                             "or the training stimuli only")
    parser.add_argument("--no-vae-gan", action="store_true", help="baselines only")
    parser.add_argument("--epochs", type=int, nargs=3, default=(100, 150, 100),
                        help="epochs of the three VAE-GAN stages (0 skips stage 3)")
    for flag, kind, default, help_text in NUMERIC_OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=help_text)
    parser.add_argument("--encoder-hidden", type=int, nargs="*", default=(),
                        help="hidden widths of the fMRI encoder (none: linear)")
    parser.add_argument("--no-ridge-init", dest="ridge_init", action="store_false",
                        help="start the linear fMRI encoder from random weights instead of "
                             "the cross-validated latent ridge solution")
    parser.add_argument("--prior-cache", default=None, metavar="DIR",
                        help="save trained priors here and reuse them when the split, seed "
                             "and stage-1 options match")
    parser.add_argument("--no-blend", dest="blend", action="store_false",
                        help="report the generator's images alone instead of their blend "
                             "with ridge (weight chosen on held-out training trials)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="print and write one table over the repetitions of earlier "
                             "result files (no training)")
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    args = parser.parse_args()
    if args.ensemble < 1 or args.split_repeats < 1:
        parser.error("--ensemble and --split-repeats must be >= 1")
    if args.fast:
        args.epochs, args.seeds = (5, 10, 5), args.seeds[:1]
    return args


def merge(paths, tag):
    """One summary table over the repetitions of several result files."""
    records, configs = [], []
    for path in paths:
        with open(path) as handle:
            record = json.load(handle)
        records += record["repetitions"]
        configs.append(record["config"])
    voxels = {tuple(config["n_voxels_per_area"]) for config in configs}
    if len(voxels) != 1:
        raise SystemExit(f"the files simulate different voxel counts: {sorted(voxels)}")
    table = summarise(records)
    print_table(table, voxels.pop())
    write(table, {"merged": list(paths), "configs": configs}, records, [], "merged", tag)


def write(table, config, records, priors, setting, tag):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    record = {
        "benchmark": "vaegan",
        "config": config,
        "versions": {"braincoder": getattr(braincoder, "__version__", "unknown"),
                     "numpy": np.__version__},
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "summary": table,
        "priors": priors,
        "repetitions": records,
    }
    base = os.path.join(out_dir, f"vaegan-{stamp}-{setting}{tag}")
    with open(base + ".json", "w") as handle:
        json.dump(record, handle, indent=2)
    with open(base + ".tsv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(table)
    print(f"\nwritten {base}.json and {base}.tsv")


def main():
    args = parse_args()
    suffix = ("-fast" if args.fast else "") + (f"-{args.tag}" if args.tag else "")
    if args.merge:
        merge(args.merge, suffix)
        return
    setting = SETTINGS[args.setting]
    voxels = tuple(args.voxels) if args.voxels else setting["voxels"]
    snrs = tuple(args.snr) if args.snr else setting["snr"]
    records, priors = [], []
    for seed in args.seeds:
        sims = {snr: simulate_image_fmri(n_voxels_per_area=voxels, snr=snr, seed=seed)
                for snr in snrs}
        for repeat in range(args.split_repeats):
            split_seed = seed + 1000 * repeat
            for split in args.splits:
                n_trains = args.n_train if args.n_train and split == "reference" else (None,)
                # The test trials depend on the split only: one prior serves every row.
                first = next(iter(sims.values()))
                _, test = split_image_fmri(first, split, seed=split_seed)
                prior_weights = None
                if not args.no_vae_gan:
                    train, _ = split_image_fmri(first, split, seed=split_seed)
                    prior_weights, prior = train_prior(train, test, args, split_seed)
                    prior.update(seed=seed, split=split, split_seed=split_seed)
                    priors.append(prior)
                    print(f"prior seed {seed} split {split}/{split_seed}: "
                          f"{prior['n_prior_images']} images, {prior['epochs_run']} epochs, "
                          f"val PCC {prior['best_val_pcc']:.3f}", flush=True)
                for snr, sim in sims.items():
                    for n_train in n_trains:
                        train, test = split_image_fmri(sim, split, seed=split_seed,
                                                       n_train=n_train)
                        rows, timing = run_setting(sim, train, test, args, prior_weights,
                                                   split_seed)
                        records.append({"seed": seed, "split_seed": split_seed, "snr": snr,
                                        "split": split, "n_train": len(train.images),
                                        "n_test": len(test.images), "scores": rows,
                                        "timing": timing})
                        print(f"seed {seed} split {split}/{split_seed} snr {snr:g} "
                              f"train {len(train.images)}: " + "  ".join(
                                  f"{m} {r['pcc']:.3f}/{r['ssim']:.3f}/{r['two_way']:.3f}"
                                  for m, r in rows.items()), flush=True)

    table = summarise(records)
    print()
    print_table(table, voxels)

    config = {key: (list(value) if isinstance(value, tuple) else value)
              for key, value in vars(args).items()}
    config.update({"n_voxels_per_area": list(voxels), "snr": list(snrs),
                   "ridge_alphas": list(RIDGE_ALPHAS)})
    write(table, config, records, priors, args.setting, suffix)


if __name__ == "__main__":
    main()
