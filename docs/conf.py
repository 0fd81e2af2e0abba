"""Sphinx configuration of the braincoder documentation."""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import braincoder  # noqa: E402
from braincoder._quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

project = "braincoder"
author = "The braincoder developers"
copyright = "2026, The braincoder developers"
release = braincoder.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "matplotlib_animations": False,
}

templates_path = []
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = "braincoder"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
suppress_warnings = ["config.cache"]
