"""End-to-end demonstration: simulate 2D pRF data, fit it, report, plot, log to TensorBoard.

TensorFlow's C++ start-up messages are silenced (unless ``TF_CPP_MIN_LOG_LEVEL`` is set).

Run with ``python -m braincoder.demo --out demo_output`` (what ``make demo`` does).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run(out="demo_output", n_voxels=200, seed=0, progressbar=True):
    """Simulate, fit and report a 2D Gaussian pRF experiment with the SPM HRF.

    Parameters
    ----------
    out : str or path, default "demo_output"
        Output folder (figure, tables, TensorBoard log).
    n_voxels : int, default 200
        Number of simulated voxels.
    seed : int, default 0
        Seed of the simulation.
    progressbar : bool, default True
        Show progress bars.

    Returns
    -------
    DataFrame
        Summary table (one row per parameter: correlation with the truth) plus R².
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    from ._quiet import quiet_tensorflow

    quiet_tensorflow()
    import matplotlib.pyplot as plt

    from .datasets import simulate_prf_2d
    from .optimize import ParameterFitter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    experiment = simulate_prf_2d(n_voxels=n_voxels, tr=1.5, seed=seed)
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                             log_dir=out / "tensorboard")
    start = time.perf_counter()
    grid = fitter.fit_grid(
        x=np.linspace(-4.5, 4.5, 15), y=np.linspace(-4.5, 4.5, 15),
        sd=np.geomspace(0.3, 4.0, 8), baseline=[0.0], amplitude=[1.0],
    )
    grid = fitter.refine_baseline_and_amplitude(grid)
    grid_seconds = time.perf_counter() - start
    grid_r2 = fitter.get_rsq(grid)
    estimates = fitter.fit(init_pars=grid, progressbar=progressbar)
    elapsed = time.perf_counter() - start
    fitter.report(out / "report.html", timings={"grid search": grid_seconds,
                                                "Levenberg-Marquardt": elapsed - grid_seconds})

    truth = experiment.parameters
    rows = []
    for label in ("x", "y", "sd", "amplitude"):
        rows.append({"quantity": f"r({label}, true {label})",
                     "grid": np.corrcoef(grid[label], truth[label])[0, 1],
                     "grid + LM": np.corrcoef(estimates[label], truth[label])[0, 1]})
    rows.append({"quantity": "median R²", "grid": grid_r2.median(),
                 "grid + LM": fitter.r2.median()})
    rows.append({"quantity": "noise ceiling R²", "grid": experiment.noise_ceiling,
                 "grid + LM": experiment.noise_ceiling})
    table = pd.DataFrame(rows).set_index("quantity")
    table.to_csv(out / "summary.tsv", sep="\t")
    estimates.to_csv(out / "parameters.tsv", sep="\t")
    fitter.r2.to_frame().to_csv(out / "r2.tsv", sep="\t")

    best = fitter.r2.sort_values(ascending=False).index[:4]
    figure, axes = plt.subplots(len(best), 1, figsize=(8, 2.2 * len(best)), sharex=True)
    for axis, voxel in zip(np.atleast_1d(axes), best, strict=True):
        axis.plot(experiment.data.index, experiment.data[voxel], ".", ms=3, color="0.5",
                  label="data")
        axis.plot(fitter.predictions.index, fitter.predictions[voxel], color="C1",
                  label="prediction")
        axis.set_ylabel(f"voxel {voxel}")
        axis.set_title(f"R² = {fitter.r2[voxel]:.2f}", fontsize=9, loc="right")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time (TR)")
    figure.tight_layout()
    figure.savefig(out / "data_vs_prediction.png", dpi=100)
    plt.close(figure)

    print(f"Fitted {n_voxels} voxels (GaussianPRF2DWithHRF, grid + Levenberg-Marquardt) "
          f"in {elapsed:.1f} s; stopped: {fitter.stop_reason}")
    print(table.round(3).to_string())
    print(f"Figure: {out / 'data_vs_prediction.png'}")
    print(f"Report: {out / 'report.html'}")
    print(f"Tables: {out / 'summary.tsv'}, {out / 'parameters.tsv'}, {out / 'r2.tsv'}")
    print(f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}")
    return table


def main(argv=None):
    """Command-line entry of the demo.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="output folder")
    parser.add_argument("--n-voxels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run(args.out, args.n_voxels, args.seed)


if __name__ == "__main__":
    main()
