"""Finished voxel chunks of a fit saved to disk, so that a stopped fit resumes where it was.

Each finished chunk is one ``.npz`` file (no pickle) written atomically: to a temporary
file, then renamed into place with :func:`os.replace`, so a killed process leaves either
the whole chunk or nothing. ``manifest.json`` holds a hash of each input the results depend
on (data, starting values, paradigm, model specification, fit options and chunking), so a
directory is only ever resumed by the same fit; a changed input is named in the error.
Every field of :class:`~braincoder.optimize._chunks.ChunkResult` is saved (arrays as
arrays, other values as JSON), so new fields are kept without changes here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._chunks import ChunkResult

__all__ = ["ChunkCheckpoint", "fingerprint"]

_FORMAT = 2
_NOT_SAVED = ("intermediate",)


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


def _write_atomic(path, write):
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


class ChunkCheckpoint:
    """A directory of finished chunk results for one fit.

    Parameters
    ----------
    directory : str or path
        Created if needed.
    hashes : dict or str
        Hash of each input of the results (name → hex digest), or one fingerprint
        (:func:`fingerprint`).
    n_chunks : int, optional
        Number of chunks of the fit (recorded in the manifest).

    Raises
    ------
    ValueError
        If the directory holds the checkpoints of a different fit; the message names the
        inputs that differ.
    """

    def __init__(self, directory, hashes, n_chunks=None):
        if isinstance(hashes, str):
            hashes = {"fingerprint": hashes}
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hashes = dict(hashes)
        manifest = self.directory / "manifest.json"
        if manifest.exists():
            try:
                stored = json.loads(manifest.read_text())
            except ValueError:
                stored = {}
            if stored.get("format") != _FORMAT:
                changed = ["checkpoint format"]
            else:
                saved = stored.get("hashes", {})
                changed = sorted(set(saved) ^ set(hashes)) + [
                    name for name in hashes if name in saved and saved[name] != hashes[name]]
            if changed:
                raise ValueError(
                    f"checkpoint_dir {str(self.directory)!r} holds the chunks of a different "
                    f"fit (different {', '.join(changed)}); use a new directory or empty "
                    "this one"
                )
        else:
            record = {"format": _FORMAT, "hashes": self.hashes, "n_chunks": n_chunks}
            _write_atomic(manifest, lambda path: path.write_text(json.dumps(record, indent=1)))

    def _path(self, number):
        return self.directory / f"chunk-{number:06d}.npz"

    def finished(self):
        """Numbers of the chunks saved in the directory.

        Returns
        -------
        list of int
            Sorted chunk numbers.
        """
        return sorted(int(path.stem.split("-")[1]) for path in self.directory.glob("chunk-*.npz"))

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
            values = json.loads(str(saved["values_json"]))
            arrays = {name: saved[name] for name in saved.files
                      if name not in ("index", "values_json")}
        names = {item.name for item in dataclasses.fields(ChunkResult)}
        kwargs = {key: value for key, value in {**values, **arrays}.items() if key in names}
        return ChunkResult(**kwargs)

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
        arrays, values = {}, {}
        for item in dataclasses.fields(result):
            value = getattr(result, item.name)
            if item.name in _NOT_SAVED:
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind in "biufUS":
                arrays[item.name] = value
            else:
                values[item.name] = value
        text = json.dumps(values, default=_json_value)

        def write(path):
            with open(path, "wb") as handle:
                np.savez(handle, index=np.asarray(index), values_json=np.str_(text), **arrays)
                handle.flush()
                os.fsync(handle.fileno())

        _write_atomic(self._path(number), write)


def _json_value(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"chunk result value of type {type(value).__name__} cannot be saved")
