"""
Reconstructing digits from simulated V1–V3 fMRI with a VAE-GAN
==============================================================

We simulate block-averaged responses of V1–V3 voxels (Gaussian pRFs with the SPM HRF) to
handwritten 6s and 9s, train a small VAE-GAN in its three stages (images; fMRI encoder;
generator fine-tuning) and compare its reconstructions of held-out trials with two linear
baselines: ridge regression from voxels to pixels and the inversion of the pRF encoding
model. The configuration is tiny so that the example runs in seconds on a CPU.
"""

import matplotlib.pyplot as plt
import numpy as np

from braincoder.datasets import simulate_image_fmri, split_image_fmri
from braincoder.models import GaussianPRF2D
from braincoder.models.deep import VAEGAN
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import pixel_correlation

sim = simulate_image_fmri(n_voxels_per_area=(100, 60, 40), seed=0)
train, test = split_image_fmri(sim, "large", seed=0)

# %%
# The three training stages of the VAE-GAN
model = VAEGAN(latent_dim=16, filters=(8, 16), seed=0)
trainer = VAEGANTrainer(model, seed=0)
trainer.fit_vae_gan(train.images, epochs=10, learning_rate=2e-3, progressbar=False)
trainer.fit_fmri_encoder(train.responses, train.images, epochs=30, progressbar=False)
trainer.fit_generator(train.responses, train.images, epochs=10, learning_rate=1e-3,
                      progressbar=False)
vae_gan_images, _ = model.reconstruct(test.responses)

# %%
# The linear baselines
ridge_images, _ = RidgeImageDecoder().fit(train.responses, train.images).reconstruct(
    test.responses
)
prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
prf_images, _ = prf.fit(train.responses, train.images).reconstruct(test.responses)

# %%
# True images and reconstructions of six test trials
methods = {"true": test.images, "VAE-GAN": vae_gan_images, "ridge": ridge_images,
           "pRF inversion": prf_images}
shown = np.arange(6)
fig, axes = plt.subplots(len(methods), len(shown), figsize=(7, 5))
for row, (name, images) in enumerate(methods.items()):
    for col, trial in enumerate(shown):
        axes[row, col].imshow(images[trial], cmap="gray", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    label = name
    if name != "true":
        label += f"\nPCC {np.nanmean(pixel_correlation(test.images, images)):.2f}"
    axes[row, 0].set_ylabel(label, fontsize=8)
fig.suptitle("Test trials: true images and reconstructions")
fig.tight_layout()
