"""Benchmark of pRF fits on real V1 data (Szinte et al. 2024, shipped with braincoder).

Two fits of ``GaussianPRF2DWithHRF`` to the 2,365 V1 voxels (150 volumes, 80 × 45-pixel bar
stimulus):

1. shared SPM HRF: grid of 17 × 10 positions × 10 log-spaced sizes (0.2–8°), refinement of
   baseline and amplitude, then batched Levenberg–Marquardt with the default settings;
2. per-voxel HRF (``SPMHRFModel(unique_hrfs=True)``): LM from the shared fit with every
   voxel starting at delay 6 s, dispersion 1, its delay and dispersion free.

Each pipeline runs twice (the first call traces the compiled functions); the second run's
seconds are reported per phase, with iterations, voxels that reached the iteration cap,
the median R² over the voxels with a published R² (and over all non-constant voxels), the
median distance of the fitted centres to the published ones and the peak memory. Writes
one JSON per run into ``benchmarks/results/``.

Usage: ``python benchmarks/bench_real.py [--fast] [--seed 0] [--voxels N]``; ``--fast``
fits the 300 best voxels on a stimulus shrunk 2.5×.
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

from braincoder.hrf import SPMHRFModel  # noqa: E402
from braincoder.models import GaussianPRF2DWithHRF  # noqa: E402
from braincoder.optimize import ParameterFitter  # noqa: E402
from braincoder.utils.data import load_szinte2024  # noqa: E402

X = np.linspace(-8.0, 8.0, 17)
Y = np.linspace(-5.0, 5.0, 10)
SD = np.geomspace(0.2, 8.0, 10)


def summary(fitter, data, published):
    """Median R² (published voxels / all), centre distance to the published fit."""
    r2 = fitter.r2
    has_published = data["r2"].notna().to_numpy()
    pars = fitter.estimated_parameters
    distance = np.hypot(pars["x"] - published["x"], pars["y"] - published["y"])
    return {
        "median_r2_published_voxels": float(np.nanmedian(r2[has_published])),
        "median_r2_all": float(np.nanmedian(r2)),
        "published_median_r2": float(data["r2"].median()),
        "median_centre_distance_deg": float(np.nanmedian(distance[has_published])),
        "iterations": int(fitter.n_iterations),
        "voxels_at_cap": int(fitter.n_at_cap),
        "converged": int(fitter.n_converged),
        "stop_reason": fitter.stop_reason,
        "voxel_stop_reasons": {str(k): int(v) for k, v in
                               fitter.voxel_stop_reasons.value_counts().items()},
    }


def shared_fit(data):
    model = GaussianPRF2DWithHRF(grid_coordinates=data["grid_coordinates"],
                                 hrf_model=SPMHRFModel(tr=data["tr"]))
    fitter = ParameterFitter(model, data["v1_timeseries"], data["paradigm"])
    start = time.perf_counter()
    grid = fitter.fit_grid(x=X, y=Y, sd=SD, baseline=[0.0], amplitude=[1.0])
    t_grid = time.perf_counter() - start
    start = time.perf_counter()
    refined = fitter.refine_baseline_and_amplitude(grid)
    t_refine = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    fitter.fit(init_pars=refined, progressbar=False)
    t_fit = time.perf_counter() - start
    seconds = {"grid": t_grid, "refine": t_refine, "fit": t_fit,
               "total": t_grid + t_refine + t_fit, "fit_cpu": time.process_time() - cpu}
    return fitter, seconds


def per_voxel_fit(data, start_pars):
    model = GaussianPRF2DWithHRF(grid_coordinates=data["grid_coordinates"],
                                 hrf_model=SPMHRFModel(tr=data["tr"], unique_hrfs=True))
    fitter = ParameterFitter(model, data["v1_timeseries"], data["paradigm"])
    init = start_pars.copy()
    init["hrf_delay"], init["hrf_dispersion"] = 6.0, 1.0
    start, cpu = time.perf_counter(), time.process_time()
    fitter.fit(init_pars=init, progressbar=False)
    return fitter, {"fit": time.perf_counter() - start, "fit_cpu": time.process_time() - cpu}


def run(resize_factor, best_voxels):
    data = load_szinte2024(resize_factor=resize_factor, best_voxels=best_voxels)
    published = data["prf_pars"]
    rows = {}
    for attempt in ("cold", "warm"):
        shared, shared_seconds = shared_fit(data)
        hrf, hrf_seconds = per_voxel_fit(data, shared.estimated_parameters)
        rows[attempt] = {
            "shared_hrf": {"seconds": shared_seconds, **summary(shared, data, published)},
            "per_voxel_hrf": {"seconds": hrf_seconds, **summary(hrf, data, published),
                              "median_hrf_delay": float(
                                  hrf.estimated_parameters["hrf_delay"].median())},
        }
    return {"n_voxels": data["v1_timeseries"].shape[1],
            "n_pixels": data["paradigm"].shape[1], "resize_factor": resize_factor,
            "runs": rows, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024**2}


def print_table(result):
    print(f"\n{result['n_voxels']} V1 voxels, {result['n_pixels']} pixels; peak RSS "
          f"{result['peak_rss_gib']:.2f} GiB; seconds after warm-up (first call in brackets)")
    print(f"{'fit':<15}{'grid':>7}{'refine':>8}{'LM':>8}{'total':>8}{'iter.':>7}{'at cap':>8}"
          f"{'med R² (publ.)':>16}{'med R² (all)':>14}{'centre err':>12}{'LM CPU s':>10}")
    for name in ("shared_hrf", "per_voxel_hrf"):
        warm, cold = result["runs"]["warm"][name], result["runs"]["cold"][name]
        seconds = warm["seconds"]
        total = seconds.get("total", seconds["fit"])
        cold_total = cold["seconds"].get("total", cold["seconds"]["fit"])
        print(f"{name:<15}{seconds.get('grid', float('nan')):>7.2f}"
              f"{seconds.get('refine', float('nan')):>8.2f}{seconds['fit']:>8.2f}"
              f"{total:>8.2f}{warm['iterations']:>7d}{warm['voxels_at_cap']:>8d}"
              f"{warm['median_r2_published_voxels']:>16.4f}{warm['median_r2_all']:>14.4f}"
              f"{warm['median_centre_distance_deg']:>12.3f}{seconds['fit_cpu']:>10.2f}"
              f"   (first: {cold_total:.2f} s)")
    warm = result["runs"]["warm"]
    print(f"published fit: median R² {warm['shared_hrf']['published_median_r2']:.4f}; "
          f"per-voxel HRF median delay {warm['per_voxel_hrf']['median_hrf_delay']:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name in ("shared_hrf", "per_voxel_hrf"):
        print(f"{name} stop reasons: {result['runs']['warm'][name]['voxel_stop_reasons']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true",
                        help="smoke mode: 300 best voxels, stimulus shrunk 2.5×")
    parser.add_argument("--voxels", type=int, default=None, help="fit only the N best voxels")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds numpy and TensorFlow (the fits are deterministic)")
    args = parser.parse_args()
    tf.random.set_seed(args.seed)
    resize_factor, best_voxels = (2.5, 300) if args.fast else (1.0, args.voxels)
    result = run(resize_factor, best_voxels)
    print_table(result)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {"benchmark": "bench_real", "time": stamp, "python": platform.python_version(),
            "tensorflow": tf.__version__, "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "seed": args.seed, "fast": args.fast, "result": result}
    (out / f"bench_real-{stamp}.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
