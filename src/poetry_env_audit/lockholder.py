"""Who holds an environment lock: the ``<lock>.holder`` record.

The holder writes ``{"pid", "since", "command", "host"}`` as JSON to
``<lock>.holder`` (atomically, best effort) and removes it before
unlocking. It is only ever informative: a waiter names the holder from it,
says when the process it names no longer runs, and never acts on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from poetry_env_audit.controls import replace_controls

HOLDER_SUFFIX = ".holder"
#: The most of a holder file that is ever read.
_HOLDER_MAX_BYTES = 4096

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True)
class LockHolder:
    """What ``<lock>.holder`` says about the process that took the lock.

    ``alive`` is ``False`` when that process no longer runs, ``None`` when this
    process cannot tell (another host, or Windows).
    """

    pid: int
    since: str
    command: str
    host: str
    alive: bool | None

    def describe(self) -> str:
        """``process 1234 (poetry install) since 2026-11-22T05:40:12Z``."""
        where = "" if self.host in ("", hostname()) else f" on {self.host}"
        text = f"process {self.pid}{where} ({self.command}) since {self.since}"
        if self.alive is False:
            text += f" (process {self.pid} no longer runs)"
        return text


def holder_path_for(lock_path: str | os.PathLike[str]) -> Path:
    path = Path(lock_path)
    return path.with_name(path.name + HOLDER_SUFFIX)


def holder(lock_path: str | os.PathLike[str]) -> LockHolder | None:
    """The recorded holder of ``lock_path``, or ``None`` if none is readable.

    Never follows a symlink, never blocks on a planted FIFO, never raises.
    """
    try:
        fd = os.open(
            holder_path_for(lock_path),
            os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC,
        )
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, _HOLDER_MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    since, command, host = (
        replace_controls(value) if isinstance(value, str) else None
        for value in (data.get(key) for key in ("since", "command", "host"))
    )
    return LockHolder(
        pid=pid,
        since=since if since is not None else "an unknown time",
        command=command if command is not None else "unknown command",
        host=host or "",
        alive=_alive(pid, host or ""),
    )


def write_holder(lock_path: Path, since: str, command: str) -> None:
    """Record who holds the lock, atomically; failing to is not an error."""
    import socket

    record = {
        "pid": os.getpid(),
        "since": since,
        "command": command,
        "host": socket.gethostname(),
    }
    target = holder_path_for(lock_path)
    temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # left by a killed process that had our pid; never follows
        fd = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
            0o644,
        )
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
        temp.replace(target)  # replaces a symlink there, never writes through it
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()


def remove_holder(lock_path: Path, since: str) -> None:
    """Remove the holder file, if it is still this process's own record."""
    found = holder(lock_path)
    if found is not None and found.pid == os.getpid() and found.since == since:
        with contextlib.suppress(OSError):
            holder_path_for(lock_path).unlink()


def now() -> str:
    """The time a hold starts, as the holder record writes it (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hostname() -> str:
    import socket

    return socket.gethostname()


def _alive(pid: int, host: str) -> bool | None:
    """Whether ``pid`` still runs here; ``None`` if this process cannot tell."""
    if sys.platform == "win32" or (host and host != hostname()):
        return None  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    except OSError:
        return None
    return True
