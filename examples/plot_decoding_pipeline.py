"""
From a whole-brain fit to decoding: voxel selection and expected uncertainty
============================================================================

A numerosity experiment: of 400 voxels, 80 are tuned (log-Gaussian tuning to the number
of dots) and the rest are noise. We fit every voxel, pick the tuned ones with a mixture
model of their R² (:func:`~braincoder.utils.fit_r2_mixture`) instead of an arbitrary
cutoff, fit the noise covariance, and ask how well each numerosity can be decoded:
:meth:`~braincoder.models.decoding.DecodingMixin.get_expected_uncertainty` simulates
responses from the fitted model and re-decodes them, which shows the decoder's bias as
well as its spread, next to the Fisher-information bound.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from braincoder.models import LogGaussianPRF
from braincoder.optimize import ParameterFitter, ResidualFitter
from braincoder.utils import fit_r2_mixture, r2_fdr_threshold

rng = np.random.default_rng(1)

# %%
# Simulate 240 trials of 5 to 40 dots: 80 tuned voxels (preferred numerosities clustered
# between 10 and 25) and 320 voxels of pure noise.
n_tuned, n_noise, n_trials = 80, 320, 240
voxels = pd.Index([f"v{i:03d}" for i in range(n_tuned + n_noise)], name="voxel")
truth = pd.DataFrame({"mu": rng.uniform(10, 25, n_tuned), "sd": rng.uniform(0.3, 0.6, n_tuned),
                      "amplitude": rng.uniform(0.8, 1.5, n_tuned), "baseline": 0.0},
                     index=voxels[:n_tuned])
# mu: preferred numerosity (the mode), sd: width in log units
model = LogGaussianPRF(parameterisation="mode_sd_log")
numerosity = pd.DataFrame({"x": rng.integers(5, 41, n_trials).astype(float)},
                          index=pd.RangeIndex(n_trials, name="trial"))
signal = model.predict(numerosity, truth)
data = pd.DataFrame(rng.normal(0, 0.5, (n_trials, len(voxels))), index=numerosity.index,
                    columns=voxels)
data.iloc[:, :n_tuned] += signal.to_numpy()

# %%
# Fit every voxel: grid search, then Levenberg–Marquardt.
fitter = ParameterFitter(model, data, numerosity)
grid = fitter.fit_grid(mu=np.geomspace(5, 40, 20), sd=[0.2, 0.35, 0.5, 0.7, 1.0],
                       amplitude=[1.0], baseline=[0.0])
parameters = fitter.fit(init_pars=fitter.refine_baseline_and_amplitude(grid),
                        progressbar=False)
r2 = fitter.r2

# %%
# Select voxels: a two-component mixture of logit(R²) and the threshold at which at most
# 5% of the kept voxels are expected to be noise.
mixture = fit_r2_mixture(r2)
threshold = r2_fdr_threshold(mixture, alpha=0.05)
keep = r2.index[r2 >= threshold]
print(f"threshold R² {threshold:.3f}: kept {len(keep)} voxels, "
      f"{keep.isin(truth.index).sum()} of them tuned")

fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(r2, bins=60, color="0.6")
ax.axvline(threshold, color="k", ls="--", label="5% FDR threshold")
ax.set(xlabel="R²", ylabel="voxels")
ax.legend()

# %%
# Noise model of the selected voxels, then the expected uncertainty of decoding every
# numerosity from 5 to 40.
selected = LogGaussianPRF(parameterisation="mode_sd_log", parameters=parameters.loc[keep])
residuals = ResidualFitter(selected, data[keep], numerosity)
omega, dof = residuals.fit(method="gauss", progressbar=False)
stimuli = np.arange(5.0, 41.0, 2.5)
summary = selected.get_expected_uncertainty(stimuli, omega=omega, n_simulations=100,
                                            stimulus_range=np.geomspace(3, 60, 200))
bound = 1 / np.sqrt(selected.get_fisher_information(stimuli, omega=omega).to_numpy())
print(summary.round(2))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].plot(summary.index, summary["mean_E"], "o-", label="mean decoded")
axes[0].plot(stimuli, stimuli, "k:", label="identity")
axes[0].set(xlabel="true numerosity", ylabel="decoded", title="bias")
axes[0].legend()
axes[1].plot(summary.index, np.sqrt(summary["var_E"]), "o-", label="SD of decoded")
axes[1].plot(summary.index, summary["mean_abs_error"], "s--", label="mean |error|")
axes[1].plot(stimuli, bound, "k:", label="1/√Fisher information")
axes[1].set(xlabel="true numerosity", ylabel="numerosity units", title="uncertainty",
            yscale="log")
axes[1].legend()
fig.tight_layout()

# %%
# Between the preferred numerosities the decoder is nearly unbiased and its spread follows
# the Fisher bound, growing with numerosity (larger numbers are coded by broader tuning on
# a linear scale). Below the tuned range (5 dots) hardly any voxel responds, so a weak
# response is also what very large numbers would evoke: the posterior spreads, the mean
# is pulled up, and the bound, which ignores such ambiguity, is far too optimistic.
