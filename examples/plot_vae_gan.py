"""
Reconstructing digits from simulated V1–V3 fMRI with a VAE-GAN
==============================================================

We simulate block-averaged responses of V1–V3 voxels (Gaussian pRFs with the SPM HRF) to
handwritten 6s and 9s, at the size of the real "6 and 9" experiment (100 trials, 90 for
training and 10 for testing) and in the benchmark's hard setting (50 voxels per area,
signal-to-noise ratio 0.3). A small VAE-GAN is trained in its three stages, blended with
ridge regression, and its reconstructions of the test trials are compared with two linear
baselines: ridge regression from voxels to pixels and the inversion of the pRF encoding
model.

As in the design the VAE-GAN follows, its first stage needs no fMRI: it learns a visual
prior from a large set of images, here every digit bundled with scikit-learn (all ten
classes) except the test stimuli, far more images than the 90 paired trials from which
the linear decoders learn. The configuration is tiny so that the example runs in seconds on
a CPU: the prior trains for 15 epochs with few filters, so this VAE-GAN is weaker than
ridge regression and the blend, chosen on held-out training trials, gives it little
weight. ``benchmarks/bench_vaegan.py`` runs the full recipe over several seeds; the
tutorial :doc:`/tutorials/vae_gan` tabulates where each decoder wins.
"""

import matplotlib.pyplot as plt
import numpy as np

from braincoder.datasets import load_digit_images, simulate_image_fmri, split_image_fmri
from braincoder.models import GaussianPRF2D
from braincoder.models.deep import VAEGAN, fMRIEncoder
from braincoder.models.image_decoders import PRFInversionDecoder, RidgeImageDecoder
from braincoder.optimize import VAEGANTrainer
from braincoder.utils import pixel_correlation

sim = simulate_image_fmri(n_voxels_per_area=(50, 50, 50), snr=0.3, seed=0)
train, test = split_image_fmri(sim, "reference", seed=0)

# %%
# Stage 1: a visual prior from images without fMRI
# ------------------------------------------------
# ``exclude`` drops every bundled image identical to a test stimulus, and the trainer
# checks it again (``exclude_images``): the test images are never seen in training.
prior_images, _ = load_digit_images(exclude=test.images)
model = VAEGAN(latent_dim=16, filters=(8, 16), seed=0)
encoder = fMRIEncoder(train.responses.shape[1], 16, hidden=(), seed=0)  # linear
trainer = VAEGANTrainer(model, fmri_encoder=encoder, seed=0)
trainer.fit_vae_gan(train.images, unpaired_images=prior_images, exclude_images=test.images,
                    epochs=15, batch_size=64, learning_rate=2e-3, kl_weight=1.0,
                    early_stopping_patience=15, progressbar=False)
print(f"stage 1 learnt from {trainer.n_prior_images} images; "
      f"{len(train.images)} paired training trials")

# %%
# Stages 2 and 3: from voxels to the latent space, then the generator
# -------------------------------------------------------------------
# A linear fMRI encoder starts from the cross-validated ridge regression of the latents on
# the voxels and is refined through the frozen generator; the generator is then fine-tuned
# on the latents predicted from fMRI.
trainer.fit_fmri_encoder(train.responses, train.images, epochs=30, image_weight=3.0,
                         ridge_init_alphas=10.0 ** np.arange(-1, 10), batch_size=16,
                         progressbar=False)
trainer.fit_generator(train.responses, train.images, epochs=40, feature_weight=0.0,
                      adversarial_weight=0.0, batch_size=16, progressbar=False)

# %%
# Blend with ridge
# ----------------
# The generator's images are averaged with a ridge decoder's, with the weight that
# reconstructs the held-out training trials best (never the test trials).
trainer.fit_blend(train.responses, train.images)
print(f"weight of the generator's image: {model.blend_weight:.1f}")
vae_gan_images, _ = model.reconstruct(test.responses)

# %%
# The linear baselines
ridge_images, _ = RidgeImageDecoder().fit(train.responses, train.images).reconstruct(
    test.responses
)
prf = PRFInversionDecoder(GaussianPRF2D(sim.grid_coordinates), sim.parameters)
prf_images, _ = prf.fit(train.responses, train.images).reconstruct(test.responses)

# %%
# True images and reconstructions of the ten test trials
# ------------------------------------------------------
# With ten test images the mean pixel correlation varies by a few hundredths from one
# split to the next; compare methods over several seeds (see the tutorial).
methods = {"true": test.images, "VAE-GAN (blend)": vae_gan_images, "ridge": ridge_images,
           "pRF inversion": prf_images}
shown = np.arange(len(test.images))
fig, axes = plt.subplots(len(methods), len(shown), figsize=(9, 4.5))
for row, (name, images) in enumerate(methods.items()):
    for col, trial in enumerate(shown):
        axes[row, col].imshow(images[trial], cmap="gray", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    label = name
    if name != "true":
        label += f"\nPCC {np.nanmean(pixel_correlation(test.images, images)):.2f}"
    axes[row, 0].set_ylabel(label, fontsize=8)
fig.suptitle(f"Test trials (VAE-GAN prior learnt from {trainer.n_prior_images} images)")
fig.tight_layout()
