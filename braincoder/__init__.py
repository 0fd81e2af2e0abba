"""braincoder: encoding models for brain data, fitted per voxel and inverted to decode.

Importing :mod:`braincoder` is cheap; TensorFlow is loaded by the submodules that need it
(:mod:`braincoder.models`, :mod:`braincoder.optimize`, ...).
"""

import os

# Keras 3 runs on TensorFlow in this library; respect a caller's explicit choice only if it
# is TensorFlow too (other backends are not supported).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The command line silences TensorFlow further unless the caller chose a level.
_TF_LOG_LEVEL_FROM_CALLER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

__all__ = ["__version__"]
