"""One self-contained HTML page summarising a per-voxel parameter fit.

:func:`write_fit_report` (also :meth:`ParameterFitter.report
<braincoder.optimize.ParameterFitter.report>` and ``braincoder fit --report``) writes a page
with its figures embedded as base64 PNG images, so it can be opened offline or mailed:

- the R² histogram with the two-component mixture used for voxel selection
  (:func:`~braincoder.utils.fit_r2_mixture`) and its false-discovery-rate threshold;
- 2D pRFs: centres over the stimulated field coloured by R², and size against
  eccentricity; 1D pRFs: preferred value against tuning width;
- data against prediction for the best, median and worst selected voxels (named by their
  labels);
- the fitted HRF parameters when they are free per voxel;
- the fit's convergence: iterations, stop reasons, converged voxels, voxels stopped at the
  iteration cap and time per phase when known.

Figures are drawn with Matplotlib's Agg backend; nothing is downloaded.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_fit_report"]

logger = logging.getLogger(__name__)

_STYLE = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f2f2f2; } img { max-width: 100%; }
p.note { color: #555; font-size: 0.9em; }
"""
# Names under which the fitter may store per-voxel iteration counts / voxels at the cap.
_PER_VOXEL_ITERATIONS = ("voxel_iterations", "iterations_per_voxel", "n_iterations_per_voxel")
_AT_CAP = ("n_at_cap", "n_voxels_at_cap", "n_at_max_iterations")
_TIMINGS = ("timings", "phase_seconds", "phase_times")


def _subplots(nrows=1, ncols=1, figsize=(7, 3), **kwargs):
    """Make a figure outside pyplot (no global state, no interactive backend) and axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def _png(figure):
    """Encode a Matplotlib figure as an ``<img>`` tag with a base64 PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _table(rows):
    cells = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}"
                    "</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def _r2_section(r2):
    """R² histogram with the noise/signal mixture; returns (html, selected voxels)."""
    from scipy import special, stats

    from .utils.selection import R2_RANGE, fit_r2_mixture, r2_fdr_threshold

    finite = r2[np.isfinite(r2)]
    try:
        mixture = fit_r2_mixture(finite)
    except ValueError as error:
        mixture, reason = None, str(error)
    figure, axis = _subplots(figsize=(7, 3.2))
    if mixture is not None:
        threshold = r2_fdr_threshold(mixture, alpha=0.05)
        inside = finite[(finite > R2_RANGE[0]) & (finite < R2_RANGE[1])]
        z = special.logit(inside.to_numpy())
        axis.hist(z, bins=40, density=True, color="0.75", label="voxels")
        grid = np.linspace(z.min(), z.max(), 400)
        for part, colour in (("noise", "C0"), ("signal", "C3")):
            density = mixture[f"{part}_weight"] * stats.norm.pdf(
                grid, mixture[f"{part}_mu"], mixture[f"{part}_sigma"])
            axis.plot(grid, density, color=colour, label=f"{part} component")
        if np.isfinite(threshold):
            axis.axvline(special.logit(threshold), color="k", ls="--",
                         label=f"FDR 5 % threshold (R² {threshold:.3f})")
        ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
        ticks = ticks[(special.logit(ticks) >= z.min() - 1) & (special.logit(ticks) <= z.max() + 1)]
        axis.set_xticks(special.logit(ticks), [f"{t:g}" for t in ticks])
        axis.set_xlabel("R² (logit scale)")
        selected = finite.index[finite >= threshold] if np.isfinite(threshold) else finite.index[:0]
        # Ashman's D: the two components are distinct populations only when D > 2.
        separation = np.sqrt(2) * abs(mixture["signal_mu"] - mixture["noise_mu"]) / np.hypot(
            mixture["signal_sigma"], mixture["noise_sigma"])
        note = (f"Mixture: noise mean R² {mixture['noise_mean_r2']:.3f} (weight "
                f"{mixture['noise_weight']:.2f}), signal mean R² {mixture['signal_mean_r2']:.3f}"
                f" (weight {mixture['signal_weight']:.2f}); {mixture['n_excluded']} values "
                f"outside (0, 0.99) not used. The false-discovery-rate (5 %) threshold keeps "
                f"{len(selected)} of {len(r2)} voxels.")
        if separation <= 2:
            selected = finite.index
            note += (f" The components overlap (Ashman's D = {separation:.2f} ≤ 2), so they "
                     "do not separate noise from signal: all voxels are used below.")
        elif len(selected) == 0:
            selected, note = finite.index, note + " None passed: all voxels are used below."
    else:
        axis.hist(finite.to_numpy(), bins=40, color="0.75")
        axis.set_xlabel("R²")
        selected = finite.index
        note = f"No mixture fitted ({reason}); all {len(finite)} voxels with a finite R² used."
    axis.set_ylabel("density")
    axis.set_title("Goodness of fit")
    if mixture is not None:
        axis.legend(fontsize=8)
    return (f"<h2>R² and voxel selection</h2>{_png(figure)}<p class='note'>"
            f"{html.escape(note)}</p>"), selected


def _field_section(fitter, parameters, r2, selected):
    """Plot positions over the stimulated field and size against eccentricity or width."""
    labels = list(parameters.columns)
    chosen = parameters.loc[selected]
    colour = r2.loc[selected].to_numpy()
    coordinates = (fitter.model.grid_coordinates
                   if fitter.model.capabilities.image_stimulus else None)
    if {"x", "y", "sd"} <= set(labels) and coordinates is not None:
        figure, (left, right) = _subplots(1, 2, figsize=(10, 4.2))
        coverage = np.abs(fitter.paradigm.to_numpy()).mean(0)
        side = 240.0 / max(np.unique(coordinates["x"]).size, 1)  # pixel width in points
        left.scatter(coordinates["x"], coordinates["y"], c=coverage, cmap="Greys", vmin=0,
                     s=side**2, marker="s", linewidths=0)
        points = left.scatter(chosen["x"], chosen["y"], c=colour, cmap="viridis", s=14,
                              edgecolors="k", linewidths=0.3)
        left.set_aspect("equal")
        left.set_xlabel("x")
        left.set_ylabel("y")
        left.set_title("pRF centres over the stimulated field")
        figure.colorbar(points, ax=left, label="R²", shrink=0.8)
        eccentricity = np.hypot(chosen["x"], chosen["y"])
        right.scatter(eccentricity, chosen["sd"], c=colour, cmap="viridis", s=14)
        right.set_xlabel("eccentricity")
        right.set_ylabel("size (sd)")
        right.set_title("Size against eccentricity")
        caption = ("Grey: mean absolute stimulus per pixel (the stimulated field). Points: "
                   "selected voxels, coloured by R².")
    elif "mu" in labels and ({"sd", "kappa"} & set(labels)):
        width = "sd" if "sd" in labels else "kappa"
        figure, (left, right) = _subplots(1, 2, figsize=(10, 3.8))
        stimulus = fitter.paradigm.iloc[:, 0].to_numpy()
        left.hist(stimulus, bins=30, color="0.8", label="stimulus values")
        left.hist(chosen["mu"], bins=30, color="C0", alpha=0.7, label="preferred values")
        left.set_xlabel("stimulus value")
        left.legend(fontsize=8)
        left.set_title("Preferred values over the stimulated range")
        points = right.scatter(chosen["mu"], chosen[width], c=colour, cmap="viridis", s=14)
        figure.colorbar(points, ax=right, label="R²")
        right.set_xlabel("preferred value (mu)")
        right.set_ylabel(f"width ({width})")
        right.set_title("Preferred value against width")
        caption = "Selected voxels, coloured by R²."
    else:
        return ""
    figure.tight_layout()
    return (f"<h2>Receptive fields</h2>{_png(figure)}<p class='note'>{html.escape(caption)}"
            "</p>")


def _examples_section(fitter, r2, selected):
    """Plot data and prediction of the best, median and worst selected voxels."""
    order = r2.loc[selected].sort_values(ascending=False)
    if order.empty or fitter.predictions is None:
        return ""
    picks = {"best": order.index[0], "median": order.index[len(order) // 2],
             "worst": order.index[-1]}
    figure, axes = _subplots(len(picks), 1, figsize=(9, 2.1 * len(picks)), sharex=True)
    rows = []
    for axis, (rank, voxel) in zip(np.atleast_1d(axes), picks.items(), strict=True):
        data = fitter.data[voxel]
        axis.plot(np.arange(len(data)), data.to_numpy(), ".", ms=3, color="0.45", label="data")
        axis.plot(np.arange(len(data)), fitter.predictions[voxel].to_numpy(), color="C1",
                  label="prediction")
        axis.set_title(f"{rank}: voxel {voxel} (R² {r2[voxel]:.3f})", fontsize=9, loc="left")
        rows.append((rank, f"voxel {voxel}, R² {r2[voxel]:.4f}"))
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel("time point")
    figure.tight_layout()
    return (f"<h2>Data and prediction</h2>{_png(figure)}"
            f"<div class='voxels'>{_table(rows)}</div>")


def _hrf_section(parameters, selected):
    labels = [label for label in ("hrf_delay", "hrf_dispersion") if label in parameters]
    if not labels:
        return ""
    figure, axes = _subplots(1, len(labels), figsize=(4.5 * len(labels), 3))
    for axis, label in zip(np.atleast_1d(axes), labels, strict=True):
        axis.hist(parameters.loc[selected, label].to_numpy(), bins=25, color="C2")
        axis.set_xlabel(label)
        axis.set_ylabel("voxels")
    figure.tight_layout()
    return f"<h2>Fitted HRF parameters</h2>{_png(figure)}"


def _first(obj, names):
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _convergence_section(fitter, timings):
    n_voxels = fitter.data.shape[1]
    rows = [("iterations (longest voxel)", getattr(fitter, "n_iterations", "unknown")),
            ("stop reasons", getattr(fitter, "stop_reason", None) or "unknown"),
            ("converged voxels", f"{getattr(fitter, 'n_converged', 0)} of {n_voxels}")]
    per_voxel = _first(fitter, _PER_VOXEL_ITERATIONS)
    at_cap = _first(fitter, _AT_CAP)
    if at_cap is not None:
        rows.append(("voxels at the iteration cap", at_cap))
    reasons = getattr(fitter, "voxel_stop_reasons", None)
    if reasons is not None:
        counts = pd.Series(reasons).value_counts()
        rows.append(("voxels per stop reason",
                     "; ".join(f"{reason}: {count}" for reason, count in counts.items())))
    frozen = getattr(fitter, "frozen_voxels", None)
    if frozen is not None and len(frozen):
        rows.append(("voxels frozen (non-finite loss)", len(frozen)))
    if getattr(fitter, "resumed_chunks", 0):
        rows.append(("voxel chunks resumed from checkpoints", fitter.resumed_chunks))
    for phase, seconds in dict(timings or {}).items():
        rows.append((f"time: {phase}", f"{float(seconds):.2f} s"))
    figure = ""
    if per_voxel is not None:
        values = np.asarray(per_voxel, dtype=float).ravel()
        fig, axis = _subplots(figsize=(6, 2.8))
        axis.hist(values[np.isfinite(values)], bins=30, color="C4")
        axis.set_xlabel("iterations per voxel")
        axis.set_ylabel("voxels")
        figure = _png(fig)
    return f"<h2>Convergence</h2>{_table(rows)}{figure}"


def write_fit_report(fitter, path, timings=None, title=None):
    """Write an HTML report of a fitted :class:`~braincoder.optimize.ParameterFitter`.

    Parameters
    ----------
    fitter : ParameterFitter
        A fitter after :meth:`~braincoder.optimize.ParameterFitter.fit` (or after a grid
        search only: its grid parameters are then reported).
    path : str or path
        Output ``.html`` file (parent folders are created).
    timings : dict, optional
        Seconds per phase (e.g. ``{"grid": 1.2, "fit": 8.5}``), shown in the convergence
        table; the fitter's own ``timings`` attribute is used when it has one.
    title : str, optional
        Page title (default: the model's class name).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If the fitter holds neither fitted nor grid parameters.

    Notes
    -----
    Per-voxel iteration counts, stop reasons and the number of voxels stopped at the
    iteration cap are shown when the fitter stores them (attributes ``voxel_iterations``,
    ``voxel_stop_reasons`` and ``n_at_cap``); the table always gives the longest voxel's
    iterations, the stop reasons and the number of converged voxels.

    Examples
    --------
    >>> from braincoder.datasets import simulate_prf_2d
    >>> from braincoder.optimize import ParameterFitter
    >>> from braincoder.report import write_fit_report
    >>> experiment = simulate_prf_2d(n_voxels=20, grid_size=10, frames_per_sweep=15)
    >>> fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    >>> grid = fitter.fit_grid(x=[-3, 0, 3], y=[-3, 0, 3], sd=[1.0, 2.0],
    ...                        baseline=[0.0], amplitude=[1.0])
    >>> _ = fitter.fit(init_pars=grid, max_n_iterations=10, progressbar=False)
    >>> write_fit_report(fitter, "report.html").name  # doctest: +SKIP
    'report.html'
    """
    from matplotlib import style

    parameters = fitter.estimated_parameters
    if parameters is None:
        parameters = fitter.grid_parameters
        if parameters is None:
            raise ValueError("the fitter has no fitted or grid parameters to report; run "
                             "fit_grid or fit first")
        if fitter.predictions is None or getattr(fitter, "r2", None) is None:
            fitter.predictions = fitter.get_predictions(parameters)
            fitter.r2 = fitter.get_rsq(parameters)
    r2 = pd.Series(np.asarray(fitter.r2, dtype=float), index=fitter.data.columns)
    timings = timings if timings is not None else _first(fitter, _TIMINGS)
    title = title or f"Fit report: {type(fitter.model).__name__}"
    with warnings.catch_warnings(), style.context("default"):
        warnings.simplefilter("ignore", RuntimeWarning)
        r2_html, selected = _r2_section(r2)
        sections = [r2_html,
                    _field_section(fitter, parameters, r2, selected),
                    _examples_section(fitter, r2, selected),
                    _hrf_section(parameters, selected),
                    _convergence_section(fitter, timings)]
    summary = _table([
        ("model", type(fitter.model).__name__),
        ("registry name", fitter.model.get_config().get("model", "")),
        ("parameters", ", ".join(map(str, parameters.columns))),
        ("voxels", fitter.data.shape[1]),
        ("time points", fitter.data.shape[0]),
        ("median R²", f"{np.nanmedian(r2):.4f}" if np.isfinite(r2).any() else "n/a"),
        ("written", datetime.datetime.now().isoformat(timespec="seconds")),
    ])
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{summary}{''.join(sections)}</body></html>\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info("fit report written to %s", path)
    return path
