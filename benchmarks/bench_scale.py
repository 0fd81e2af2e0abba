"""Scaling of whole-brain fits: in-process against 1 and 2 single-thread Dask workers.

Simulates GaussianPRF2DWithHRF voxels (``simulate_prf_2d``: 8 bar sweeps × 30 TRs at TR
1.5 s, 30×30 pixels, noise variance equal to the signal variance), searches a grid of
15 × 15 positions × 8 sizes and refines baseline and amplitude in-process, then times the
Levenberg–Marquardt fit (``ParameterFitter.fit``) of the same voxel chunks

* in this process (TensorFlow's default threads: every core),
* on a ``LocalCluster`` of 1 and of 2 worker processes with one thread each,

after a warm-up fit that imports TensorFlow and compiles the solver in every worker
(with equal TensorFlow threads the results are bit-identical; this process uses every
core, so large matrix products may round differently and the largest difference is
reported). The
grid search is timed the same way. Reported: voxels per second, the fitting seconds of
each chunk measured inside the worker, the per-chunk overhead (wall time of the 1-worker
run minus the workers' fitting time, per chunk: serialisation, transfers, scheduling) as a
fraction of a chunk's fitting time, and the projected wall time of a 200k-voxel fit on
2, 8 and 32 workers from the measured per-chunk cost (chunks of the default size spread
over the workers in rounds; start-up not included). Writes one JSON into
``benchmarks/results/``.

Usage: ``python benchmarks/bench_scale.py [--voxels 20000] [--fast] [--seed 0]``.
"""

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from braincoder.datasets import simulate_prf_2d  # noqa: E402
from braincoder.optimize import ParameterFitter  # noqa: E402
from braincoder.optimize._plan import DEFAULT_CHUNK_VOXELS  # noqa: E402

XY = np.linspace(-4.5, 4.5, 15)
SD = np.geomspace(0.3, 4.0, 8)


def timed_fit(experiment, init, client, chunk_size):
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                             client=client)
    start = time.perf_counter()
    grid = fitter.fit_grid(x=XY, y=XY, sd=SD)
    grid_seconds = time.perf_counter() - start
    start = time.perf_counter()
    estimates = fitter.fit(init_pars=init, progressbar=False, chunk_size=chunk_size)
    seconds = time.perf_counter() - start
    return fitter, estimates, grid, {"grid_seconds": grid_seconds, "fit_seconds": seconds}


def run_mode(name, experiment, warmup, init, chunk_size, n_workers):
    client = cluster = None
    if n_workers:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
    try:
        warm_init = init.iloc[: len(warmup.data.columns)]
        timed_fit(warmup, warm_init, client, max(len(warmup.data.columns) // 8, 1))
        fitter, estimates, grid, row = timed_fit(experiment, init, client, chunk_size)
    finally:
        if client is not None:
            cluster.close()
            client.close()
    n_voxels = experiment.data.shape[1]
    chunk_seconds = np.asarray(fitter._chunk_seconds)
    row.update(mode=name, n_workers=n_workers, n_chunks=len(chunk_seconds),
               voxels_per_second=n_voxels / row["fit_seconds"],
               grid_voxels_per_second=n_voxels / row["grid_seconds"],
               chunk_fit_seconds_mean=float(chunk_seconds.mean()),
               chunk_fit_seconds_sum=float(chunk_seconds.sum()),
               chunk_phase_seconds=float(fitter._run_seconds),
               median_r2=float(fitter.r2.median()),
               r_x=float(np.corrcoef(estimates["x"], experiment.parameters["x"])[0, 1]))
    return row, estimates, grid


def project(per_chunk, chunk_size, n_voxels=200_000, workers=(2, 8, 32)):
    n_chunks = math.ceil(n_voxels / chunk_size)
    return {str(w): math.ceil(n_chunks / w) * per_chunk for w in workers}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_VOXELS)
    parser.add_argument("--fast", action="store_true", help="smoke mode: 2000 voxels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_voxels = 2000 if args.fast else args.voxels
    chunk_size = min(args.chunk_size, max(n_voxels // 4, 1)) if args.fast else args.chunk_size
    simulation = dict(tr=1.5, grid_size=30, n_sweeps=8, frames_per_sweep=30, noise_ratio=1.0)
    experiment = simulate_prf_2d(n_voxels=n_voxels, seed=args.seed, **simulation)
    warmup = simulate_prf_2d(n_voxels=400, seed=args.seed + 1, **simulation)
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    init = fitter.refine_baseline_and_amplitude(fitter.fit_grid(x=XY, y=XY, sd=SD))

    rows, reference = [], None
    for name, n_workers in (("in-process", 0), ("1 worker", 1), ("2 workers", 2)):
        row, estimates, grid = run_mode(name, experiment, warmup, init, chunk_size, n_workers)
        if reference is None:
            reference = (estimates, grid)
        # Workers run TensorFlow on one thread, this process on every core: large matrix
        # products may then round differently (results are identical at equal threads).
        row["max_abs_difference_fit"] = float(np.abs(estimates.to_numpy()
                                                     - reference[0].to_numpy()).max())
        row["max_abs_difference_grid"] = float(np.abs(grid.to_numpy()
                                                      - reference[1].to_numpy()).max())
        row["identical_to_in_process"] = (row["max_abs_difference_fit"] == 0
                                          and row["max_abs_difference_grid"] == 0)
        rows.append(row)
        print(f"{name:<11} fit {row['fit_seconds']:7.2f} s {row['voxels_per_second']:8.0f} "
              f"voxels/s | grid {row['grid_seconds']:6.2f} s "
              f"{row['grid_voxels_per_second']:8.0f} voxels/s | {row['n_chunks']} chunks, "
              f"{row['chunk_fit_seconds_mean']:.3f} s fitting each | median R² "
              f"{row['median_r2']:.3f} | max |Δ| vs in-process: fit "
              f"{row['max_abs_difference_fit']:.2g}, grid {row['max_abs_difference_grid']:.2g}",
              flush=True)

    one = rows[1]
    # Time of the chunk phase (first task sent to last result stored) not spent fitting
    # inside the worker; the driver's fixed costs (checks, plan, predictions and R² of
    # the result) are reported apart, they do not grow with the number of chunks.
    overhead = (one["chunk_phase_seconds"] - one["chunk_fit_seconds_sum"]) / one["n_chunks"]
    per_chunk = one["chunk_fit_seconds_mean"] + overhead
    fixed = {row["mode"]: row["fit_seconds"] - row["chunk_phase_seconds"] for row in rows}
    summary = {
        "driver_fixed_seconds": fixed,
        "overhead_seconds_per_chunk": overhead,
        "overhead_fraction_of_chunk_fit": overhead / one["chunk_fit_seconds_mean"],
        "two_workers_over_in_process": rows[2]["voxels_per_second"] / rows[0]["voxels_per_second"],
        "projected_200k_seconds": project(per_chunk, chunk_size),
    }
    print(f"per-chunk overhead {overhead * 1000:.1f} ms = "
          f"{100 * summary['overhead_fraction_of_chunk_fit']:.1f}% of a chunk's fitting time; "
          f"2 workers / in-process throughput {summary['two_workers_over_in_process']:.2f}")
    print("driver's fixed seconds per fit (checks, plan, predictions, R²): "
          + ", ".join(f"{mode} {seconds:.2f}" for mode, seconds in fixed.items()))
    print("projected 200k-voxel LM fit (chunks of "
          f"{chunk_size}): " + ", ".join(f"{w} workers {s:.0f} s"
                                         for w, s in summary["projected_200k_seconds"].items()))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {"benchmark": "bench_scale", "time": stamp, "python": platform.python_version(),
            "tensorflow": tf.__version__, "numpy": np.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "seed": args.seed, "n_voxels": n_voxels,
            "chunk_size": chunk_size, "rows": rows, "summary": summary}
    (out / f"bench_scale-{stamp}.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
