"""
Fitting 1D Gaussian tuning curves
=================================

Simulate voxels that are tuned to a scalar stimulus (for example numerosity, or the
position of a dot along a line) with Gaussian population receptive fields, then recover
each voxel's preferred value ``mu``, tuning width ``sd``, amplitude and baseline with
:class:`~braincoder.optimize.ParameterFitter`: a grid search over ``mu`` and ``sd``
(baseline and amplitude are solved in closed form for every grid point), followed by a
batched Levenberg–Marquardt fit. Each row of the data is the response to one stimulus
(e.g. single-trial estimates), so no HRF is involved.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from braincoder.models import GaussianPRF
from braincoder.optimize import ParameterFitter

rng = np.random.default_rng(0)

# %%
# True parameters of 80 voxels: preferred values over the stimulus range, widths between
# 0.7 and 2.5, positive amplitudes and small baselines. Voxel labels are kept end to end.
n_voxels = 80
voxels = pd.Index([f"voxel_{i:02d}" for i in range(n_voxels)], name="voxel")
true_parameters = pd.DataFrame({
    "mu": rng.uniform(1.0, 9.0, n_voxels),
    "sd": rng.uniform(0.7, 2.5, n_voxels),
    "amplitude": rng.uniform(0.5, 2.0, n_voxels),
    "baseline": rng.normal(0.0, 0.2, n_voxels),
}, index=voxels)

# %%
# 200 trials with stimuli drawn uniformly between 0 and 10, and Gaussian noise.
model = GaussianPRF()
stimuli = pd.DataFrame({"stimulus": rng.uniform(0.0, 10.0, 200)},
                       index=pd.RangeIndex(200, name="trial"))
data = model.simulate(stimuli, true_parameters, noise=0.3, seed=1)
print(data.iloc[:3, :4])

# %%
# Grid search, closed-form baseline and amplitude, then Levenberg–Marquardt.
fitter = ParameterFitter(model, data, stimuli)
grid = fitter.fit_grid(mu=np.linspace(0.0, 10.0, 41), sd=np.geomspace(0.3, 5.0, 15),
                       baseline=[0.0], amplitude=[1.0])
grid = fitter.refine_baseline_and_amplitude(grid)
estimates = fitter.fit(init_pars=grid, max_n_iterations=200, progressbar=False)
print(f"median R² {fitter.r2.median():.3f}; {fitter.n_converged} voxels converged")
print(estimates.head())

# %%
# Data against predictions for three voxels: single trials (dots) and the fitted tuning
# curve (line), with the true curve dashed.
curve = pd.DataFrame({"stimulus": np.linspace(0.0, 10.0, 200)})
fitted_curves = model.predict(curve, estimates)
true_curves = model.predict(curve, true_parameters)
figure, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for axis, voxel in zip(axes, voxels[:3], strict=True):
    axis.scatter(stimuli["stimulus"], data[voxel], s=6, color="0.6", label="data")
    axis.plot(curve["stimulus"], fitted_curves[voxel], color="C0", label="fitted")
    axis.plot(curve["stimulus"], true_curves[voxel], "k--", lw=1, label="true")
    axis.set(title=f"{voxel} (R² = {fitter.r2[voxel]:.2f})", xlabel="stimulus")
axes[0].set_ylabel("response")
axes[0].legend(fontsize=8)
figure.tight_layout()

# %%
# Fitted tuning curves of all voxels, normalised to their peak and sorted by ``mu``.
order = estimates["mu"].sort_values().index
normalised = (fitted_curves[order] - estimates.loc[order, "baseline"]) / estimates.loc[
    order, "amplitude"]
figure, axis = plt.subplots(figsize=(6, 3.5))
image = axis.imshow(normalised.T.to_numpy(), aspect="auto", cmap="magma",
                    extent=(0.0, 10.0, n_voxels, 0))
axis.set(xlabel="stimulus", ylabel="voxel (sorted by fitted mu)", title="tuning curves")
figure.colorbar(image, label="normalised response")
figure.tight_layout()

# %%
# Recovered against true parameters, and the distribution of R². Weak, broadly tuned
# voxels are the hardest: over the stimulated range a very wide Gaussian looks like a
# parabola, so width trades off against amplitude and baseline (hence log axes for
# ``sd``).
figure, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for axis, label in zip(axes[:2], ["mu", "sd"], strict=True):
    axis.scatter(true_parameters[label], estimates[label], s=10, alpha=0.7)
    low, high = true_parameters[label].min(), true_parameters[label].max()
    axis.plot([low, high], [low, high], "k--", lw=1)
    error = (estimates[label] - true_parameters[label]).abs().median()
    axis.set(xlabel=f"true {label}", ylabel=f"fitted {label}",
             title=f"median |error| = {error:.2f}")
axes[1].set(xscale="log", yscale="log")
axes[2].hist(fitter.r2, bins=20, color="C2")
axes[2].set(xlabel="R²", ylabel="voxels", title="goodness of fit")
figure.tight_layout()
