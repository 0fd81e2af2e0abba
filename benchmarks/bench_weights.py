"""Benchmark of the closed-form ridge encoding fit (``fit_ridge`` / ``WeightFitter``).

Setup. Simulated linear encoding data: a design of ``n_time`` training TRs (300) plus a
separate held-out test set (``n_test`` TRs, 300) × ``n_features`` (40) correlated,
temporally smooth features (AR(1), rho 0.5, mixed by a random rotation with singular values
decaying 1 → 0.05); true weights N(0, 1), a per-voxel intercept N(0, 3²), and white noise
whose variance is the signal variance times a per-voxel ratio drawn log-uniformly in
[0.1, 100], so the best alpha differs across voxels (noise-ceiling R² from ~0.01 to ~0.9).
Every method chooses one alpha per voxel by 5-fold cross-validation on the same contiguous
(unshuffled) folds, from ``alphas = 10**np.arange(-2, 6)`` ("default", 8 values) and
``10**np.arange(-4, 9, 0.5)`` ("wide", 26 values), then refits on all training TRs:

* ``fit_ridge`` — :func:`braincoder.optimize.ridge.fit_ridge` (``cv=5, fit_intercept=True``).
* ``WeightFitter`` — :class:`braincoder.optimize.WeightFitter` with
  :class:`braincoder.models.LinearModel` (pandas in and out, also computes predictions and
  in-sample R²). It calls ``fit_ridge(..., fit_intercept=False)`` on a design that went
  through float32, so the benchmark gives it training-mean-centred paradigm and data (the
  usual preprocessing for a model without baseline) and adds the training means back to
  predict the test set. Centring once on all training TRs instead of within each fold, and
  the float32 design, are why its alphas and weights can differ slightly from ``fit_ridge``.
* ``numpy`` — the plain reference: for each fold and alpha, ``np.linalg.solve`` of the
  normal equations ``(XᵀX + αI) W = XᵀY`` on fold-centred data, summed squared error over
  folds, argmin per voxel, refit per chosen alpha. No SVD tricks.
* ``himalaya`` (optional, ``pip install himalaya``) — ``himalaya.ridge.RidgeCV(alphas,
  cv=<the same folds>, fit_intercept=True)`` with the numpy backend (and the torch backend
  too if torch is installed). Its selection rule, read from
  ``himalaya/ridge/_random_search.py`` (``solve_ridge_cv_svd`` →
  ``solve_group_ridge_random_search`` → ``_select_best_alphas``): each fold is scored by
  ``l2_neg_loss`` = −SSE / n_test, scores are *averaged* over folds, and ``1e-10 · log(α)``
  is added before the argmax, so near-ties go to the larger alpha. With equal-sized folds
  (300 TRs / 5) the fold average is proportional to the summed SSE that ``fit_ridge``
  minimises, so the two agree except on near-ties (and on float rounding: himalaya returns
  ``exp(-log(1/α))``, compared with ``np.isclose``).

Reported per voxel count and grid: seconds (the best of ``--repeats`` timed calls after one
warm-up call; the median and the warm-up call are shown too, since on a shared machine the
median mostly measures the other processes' load, recorded in the JSON), voxels/s, median
held-out R² on the test TRs, the share of voxels whose chosen alpha equals ``fit_ridge``'s,
the max |ΔW| against ``fit_ridge`` over voxels with the same alpha, the median noise-ceiling
R² (R² of the noiseless signal on the test TRs) and the peak RSS so far
(``resource.getrusage``). Writes one JSON per run into ``benchmarks/results/`` (config,
versions, hardware, results).

Usage::

    python benchmarks/bench_weights.py            # 1000, 10000, 50000 voxels
    python benchmarks/bench_weights.py --fast     # smoke run: 200 and 2000 voxels
    python benchmarks/bench_weights.py --sizes 1000 10000 --grids default --repeats 5
    python benchmarks/bench_weights.py --blas-threads 1   # steadier timings on a busy machine
    pip install himalaya                          # optional comparison library
"""

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from braincoder.models import LinearModel  # noqa: E402
from braincoder.optimize import WeightFitter  # noqa: E402
from braincoder.optimize.ridge import fit_ridge  # noqa: E402

GRIDS = {
    "default": 10.0 ** np.arange(-2, 6),
    "wide": 10.0 ** np.arange(-4, 9, 0.5),
}
N_FOLDS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--grids", nargs="+", choices=sorted(GRIDS), default=["default", "wide"])
    parser.add_argument("--n-time", type=int, default=300, help="training TRs")
    parser.add_argument("--n-test", type=int, default=300, help="held-out TRs")
    parser.add_argument("--n-features", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS threads (threadpoolctl); default: leave as is")
    parser.add_argument("--no-weightfitter", action="store_true")
    parser.add_argument("--fast", action="store_true", help="smoke run: 200 and 2000 voxels")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.fast:
        args.sizes, args.repeats = [200, 2000], 1
    return args


# --------------------------------------------------------------------------- simulation


def simulate(n_voxels, n_time, n_test, n_features, seed):
    """Training and test design/data with per-voxel noise levels (see module docstring)."""
    rng = np.random.default_rng(seed)
    n_total = n_time + n_test
    z = rng.standard_normal((n_total, n_features))
    for t in range(1, n_total):  # AR(1) temporal smoothness, unit stationary variance
        z[t] = 0.5 * z[t - 1] + np.sqrt(1 - 0.5**2) * z[t]
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    X = z @ (np.geomspace(1.0, 0.05, n_features)[:, None] * rotation)
    weights = rng.standard_normal((n_features, n_voxels))
    intercept = 3.0 * rng.standard_normal(n_voxels)
    signal = X @ weights + intercept
    noise_ratio = 10.0 ** rng.uniform(-1, 2, n_voxels)  # noise variance / signal variance
    noise_sd = np.sqrt(noise_ratio * signal[:n_time].var(0))
    Y = signal + noise_sd * rng.standard_normal((n_total, n_voxels))
    return {
        "X": X[:n_time], "Y": Y[:n_time], "X_test": X[n_time:], "Y_test": Y[n_time:],
        "signal_test": signal[n_time:], "weights": weights, "noise_ratio": noise_ratio,
    }


def contiguous_folds(n_samples, n_folds):
    """The contiguous folds of ``fit_ridge(cv=int)`` (blocks bounded by ``np.linspace``)."""
    bounds = np.linspace(0, n_samples, n_folds + 1).astype(int)
    indices = np.arange(n_samples)
    return [(np.concatenate([indices[: bounds[i]], indices[bounds[i + 1]:]]),
             indices[bounds[i]: bounds[i + 1]]) for i in range(n_folds)]


def r2_per_voxel(y, prediction):
    return 1.0 - ((y - prediction) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)


# --------------------------------------------------------------------------- methods
# Each returns (weights (features × voxels), intercept (voxels,), alphas (voxels,)).


def run_fit_ridge(X, Y, alphas, folds):
    solution = fit_ridge(X, Y, alphas=alphas, cv=N_FOLDS, fit_intercept=True)
    return solution.weights, solution.intercept, solution.alphas


def run_weightfitter(X, Y, alphas, folds):
    x_mean, y_mean = X.mean(0), Y.mean(0)
    paradigm = pd.DataFrame(X - x_mean, columns=[f"f{j}" for j in range(X.shape[1])])
    data = pd.DataFrame(Y - y_mean)
    fitter = WeightFitter(LinearModel(), None, data, paradigm)
    weights = fitter.fit(alpha=alphas, cv=N_FOLDS).to_numpy()
    return weights, y_mean - x_mean @ weights, fitter.alphas.to_numpy()


def run_numpy(X, Y, alphas, folds):
    identity = np.eye(X.shape[1])
    sse = np.zeros((len(alphas), Y.shape[1]))
    for train, test in folds:
        x_mean, y_mean = X[train].mean(0), Y[train].mean(0)
        x_train = X[train] - x_mean
        xtx, xty = x_train.T @ x_train, x_train.T @ (Y[train] - y_mean)
        x_test, y_test = X[test] - x_mean, Y[test] - y_mean
        for i, alpha in enumerate(alphas):
            w = np.linalg.solve(xtx + alpha * identity, xty)
            sse[i] += ((y_test - x_test @ w) ** 2).sum(0)
    chosen = np.asarray(alphas)[np.argmin(sse, axis=0)]
    x_mean, y_mean = X.mean(0), Y.mean(0)
    xc = X - x_mean
    xtx, xty = xc.T @ xc, xc.T @ (Y - y_mean)
    weights = np.zeros((X.shape[1], Y.shape[1]))
    for alpha in np.unique(chosen):
        voxels = chosen == alpha
        weights[:, voxels] = np.linalg.solve(xtx + alpha * identity, xty[:, voxels])
    return weights, y_mean - x_mean @ weights, chosen


def himalaya_runner(backend_name):
    def run_himalaya(X, Y, alphas, folds):
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend(backend_name, on_error="raise")
        model = RidgeCV(alphas=alphas, cv=folds, fit_intercept=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.fit(X, Y)
        return (np.asarray(backend.to_numpy(model.coef_)),
                np.asarray(backend.to_numpy(model.intercept_)),
                np.asarray(backend.to_numpy(model.best_alphas_), dtype=np.float64))

    return run_himalaya


def methods(args):
    chosen = {"fit_ridge": run_fit_ridge}
    if not args.no_weightfitter:
        chosen["WeightFitter"] = run_weightfitter
    chosen["numpy"] = run_numpy
    if importlib.util.find_spec("himalaya") is None:
        print("himalaya not installed: skipping it (pip install himalaya)")
    else:
        chosen["himalaya[numpy]"] = himalaya_runner("numpy")
        if importlib.util.find_spec("torch") is not None:
            chosen["himalaya[torch]"] = himalaya_runner("torch")
        else:
            print("torch not installed: skipping himalaya's torch backend")
    return chosen


# --------------------------------------------------------------------------- benchmark


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def time_method(method, sim, alphas, folds, repeats):
    start = time.perf_counter()
    out = method(sim["X"], sim["Y"], alphas, folds)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = method(sim["X"], sim["Y"], alphas, folds)
        times.append(time.perf_counter() - start)
    return out, first, times


def run(n_voxels, grid, runners, args):
    alphas = GRIDS[grid]
    sim = simulate(n_voxels, args.n_time, args.n_test, args.n_features, args.seed)
    folds = contiguous_folds(args.n_time, N_FOLDS)
    ceiling = r2_per_voxel(sim["Y_test"], sim["signal_test"])
    rows = {}
    reference = None
    for name, method in runners.items():
        (weights, intercept, chosen), first, times = time_method(
            method, sim, alphas, folds, args.repeats)
        seconds = min(times) if times else first
        held_out = r2_per_voxel(sim["Y_test"], sim["X_test"] @ weights + intercept)
        if reference is None:
            reference = weights, chosen
        same = np.isclose(chosen, reference[1], rtol=1e-6, atol=0.0)
        max_dw = float(np.abs(weights - reference[0])[:, same].max()) if same.any() else None
        rows[name] = {
            "seconds": seconds, "median_seconds": float(np.median(times)) if times else first,
            "first_call_seconds": first, "timed_seconds": times,
            "voxels_per_second": n_voxels / seconds,
            "held_out_median_r2": float(np.median(held_out)),
            "held_out_mean_r2": float(held_out.mean()),
            "same_alpha_share": float(same.mean()), "max_abs_dw_same_alpha": max_dw,
            "share_alpha_at_grid_edge": float(np.isin(
                np.round(np.log10(chosen), 6), np.round(np.log10(alphas[[0, -1]]), 6)).mean()),
            "weight_recovery_r": float(np.corrcoef(weights.ravel(), sim["weights"].ravel())[0, 1]),
            "peak_rss_gib_after": peak_rss_gib(),
        }
    return {"n_voxels": n_voxels, "grid": grid, "alphas": alphas.tolist(),
            "noise_ceiling_median_r2": float(np.median(ceiling)),
            "noise_ceiling_mean_r2": float(ceiling.mean()), "methods": rows,
            "peak_rss_gib": peak_rss_gib()}


def print_table(result):
    print(f"\n{result['n_voxels']} voxels, grid '{result['grid']}' ({len(result['alphas'])} "
          f"alphas); noise-ceiling median R² {result['noise_ceiling_median_r2']:.4f}; "
          f"peak RSS so far {result['peak_rss_gib']:.2f} GiB")
    header = (f"{'voxels':>7} {'method':<16}{'seconds':>9}{'voxels/s':>11}{'held-out R²':>12}"
              f"{'same α':>8}{'max |ΔW|':>10}{'median s':>10}{'warm-up s':>11}")
    print(header)
    print("-" * len(header))
    for name, row in result["methods"].items():
        dw = "-" if row["max_abs_dw_same_alpha"] is None else f"{row['max_abs_dw_same_alpha']:.1e}"
        print(f"{result['n_voxels']:>7} {name:<16}{row['seconds']:>9.3f}"
              f"{row['voxels_per_second']:>11.0f}{row['held_out_median_r2']:>12.4f}"
              f"{row['same_alpha_share']:>8.3f}{dw:>10}{row['median_seconds']:>10.3f}"
              f"{row['first_call_seconds']:>11.3f}")


def versions():
    import scipy
    import tensorflow

    import braincoder

    found = {"python": sys.version.split()[0], "braincoder": braincoder.__version__,
             "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
             "tensorflow": tensorflow.__version__}
    for optional in ("himalaya", "sklearn", "torch"):
        if importlib.util.find_spec(optional) is not None:
            found[optional] = __import__(optional).__version__
    return found


def hardware():
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "device": "CPU"}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{key: pool.get(key) for key in ("internal_api", "version",
                                                         "num_threads")}
                        for pool in threadpool_info()]
    except ImportError:
        pass
    return info


def main(argv=None):
    args = parse_args(argv)
    runners = methods(args)
    load_before = os.getloadavg()
    limits = contextlib.nullcontext()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=args.blas_threads, user_api="blas")
    results = []
    with limits:
        for n_voxels in args.sizes:
            for grid in args.grids:
                result = run(n_voxels, grid, runners, args)
                print_table(result)
                results.append(result)
    load = {"before": load_before, "after": os.getloadavg()}
    print(f"\nload average (1, 5, 15 min) before {load_before[0]:.1f}, "
          f"after {load['after'][0]:.1f} on {os.cpu_count()} CPUs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"bench_weights-{stamp}{'-fast' if args.fast else ''}.json"
    config = {key: value for key, value in vars(args).items() if key != "out"}
    config.update(n_folds=N_FOLDS, folds="contiguous", methods=list(runners),
                  grids={name: GRIDS[name].tolist() for name in args.grids})
    report = {"benchmark": "bench_weights", "time": stamp, "config": config,
              "versions": versions(), "hardware": {**hardware(), "load_average": load},
              "results": results}
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
