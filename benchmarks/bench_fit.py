"""Benchmark of the 2D pRF fitting pipeline (grid, refine, LM; Adam for comparison).

Simulates GaussianPRF2DWithHRF voxels (bar sweeps: 8 sweeps × 30 TRs at TR 1.5 s, 30×30
pixel grid, noise variance equal to the signal variance; x, y ~ U(−4.5, 4.5),
sd ~ U(0.5, 3), amplitude ~ U(1, 3)), fits them with a grid of 15 × 15 positions × 8
log-spaced sizes (0.3–4), refines baseline and amplitude, then runs batched
Levenberg–Marquardt (and, unless ``--no-adam``, Adam to convergence for comparison).
Prints voxels/second per phase, median R² against the noise ceiling and parameter
recovery, and the grid phase's GFLOP/s against a plain-numpy matrix product of the same
size and a plain-numpy grid search over the same grid. Writes one JSON per run into
``benchmarks/results/``.

Usage: ``python benchmarks/bench_fit.py [--sizes 1000 10000] [--fast] [--no-adam]``.
"""

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from braincoder.datasets import simulate_prf_2d  # noqa: E402
from braincoder.hrf import causal_convolution_matrix  # noqa: E402
from braincoder.optimize import ParameterFitter  # noqa: E402

XY = np.linspace(-4.5, 4.5, 15)
SD = np.geomspace(0.3, 4.0, 8)


def numpy_grid_search(experiment):
    """Plain-numpy grid search (free baseline and positive amplitude), the reference."""
    grid = experiment.grid_coordinates.to_numpy()
    kernel = experiment.model.hrf_model.get_hrf()
    start = time.perf_counter()  # the whole search: predictions of the grid, then scoring
    stimulus = causal_convolution_matrix(kernel, len(experiment.paradigm)).astype(np.float32)
    stimulus = stimulus @ experiment.paradigm.to_numpy(np.float32)
    points = np.array([(x, y, s) for x in XY for y in XY for s in SD], dtype=np.float32)
    distance2 = (grid[:, :1] - points[None, :, 0]) ** 2 + (grid[:, 1:] - points[None, :, 1]) ** 2
    rf = np.exp(-distance2 / (2 * points[None, :, 2] ** 2)).astype(np.float32)
    predictions = stimulus @ rf
    predictions -= predictions.mean(0)
    y = experiment.data.to_numpy(np.float32)
    y = y - y.mean(0)
    cross = y.T @ predictions
    norm2 = (predictions**2).sum(0)
    score = np.where(cross > 0, cross**2 / norm2, 0.0)
    best = score.argmax(1)
    return time.perf_counter() - start, points[best]


def matmul_ceiling(n_timepoints, n_voxels, n_grid, repeats=3):
    """GFLOP/s of a plain numpy float32 matrix product (voxels × time) @ (time × grid)."""
    a = np.random.default_rng(0).standard_normal((n_voxels, n_timepoints)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n_timepoints, n_grid)).astype(np.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    elapsed = (time.perf_counter() - start) / repeats
    return 2 * n_timepoints * n_voxels * n_grid / elapsed / 1e9


def recovery(estimates, truth):
    return {label: float(np.corrcoef(estimates[label], truth[label])[0, 1])
            for label in ("x", "y", "sd")}


def run(n_voxels, adam, seed, adam_steps):
    experiment = simulate_prf_2d(n_voxels=n_voxels, tr=1.5, grid_size=30, n_sweeps=8,
                                 frames_per_sweep=30, noise_ratio=1.0, seed=seed)
    truth = experiment.parameters
    rows = {}
    timings = {}
    for attempt in ("cold", "warm"):
        fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
        start = time.perf_counter()
        grid = fitter.fit_grid(x=XY, y=XY, sd=SD, baseline=[0.0], amplitude=[1.0])
        t_grid = time.perf_counter() - start
        start = time.perf_counter()
        refined = fitter.refine_baseline_and_amplitude(grid)
        t_refine = time.perf_counter() - start
        start = time.perf_counter()
        estimates = fitter.fit(init_pars=refined, method="lm", progressbar=False)
        t_lm = time.perf_counter() - start
        timings[attempt] = {"grid": t_grid, "refine": t_refine, "lm": t_lm,
                            "total": t_grid + t_refine + t_lm}
    # Peak memory of simulation + our pipeline, before the numpy baselines allocate theirs.
    pipeline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    n_grid = len(XY) ** 2 * len(SD)
    n_timepoints = len(experiment.paradigm)
    flops = 2 * n_timepoints * n_voxels * n_grid
    rows["grid"] = {"seconds": t_grid, "r2": float(fitter.get_rsq(grid).median()),
                    **recovery(grid, truth), "gflops": flops / t_grid / 1e9}
    rows["refine"] = {"seconds": t_refine, "r2": float(fitter.get_rsq(refined).median()),
                      **recovery(refined, truth)}
    rows["lm"] = {"seconds": t_lm, "r2": float(fitter.r2.median()), **recovery(estimates, truth),
                  "iterations": fitter.n_iterations, "converged": fitter.n_converged}
    numpy_seconds, numpy_best = numpy_grid_search(experiment)
    rows["numpy grid"] = {"seconds": numpy_seconds, "gflops": flops / numpy_seconds / 1e9,
                          "x": float(np.corrcoef(numpy_best[:, 0], truth["x"])[0, 1]),
                          "y": float(np.corrcoef(numpy_best[:, 1], truth["y"])[0, 1]),
                          "sd": float(np.corrcoef(numpy_best[:, 2], truth["sd"])[0, 1])}
    if adam:
        adam_fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
        start = time.perf_counter()
        adam_estimates = adam_fitter.fit(init_pars=refined, method="adam",
                                         max_n_iterations=adam_steps, progressbar=False)
        rows["adam"] = {"seconds": time.perf_counter() - start,
                        "r2": float(adam_fitter.r2.median()),
                        **recovery(adam_estimates, truth), "iterations": adam_fitter.n_iterations}
    ceiling = matmul_ceiling(n_timepoints, n_voxels, n_grid)
    return {"n_voxels": n_voxels, "noise_ceiling": experiment.noise_ceiling, "phases": rows,
            "timings": timings, "numpy_matmul_gflops": ceiling,
            "pipeline_rss_gib": pipeline_rss,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def print_table(result):
    n = result["n_voxels"]
    print(f"\n{n} voxels (noise ceiling R² {result['noise_ceiling']:.3f}; "
          f"peak RSS of simulation + pipeline {result['pipeline_rss_gib']:.2f} GiB, "
          f"with the numpy baselines {result['peak_rss_gib']:.2f} GiB)")
    print(f"{'phase':<11}{'seconds':>9}{'voxels/s':>11}{'median R²':>11}{'r(x)':>7}{'r(y)':>7}"
          f"{'r(sd)':>7}  notes")
    for phase, row in result["phases"].items():
        r2 = f"{row['r2']:.4f}" if "r2" in row else "-"
        notes = []
        if "gflops" in row:
            notes.append(f"{row['gflops']:.1f} GFLOP/s")
        if "iterations" in row:
            notes.append(f"{row['iterations']} iterations")
        if "converged" in row:
            notes.append(f"{row['converged']} converged")
        print(f"{phase:<11}{row['seconds']:>9.3f}{n / row['seconds']:>11.0f}{r2:>11}"
              f"{row['x']:>7.3f}{row['y']:>7.3f}{row['sd']:>7.3f}  {', '.join(notes)}")
    cold, warm = result["timings"]["cold"], result["timings"]["warm"]
    print(f"grid+refine+LM: first call (with tracing) {cold['total']:.2f} s, "
          f"after warm-up {warm['total']:.2f} s")
    print(f"plain numpy float32 matmul of the grid's size: {result['numpy_matmul_gflops']:.1f} "
          "GFLOP/s (ceiling)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--fast", action="store_true", help="smoke mode: 300 voxels, short Adam")
    parser.add_argument("--no-adam", action="store_true")
    parser.add_argument("--adam-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [300] if args.fast else args.sizes
    adam_steps = 100 if args.fast else args.adam_steps
    results = []
    for n_voxels in sizes:
        result = run(n_voxels, not args.no_adam, args.seed, adam_steps)
        print_table(result)
        results.append(result)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {"benchmark": "bench_fit", "time": stamp, "python": platform.python_version(),
            "tensorflow": tf.__version__, "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "seed": args.seed, "results": results}
    (out / f"bench_fit-{stamp}.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
