"""
A fit report in one HTML page
=============================

After a fit, :meth:`ParameterFitter.report <braincoder.optimize.ParameterFitter.report>`
(or ``braincoder fit ... --report report.html`` from the shell) writes one self-contained
HTML page: the R² histogram with the noise/signal mixture used to select voxels, the pRF
centres over the stimulated field coloured by R², size against eccentricity, data against
prediction for the best, median and worst selected voxels, the fitted HRF parameters and
the convergence of the fit. Figures are embedded as PNG images, so the page opens offline
and can be sent as one file.
"""

import base64
import io
import re
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from braincoder.datasets import simulate_prf_2d
from braincoder.optimize import ParameterFitter

experiment = simulate_prf_2d(n_voxels=80, tr=1.5, grid_size=12, frames_per_sweep=15,
                             noise_ratio=1.0, unique_hrfs=True, seed=2)

# %%
# A grid search then Levenberg–Marquardt, timing both phases for the report.
fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
start = time.perf_counter()
grid = fitter.fit_grid(x=np.linspace(-4.5, 4.5, 8), y=np.linspace(-4.5, 4.5, 8),
                       sd=np.geomspace(0.4, 4, 5), hrf_delay=[4.5, 5.5, 6.5],
                       hrf_dispersion=[1.0])
grid = fitter.refine_baseline_and_amplitude(grid)
timings = {"grid search": time.perf_counter() - start}
start = time.perf_counter()
fitter.fit(init_pars=grid, fixed_pars=["hrf_dispersion"], max_n_iterations=50,
           progressbar=False)
timings["Levenberg-Marquardt"] = time.perf_counter() - start

path = fitter.report(Path(tempfile.mkdtemp()) / "report.html", timings=timings)
page = path.read_text()
print(f"{path.name}: {len(page) / 1e3:.0f} kB, "
      f"{page.count('data:image/png;base64,')} embedded figures")

# %%
# The page's figures, decoded from the HTML (open ``report.html`` in a browser to see
# them with their tables).
images = [plt.imread(io.BytesIO(base64.b64decode(data)), format="png")
          for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]
figure, axes = plt.subplots(len(images), 1, figsize=(8, 3.2 * len(images)))
for axis, image in zip(np.atleast_1d(axes), images, strict=True):
    axis.imshow(image)
    axis.set_axis_off()
figure.tight_layout()
plt.show()
