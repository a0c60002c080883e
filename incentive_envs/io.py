"""Atomic result files: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def _atomic_handle(path: str | os.PathLike, mode: str):
    """A handle on a temporary file beside ``path`` that replaces ``path`` when the block
    finishes, and is deleted (leaving ``path`` untouched) if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, payload) -> Path:
    """Write ``payload`` as JSON so that ``path`` is either the old file or the complete new one."""
    with _atomic_handle(path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` so that ``path`` is either the old file or the complete new one."""
    with _atomic_handle(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def save_figure_atomic(figure, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure atomically (same rename trick as :func:`write_json_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(descriptor)
    try:
        figure.savefig(temporary, dpi=120, bbox_inches="tight")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
