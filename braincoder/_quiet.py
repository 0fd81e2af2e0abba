"""Quiet TensorFlow start-up for the command line and the demo.

TensorFlow (2.19 and later) writes C++ log lines to the standard error while its library
loads (absl preamble, oneDNN notice, "Could not find cuda drivers", and on first use
``failed call to cuInit`` on a machine without a GPU), some of them before it reads
``TF_CPP_MIN_LOG_LEVEL``. :func:`quiet_tensorflow` imports TensorFlow with those lines
filtered; the library itself never prints and logs through :mod:`logging`.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["quiet_tensorflow"]

# TensorFlow's C++ start-up lines (absl preamble, oneDNN and CUDA notices) are written while
# the library loads, before it honours ``TF_CPP_MIN_LOG_LEVEL``.
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
_GLOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:. ]+\d+ \S+:\d+\] ")


def _is_start_up_noise(line, level):
    """Whether a line written while TensorFlow loads is below the C++ log level."""
    if line.startswith(_PREAMBLE):
        return level >= 1
    match = _GLOG_LINE.match(line)
    return bool(match) and "IWEF".index(match.group(1)) < level


def quiet_tensorflow():
    """Import TensorFlow without its C++ start-up messages.

    Unless the caller set ``TF_CPP_MIN_LOG_LEVEL``, it is set to 3 (C++ messages below
    fatal are dropped: no oneDNN, CUDA or cuInit lines on a machine without a GPU). The
    C++ log lines TensorFlow writes to the standard error while it loads, which ignore that
    variable, are filtered with the same level; anything else written meanwhile (Python
    warnings, ...) is passed on. Does nothing if TensorFlow is already imported.
    """
    import braincoder

    if "tensorflow" in sys.modules:
        return
    if not braincoder._TF_LOG_LEVEL_FROM_CALLER:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (embedded interpreters)
        saved = None
    if level <= 0 or saved is None:
        import tensorflow  # noqa: F401

        return
    import tempfile

    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
    kept = [line for line in text.splitlines()
            if line and not _is_start_up_noise(line, level)]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
