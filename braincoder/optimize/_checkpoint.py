"""Finished voxel chunks of a fit saved to disk, so that a stopped fit resumes where it was.

Each finished chunk is one ``.npz`` file (no pickle), written atomically; ``manifest.json``
holds a fingerprint of everything the results depend on (data, starting values, paradigm,
model, fit settings, chunking), so a directory is only ever resumed by the same fit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._chunks import ChunkResult

__all__ = ["ChunkCheckpoint", "fingerprint"]

_FORMAT = 1


def fingerprint(arrays, settings):
    """SHA-256 of arrays (shape, dtype, bytes) and JSON-able settings.

    Parameters
    ----------
    arrays : sequence of ndarray
        Inputs the results depend on.
    settings : dict
        JSON-able options the results depend on.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class ChunkCheckpoint:
    """A directory of finished chunk results for one fit.

    Parameters
    ----------
    directory : str or path
        Created if needed.
    key : str
        Fingerprint of the fit (:func:`fingerprint`).

    Raises
    ------
    ValueError
        If the directory holds the checkpoints of a different fit.
    """

    def __init__(self, directory, key):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / "manifest.json"
        if manifest.exists():
            stored = json.loads(manifest.read_text())
            if stored.get("fingerprint") != key or stored.get("format") != _FORMAT:
                raise ValueError(
                    f"checkpoint_dir {str(self.directory)!r} holds the chunks of a different fit "
                    "(other data, starting values, model or settings); use a new directory or "
                    "empty this one"
                )
        else:
            manifest.write_text(json.dumps({"format": _FORMAT, "fingerprint": key}))
        self.key = key

    def _path(self, number):
        return self.directory / f"chunk-{number:06d}.npz"

    def load(self, number, index):
        """Return the saved result of chunk ``number``, or None if it has not finished.

        Parameters
        ----------
        number : int
            Chunk number.
        index : ndarray of int
            Voxel columns of the chunk (checked against the saved ones).

        Returns
        -------
        ChunkResult or None
            The saved result.

        Raises
        ------
        ValueError
            If the saved chunk covers other voxels.
        """
        path = self._path(number)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as saved:
            if not np.array_equal(saved["index"], index):
                raise ValueError(f"{path.name} covers other voxels than this fit's chunk {number}")
            sigma2 = saved["sigma2"] if bool(saved["has_sigma2"]) else None
            return ChunkResult(
                theta=saved["theta"], sse=saved["sse"], n_iterations=int(saved["n_iterations"]),
                converged=saved["converged"], frozen=saved["frozen"],
                stop_reason=str(saved["stop_reason"]), sigma2=sigma2,
            )

    def save(self, number, index, result):
        """Write a finished chunk (to a temporary file, then renamed into place).

        Parameters
        ----------
        number : int
            Chunk number.
        index : ndarray of int
            Voxel columns of the chunk.
        result : ChunkResult
            Its result.
        """
        path = self._path(number)
        partial = path.with_suffix(".partial.npz")
        np.savez(
            partial, index=np.asarray(index), theta=result.theta, sse=result.sse,
            n_iterations=result.n_iterations, converged=result.converged, frozen=result.frozen,
            stop_reason=np.str_(result.stop_reason), has_sigma2=result.sigma2 is not None,
            sigma2=np.zeros(0) if result.sigma2 is None else result.sigma2,
        )
        os.replace(partial, path)
