"""Utilities: goodness of fit, metrics, pandas conversion, input checks."""

from .image_metrics import classification_accuracy, mse, pixel_correlation
from .metrics import cosine_similarity, n_way_identification, pearson_per_sample, ssim
from .posterior import (
    get_credible_interval,
    get_expected_value,
    get_map,
    get_sd_posterior,
    in_credible_interval,
)
from .preprocessing import (
    average_runs,
    concatenate_runs,
    detrend,
    percent_signal_change,
    prepare_runs,
    zscore,
)
from .retrieval import embedding_similarity, retrieval_accuracy
from .selection import (
    fit_r2_mixture,
    r2_fdr_threshold,
    r2_noise_tail_threshold,
    r2_p_signal_threshold,
)
from .stats import get_r, get_rsq

__all__ = [
    "get_rsq",
    "get_r",
    "pearson_per_sample",
    "cosine_similarity",
    "ssim",
    "n_way_identification",
    "retrieval_accuracy",
    "embedding_similarity",
]
__all__ += [
    "get_map",
    "get_expected_value",
    "get_sd_posterior",
    "get_credible_interval",
    "in_credible_interval",
]
__all__ += ["pixel_correlation", "mse", "classification_accuracy"]
__all__ += ["fit_r2_mixture", "r2_p_signal_threshold", "r2_fdr_threshold",
            "r2_noise_tail_threshold"]
__all__ += ["detrend", "percent_signal_change", "zscore", "average_runs", "concatenate_runs",
            "prepare_runs"]
