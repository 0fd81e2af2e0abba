"""
Linear encoding model of a block design
=======================================

Each column of the paradigm is a stimulus feature (here, which of four image categories
is on screen); every voxel responds with a weighted sum of the features, convolved with
the SPM canonical HRF, plus a baseline. :class:`~braincoder.optimize.WeightFitter`
estimates the weights in closed form: ridge regression with a penalty chosen per voxel by
cross-validation.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from braincoder.hrf import SPMHRFModel
from braincoder.models import LinearModelWithBaselineHRF
from braincoder.optimize import WeightFitter, fit_ridge

rng = np.random.default_rng(0)

# %%
# A block design: 40 blocks of 8 TRs (TR = 1.5 s), each showing one of four categories,
# separated by 4 TRs of rest. The paradigm is time × feature, with one indicator column
# per category.
categories = ["faces", "houses", "bodies", "tools"]
blocks = rng.permutation(np.repeat(np.arange(4), 10))
rows = []
for category in blocks:
    rows += [np.eye(4)[category]] * 8 + [np.zeros(4)] * 4
paradigm = pd.DataFrame(np.array(rows), columns=pd.Index(categories, name="feature"),
                        index=pd.RangeIndex(len(rows), name="time"))
print(paradigm.shape)

# %%
# 60 voxels: most prefer one category (large weight) and respond weakly to the others;
# baselines and noise in percent signal change.
n_voxels = 60
voxels = pd.Index([f"vox{i:02d}" for i in range(n_voxels)], name="voxel")
preferred = rng.integers(0, 4, n_voxels)
true_weights = rng.gamma(1.0, 0.15, (4, n_voxels))
true_weights[preferred, np.arange(n_voxels)] += rng.uniform(0.5, 1.5, n_voxels)
true_weights = pd.DataFrame(true_weights, index=paradigm.columns, columns=voxels)
true_baselines = pd.DataFrame({"baseline": rng.normal(0.0, 1.0, n_voxels)}, index=voxels)

model = LinearModelWithBaselineHRF(hrf_model=SPMHRFModel(tr=1.5))
data = model.simulate(paradigm, true_baselines, true_weights, noise=0.4, seed=1)

# %%
# :class:`~braincoder.optimize.WeightFitter` solves the weights given each voxel's
# baseline. The baselines are the intercepts of an ordinary least-squares fit on the
# HRF-convolved features (this is what ``braincoder fit`` does for linear models).
design = model.hrf_model.convolve(paradigm.to_numpy()).numpy()
intercepts = fit_ridge(design, data.to_numpy(), fit_intercept=True).intercept
baselines = pd.DataFrame({"baseline": intercepts}, index=voxels)

fitter = WeightFitter(model, baselines, data, paradigm)
weights = fitter.fit(alpha=[0.1, 1.0, 10.0, 100.0], cv=5)
print(weights.iloc[:, :4].round(2))
print(f"median R² {fitter.r2.median():.3f}, median cross-validated R² "
      f"{fitter.cv_r2.median():.3f}")
print("alphas chosen:", fitter.alphas.value_counts().sort_index().to_dict())

# %%
# Data against the fitted model's predictions for two voxels.
figure, axes = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
for axis, voxel in zip(axes, voxels[:2], strict=True):
    axis.plot(data.index, data[voxel], color="0.6", lw=1, label="data")
    axis.plot(data.index, fitter.predictions[voxel], color="C0", lw=1.5, label="prediction")
    favourite = categories[preferred[voxels.get_loc(voxel)]]
    axis.set(ylabel="BOLD (%)", title=f"{voxel} (prefers {favourite}, "
             f"R² = {fitter.r2[voxel]:.2f})")
axes[0].legend(fontsize=8, loc="upper right")
axes[1].set_xlabel("time (TR)")
figure.tight_layout()

# %%
# Fitted against true weights (one colour per category), baselines, and the distributions
# of in-sample and cross-validated R².
figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for index, category in enumerate(categories):
    axes[0].scatter(true_weights.loc[category], weights.loc[category], s=10,
                    color=f"C{index}", label=category)
axes[0].plot([0, 2], [0, 2], "k--", lw=1)
axes[0].set(xlabel="true weight", ylabel="fitted weight", title="weights")
axes[0].legend(fontsize=8)
axes[1].scatter(true_baselines["baseline"], baselines["baseline"], s=10, color="C4")
span = [true_baselines["baseline"].min(), true_baselines["baseline"].max()]
axes[1].plot(span, span, "k--", lw=1)
axes[1].set(xlabel="true baseline", ylabel="fitted baseline", title="baselines")
bins = np.linspace(0, 1, 21)
axes[2].hist(fitter.r2, bins=bins, alpha=0.6, label="in-sample")
axes[2].hist(fitter.cv_r2, bins=bins, alpha=0.6, label="cross-validated")
axes[2].set(xlabel="R²", ylabel="voxels", title="goodness of fit")
axes[2].legend(fontsize=8)
figure.tight_layout()
