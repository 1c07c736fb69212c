"""Whole-file writes: a new file beside the target, flushed to disk, then
``os.replace`` (rename(2)), so a reader or an interruption sees the old file
or the new one, never half of either. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path


def beside(path: Path) -> Path:
    """The temporary name next to ``path`` that :func:`write_atomic` uses."""
    return path.with_name(f".{path.name}.env-audit-{os.getpid()}")


def write_atomic(path: str | Path, data: bytes, mode: int | None = 0o644) -> None:
    """Write ``path`` as a whole, with ``mode`` (``None``: what the umask
    gives a new file); the temporary file is removed on any failure,
    Ctrl-C included."""
    target = Path(path)
    temporary = beside(target)
    try:
        with temporary.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            temporary.chmod(mode)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
