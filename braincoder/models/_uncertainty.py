"""Expected decoding uncertainty: simulate responses from a fitted model and re-decode them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..stimuli import CircularStimulus
from ..utils.distributions import sample_noise
from ..utils.posterior import _wrap, get_expected_value

#: Largest number of (trial, grid point) likelihood evaluations per batch.
_BATCH_BUDGET = 2**21

SUMMARY_COLUMNS = ["mean_E", "var_E", "mean_error", "mean_abs_error", "n_sims"]


def expected_uncertainty(model, stimuli, omega, dof, parameters, weights, n_simulations,
                         stimulus_range, seed, batch_stimuli, progress):
    """See :meth:`~braincoder.models.decoding.DecodingMixin.get_expected_uncertainty`."""
    space = model.stimulus
    if space.n_dimensions != 1:
        raise ValueError(
            "get_expected_uncertainty needs a one-dimensional stimulus space; "
            f"{type(model).__name__} has {space.n_dimensions or 'any number of'} dimensions"
        )
    if int(n_simulations) < 2:
        raise ValueError(f"n_simulations must be >= 2, got {n_simulations}")
    n_simulations = int(n_simulations)
    grid, _, _ = model._stimulus_grid(stimuli, "stimuli")
    decode_on = stimuli if stimulus_range is None else stimulus_range
    decode_grid, _, _ = model._stimulus_grid(decode_on, "stimulus_range")
    inputs = model._decoding_inputs(None, parameters, weights, omega, dof, grid=grid)
    response = model._stimulus_response(grid, inputs.parameters, inputs.weights,
                                        inputs.columns).numpy().astype(np.float64)
    chol = np.linalg.cholesky(inputs.omega)
    if batch_stimuli is None:
        batch_stimuli = _BATCH_BUDGET // (n_simulations * len(decode_grid))
    batch_stimuli = max(1, int(batch_stimuli))
    circular = isinstance(space, CircularStimulus)
    rng = np.random.default_rng(seed)
    values = grid[:, 0].astype(np.float64)
    rows = []
    starts = range(0, len(grid), batch_stimuli)
    for start in tqdm(starts, desc="expected uncertainty", disable=not progress, leave=False):
        block = slice(start, start + batch_stimuli)
        clean = np.repeat(response[block], n_simulations, axis=0)
        noise = sample_noise(rng, len(clean), chol, inputs.dof)
        simulated = pd.DataFrame(clean + noise, columns=inputs.voxels)
        pdf = model.get_stimulus_pdf(simulated, decode_on, parameters, weights, omega, dof)
        decoded = get_expected_value(pdf).to_numpy().reshape(-1, n_simulations)
        truth = values[block][:, np.newaxis]
        rows.append(_summarise(decoded, truth, circular))
    summary = pd.DataFrame(np.concatenate(rows), columns=SUMMARY_COLUMNS[:-1],
                           index=pd.Index(values, name="stimulus"))
    summary["n_sims"] = n_simulations
    return summary


def _summarise(decoded, truth, circular):
    """Per true stimulus: mean and variance of the estimates, mean and mean |error|."""
    if not circular:
        error = decoded - truth
        return np.column_stack([decoded.mean(1), decoded.var(1, ddof=1), error.mean(1),
                                np.abs(error).mean(1)])
    mean = np.arctan2(np.sin(decoded).mean(1), np.cos(decoded).mean(1))
    spread = _wrap(decoded - mean[:, np.newaxis], -np.pi)
    error = _wrap(decoded - truth, -np.pi)
    mean = truth[:, 0] + _wrap(mean - truth[:, 0], -np.pi)  # the mean angle next to the truth
    return np.column_stack([mean, (spread**2).sum(1) / (decoded.shape[1] - 1),
                            error.mean(1), np.abs(error).mean(1)])
