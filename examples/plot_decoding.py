"""
Decoding orientation: noise model, posteriors and Fisher information
=====================================================================

An inverted encoding model in four steps: simulate voxels that mix eight von Mises
orientation channels, fit the mixing weights with
:class:`~braincoder.optimize.WeightFitter`, fit the residual covariance (and Student-t
degrees of freedom) with :class:`~braincoder.optimize.ResidualFitter`, then decode held-out
data into a posterior over orientation for every trial.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import special, stats

from braincoder.models import VonMisesPRF
from braincoder.optimize import ResidualFitter, StimulusFitter, WeightFitter
from braincoder.optimize.residuals import make_omega
from braincoder.utils import (
    get_expected_value,
    get_sd_posterior,
    in_credible_interval,
)

rng = np.random.default_rng(0)

# %%
# Eight orientation channels (basis functions) mixed into 50 voxels by positive weights.
n_channels, n_voxels = 8, 50
channels = pd.DataFrame({
    "mu": np.linspace(-np.pi, np.pi, n_channels, endpoint=False),
    # the tuning curve is the von Mises density: this amplitude gives it a peak of 1
    "kappa": 2.0, "amplitude": 2 * np.pi * special.i0e(2.0), "baseline": 0.0,
})
true_weights = pd.DataFrame(rng.gamma(2.0, 0.5, (n_channels, n_voxels)))
model = VonMisesPRF(parameters=channels)

# %%
# Correlated, heavy-tailed noise: multivariate Student-t (8 degrees of freedom) whose shape
# matrix has a shared correlation of 0.3 (see :func:`braincoder.optimize.residuals.make_omega`).
true_omega = make_omega(np.full(n_voxels, 0.5), 0.3, 0.0, np.eye(n_voxels))


def simulate(orientations, seed):
    prediction = model.predict(orientations, weights=true_weights)
    noise = stats.multivariate_t.rvs(np.zeros(n_voxels), true_omega, df=8,
                                     size=len(orientations), random_state=seed)
    return prediction + noise


train_orientations = rng.uniform(-np.pi, np.pi, 300)
test_orientations = rng.uniform(-np.pi, np.pi, 60)
train, test = simulate(train_orientations, 1), simulate(test_orientations, 2)

# %%
# Fit the weights in closed form, then the noise model on the training residuals.
weights = WeightFitter(model, channels, train, train_orientations).fit(alpha=1.0)
residual_fitter = ResidualFitter(model, train, train_orientations, channels, weights)
omega, dof = residual_fitter.fit(init_dof=10.0, method="t", progressbar=False)
print(f"fitted rho {residual_fitter.fitted_omega_parameters['rho']:.2f} (true 0.3), "
      f"dof {dof:.1f} (true 8)")

# %%
# Decode the held-out trials: a posterior over a grid of orientations per trial.
grid = np.linspace(-np.pi, np.pi, 180, endpoint=False)
pdf = model.get_stimulus_pdf(test, grid, weights=weights, omega=omega, dof=dof)
decoded = get_expected_value(pdf)  # circular mean (the grid spans 2π)
uncertainty = get_sd_posterior(pdf)
coverage = in_credible_interval(pdf, test_orientations, 0.95).mean()
error = np.angle(np.exp(1j * (decoded.to_numpy() - test_orientations)))
print(f"mean absolute error {np.degrees(np.abs(error)).mean():.1f}°, "
      f"95% interval coverage {coverage:.2f}")

# %%
# Refine each trial's maximum-a-posteriori orientation by gradient descent.
fitter = StimulusFitter(test, model, omega, weights=weights, dof=dof)
map_estimates = fitter.fit(progressbar=False)

# %%
# Posteriors of a few trials, decoded against true orientation, and the population's
# Fisher information (analytical and Monte Carlo).
fisher_grid = np.linspace(-np.pi, np.pi, 36, endpoint=False)
fisher = model.get_fisher_information(fisher_grid, omega, dof, weights)
fisher_mc = model.get_fisher_information(fisher_grid, omega, dof, weights, n=3000,
                                         analytical=False)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for trial, color in enumerate(plt.cm.viridis(np.linspace(0, 0.9, 4))):
    axes[0].plot(np.degrees(grid), pdf.iloc[trial], color=color)
    axes[0].axvline(np.degrees(test_orientations[trial]), color=color, ls="--")
axes[0].set(xlabel="orientation (°)", ylabel="posterior density", title="posteriors")
axes[1].errorbar(np.degrees(test_orientations), np.degrees(decoded),
                 yerr=np.degrees(uncertainty), fmt="o", ms=3, alpha=0.7, label="posterior mean")
axes[1].plot(np.degrees(test_orientations), np.degrees(map_estimates["x (radians)"]), "x", ms=4,
             label="MAP (StimulusFitter)")
axes[1].plot([-180, 180], [-180, 180], "k:", lw=1)
axes[1].set(xlabel="true orientation (°)", ylabel="decoded (°)", title="decoding")
axes[1].legend(fontsize=8)
axes[2].plot(np.degrees(fisher_grid), fisher, label="analytical")
axes[2].plot(np.degrees(fisher_grid), fisher_mc, "o", ms=3, label="Monte Carlo")
axes[2].set(xlabel="orientation (°)", ylabel="Fisher information (rad⁻²)",
            title="Fisher information")
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()
