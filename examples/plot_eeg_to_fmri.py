"""
Synthesising fMRI from EEG
==========================

Simultaneous EEG-fMRI: EEG band power (channels × frequencies × time windows before each
volume) is the paradigm, BOLD volumes are the data. We train the two-stage model of
Calhas and Henriques (2022) on simulated data: an fMRI autoencoder first, then an EEG
encoder whose latent is pulled towards the autoencoder's latent while a decoder synthesises
the volume. The held-out subject is never seen in training. A ridge regression from
HRF-convolved EEG band power is the linear baseline.
"""

import matplotlib.pyplot as plt
import numpy as np

from braincoder.datasets import normalize_eeg, simulate_eeg_fmri
from braincoder.datasets.eeg_fmri import hrf_convolve
from braincoder.models.deep import EEG_to_fMRI, fMRI_AE
from braincoder.optimize import DeepFitter
from braincoder.optimize.ridge import fit_ridge

# %%
# Simulate four subjects
# ----------------------
# Three latent sources modulate EEG band power (with a 1/f background and subject-specific
# channel gains) and, through a partly quadratic drive and the SPM HRF, smooth BOLD maps.
sim = simulate_eeg_fmri(
    n_subjects=4, n_volumes=200, n_channels=16, n_freqs=8, n_windows=4,
    volume_shape=(8, 8, 8), seed=0,
)
eeg = normalize_eeg(sim.eeg, sim.subjects)  # log power, z-scored within subject
volumes = sim.volumes / sim.volumes.std()
train, test = sim.subjects < 3, sim.subjects == 3
print(eeg.shape, volumes.shape)

# %%
# Stage 1: the fMRI autoencoder
# -----------------------------
# ``na_spec`` = (kernel sizes, strides, max pooling?, pool kernel, pool stride).
ae = fMRI_AE(
    (2, 2, 2), (8, 8, 8), None, None, 4, seed=0,
    na_spec=([(3, 3, 3), (3, 3, 3)], [(1, 1, 1), (1, 1, 1)], True, (2, 2, 2), (2, 2, 2)),
)
DeepFitter(ae, volumes[train], volumes[train]).fit(
    epochs=10, batch_size=32, learning_rate=3e-3, progressbar=False, log_dir=False
)

# %%
# Stage 2: EEG to fMRI, with the autoencoder's latent as an extra target
# ----------------------------------------------------------------------
model = EEG_to_fMRI(
    (2, 2, 2), (16, 8, 4),
    ([(2, 2, 1), (2, 2, 1)], [(2, 2, 1), (1, 1, 1)], False, (1, 1, 1), (1, 1, 1)),
    8, seed=0, fmri_args=((2, 2, 2), (8, 8, 8)),
)
history = DeepFitter(model, eeg[train], volumes[train]).fit(
    epochs=15, batch_size=32, learning_rate=3e-3, progressbar=False, log_dir=False,
    latent_target=ae,
)
predicted = model.predict(eeg[test]).to_numpy()

# %%
# Ridge baseline from HRF-convolved EEG band power
# ------------------------------------------------
current = eeg[..., 0].reshape(len(eeg), -1)
features = np.concatenate([hrf_convolve(current[sim.subjects == s], sim.tr) for s in range(4)])
targets = volumes.reshape(len(volumes), -1)
ridge = fit_ridge(features[train], targets[train], alphas=(1.0, 10.0, 100.0, 1000.0), cv=3)
ridge_pred = ridge.predict(features[test])


def voxel_r(true, pred):
    true, pred = true - true.mean(0), pred - pred.mean(0)
    return (true * pred).sum(0) / np.sqrt((true**2).sum(0) * (pred**2).sum(0))


r_deep, r_ridge = voxel_r(targets[test], predicted), voxel_r(targets[test], ridge_pred)
print(f"held-out voxel-wise r: EEG_to_fMRI {r_deep.mean():.2f}, ridge {r_ridge.mean():.2f}")

# %%
# Results
# -------
# Left: a slice of a held-out volume and its synthesis. Right: per-voxel correlation of
# the two models on the held-out subject.
sample, z = 40, 4
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
axes[0].imshow(targets[test][sample].reshape(8, 8, 8)[:, :, z], cmap="RdBu_r")
axes[0].set_title("held-out volume (z = 4)")
axes[1].imshow(predicted[sample].reshape(8, 8, 8)[:, :, z], cmap="RdBu_r")
axes[1].set_title("EEG_to_fMRI synthesis")
axes[2].scatter(r_ridge, r_deep, s=6, alpha=0.6)
axes[2].plot([-0.2, 1], [-0.2, 1], "k--", lw=1)
axes[2].set_xlabel("ridge r")
axes[2].set_ylabel("EEG_to_fMRI r")
axes[2].set_title("voxel-wise correlation")
for ax in axes[:2]:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
