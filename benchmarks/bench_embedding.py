"""Benchmark: decoding fMRI into an embedding space, ridge vs MSE- vs contrastive-trained.

Simulates voxel responses to stimuli with clustered embeddings
(:func:`braincoder.datasets.simulate_embedding_fmri`), trains every decoder on the training
stimuli and scores it on held-out stimuli (never seen in training): top-1 / top-5 retrieval
among the test stimuli, mean cosine with the true embedding, 2-way identification, training
throughput. Results are averaged over seeds and written to a timestamped JSON file.

Usage::

    python benchmarks/bench_embedding.py            # full run (a few minutes on 2 CPUs)
    python benchmarks/bench_embedding.py --fast     # smoke run (seconds)
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from braincoder.datasets import simulate_embedding_fmri
from braincoder.models.deep import EmbeddingDecoder, RidgeEmbeddingDecoder
from braincoder.optimize import EmbeddingFitter
from braincoder.utils import embedding_similarity, retrieval_accuracy

DECODERS = {
    # name: (loss, hidden, dropout); None = closed-form ridge
    "ridge": None,
    "mse_linear": ("mse", (), 0.3),
    "contrastive_linear": ("contrastive", (), 0.3),
    "mse_mlp": ("mse", (512,), 0.3),
    "contrastive_mlp": ("contrastive", (512,), 0.3),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny smoke run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nonlinearity", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--n-stimuli", type=int, default=200)
    parser.add_argument("--embedding-dim", type=int, default=512)
    parser.add_argument("--n-voxels", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.fast:
        args.seeds = args.seeds[:1]
        args.nonlinearity = [1.0]
        args.n_stimuli, args.embedding_dim, args.n_voxels = 60, 32, 40
        args.epochs, args.patience = 5, 5
    return args


def versions():
    import keras
    import pandas
    import tensorflow

    import braincoder

    return {
        "python": sys.version.split()[0],
        "braincoder": braincoder.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
    }


def hardware():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": "CPU",
    }


def score(pred, sim):
    top = retrieval_accuracy(pred, sim.test_embeddings, k=(1, 5))
    similarity = embedding_similarity(pred, sim.test_embeddings, n_way=2)
    return {
        "top1": top[1],
        "top5": top[5],
        "mean_cosine": similarity["mean_cosine"],
        "two_way": similarity["n_way_accuracy"],
    }


def run_decoder(name, sim, args, seed):
    spec = DECODERS[name]
    n_train = len(sim.train_data)
    if spec is None:
        start = time.perf_counter()
        decoder = RidgeEmbeddingDecoder(cv=5, seed=seed).fit(sim.train_data, sim.train_embeddings)
        seconds = time.perf_counter() - start
        row = {"fit_seconds": seconds, "epochs": None, "samples_per_second": n_train / seconds}
    else:
        loss, hidden, dropout = spec
        decoder = EmbeddingDecoder(
            sim.train_data.shape[1], sim.train_embeddings.shape[1], hidden=hidden,
            dropout=dropout, seed=seed,
        )
        fitter = EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings)
        start = time.perf_counter()
        history = fitter.fit(
            loss=loss, epochs=args.epochs, early_stopping_patience=args.patience,
            progressbar=False, seed=seed,
        )
        seconds = time.perf_counter() - start
        row = {
            "fit_seconds": seconds,
            "epochs": len(history),
            "samples_per_second": fitter.samples_per_second,
        }
    row.update(score(decoder.predict(sim.test_data), sim))
    return row


def warm_up():
    sim = simulate_embedding_fmri(n_stimuli=20, embedding_dim=8, n_voxels=10, seed=0)
    decoder = EmbeddingDecoder(10, 8, seed=0)
    EmbeddingFitter(decoder, sim.train_data, sim.train_embeddings).fit(
        epochs=1, progressbar=False
    )


def summarise(rows):
    summary = {}
    for key in sorted({(row["nonlinearity"], row["decoder"]) for row in rows}):
        selected = [row for row in rows if (row["nonlinearity"], row["decoder"]) == key]
        entry = {}
        for metric in ("top1", "top5", "mean_cosine", "two_way", "samples_per_second"):
            values = np.array([row[metric] for row in selected], dtype=float)
            entry[metric] = float(values.mean())
            entry[metric + "_sd"] = float(values.std())
        summary[f"nonlinearity={key[0]:g}/{key[1]}"] = entry
    return summary


def print_table(summary, n_seeds, n_test):
    print(f"held-out stimuli: {n_test} (chance top-1 {1 / n_test:.3f}, top-5 {5 / n_test:.3f}); "
          f"mean ± sd over {n_seeds} seed(s)")
    header = f"{'setting':<42} {'top-1':>13} {'top-5':>13} {'mean cos':>13} {'2-way':>7} " \
             f"{'samples/s':>10}"
    print(header)
    print("-" * len(header))
    for name, entry in summary.items():
        print(
            f"{name:<42} {entry['top1']:.3f} ± {entry['top1_sd']:.3f} "
            f"{entry['top5']:.3f} ± {entry['top5_sd']:.3f} "
            f"{entry['mean_cosine']:.3f} ± {entry['mean_cosine_sd']:.3f} "
            f"{entry['two_way']:7.3f} {entry['samples_per_second']:10.0f}"
        )


def main(argv=None):
    args = parse_args(argv)
    warm_up()
    rows = []
    n_test = None
    for nonlinearity in args.nonlinearity:
        for seed in args.seeds:
            sim = simulate_embedding_fmri(
                n_stimuli=args.n_stimuli, embedding_dim=args.embedding_dim,
                n_voxels=args.n_voxels, nonlinearity=nonlinearity, seed=seed,
            )
            n_test = len(sim.test_embeddings)
            for name in DECODERS:
                row = run_decoder(name, sim, args, seed)
                row.update(decoder=name, nonlinearity=nonlinearity, seed=seed)
                rows.append(row)
                print(
                    f"nonlinearity={nonlinearity:g} seed={seed} {name:<20} "
                    f"top1={row['top1']:.3f} top5={row['top5']:.3f} "
                    f"cos={row['mean_cosine']:.3f} epochs={row['epochs']} "
                    f"{row['fit_seconds']:.1f}s",
                    flush=True,
                )
    summary = summarise(rows)
    print()
    print_table(summary, len(args.seeds), n_test)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"bench_embedding-{stamp}{'-fast' if args.fast else ''}.json")
    config = {key: value for key, value in vars(args).items() if key != "out"}
    config["decoders"] = {
        name: None if spec is None else {"loss": spec[0], "hidden": list(spec[1]),
                                         "dropout": spec[2]}
        for name, spec in DECODERS.items()
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(
            {"benchmark": "embedding", "config": config, "versions": versions(),
             "hardware": hardware(), "runs": rows, "summary": summary},
            handle, indent=2,
        )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
