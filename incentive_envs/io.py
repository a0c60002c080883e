"""Atomic result files: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
"""Suffix of the temporary files the atomic writers create beside their targets."""


def _user_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open()`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _atomic_handle(path: str | os.PathLike, mode: str):
    """A handle on a temporary file beside ``path`` that replaces ``path`` when the block
    finishes, and is deleted (leaving ``path`` untouched) if the block raises. The file gets
    the user's umask (``mkstemp`` alone would create it ``0600``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    os.fchmod(descriptor, _user_mode())
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
    with _atomic_handle(path, "wb") as handle:
        figure.savefig(handle, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return path


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left in ``directory`` (call it
    only while no other writer uses the directory, e.g. under a run's lock)."""
    removed = []
    for candidate in Path(directory).glob(f".*{TEMPORARY_SUFFIX}"):
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def check_writable(path: str | os.PathLike, name: str) -> Path:
    """Make sure a file can be written at ``path`` before a long run starts: its directory is
    created if needed and a probe file is written and removed there; ``ValueError`` naming
    ``name`` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a directory, not a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as error:
        raise ValueError(f"{name} {str(path)!r} is not writable: {error.strerror}") from error
    return path
