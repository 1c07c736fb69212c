"""CI systems: which one runs us, which format it reads, and the report file it archives.

:func:`detect` and :func:`auto_format` are pure functions of the environment
variables; :func:`display_path` is pure path arithmetic. Only
:func:`lock_lines_for` and :func:`write_report_file` touch the file system.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from pathlib import PurePath
from typing import TYPE_CHECKING

from poetry_env_audit.errors import AuditError
from poetry_env_audit.render.formats import Format
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Mapping


class CISystem(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    AZURE = "azure"
    GENERIC = "generic"


#: What each CI system sets in every job (its documentation), checked in this order.
MARKERS = (
    (CISystem.GITHUB, "GITHUB_ACTIONS"),  # "true"
    (CISystem.GITLAB, "GITLAB_CI"),  # "true"
    (CISystem.AZURE, "TF_BUILD"),  # "True"
)
#: Where each CI system checks out the repository; annotation paths are relative to it.
WORKSPACE = {
    CISystem.GITHUB: "GITHUB_WORKSPACE",
    CISystem.GITLAB: "CI_PROJECT_DIR",
    CISystem.AZURE: "BUILD_SOURCESDIRECTORY",
}
FORMAT_OF = {
    CISystem.GITHUB: Format.GITHUB,
    CISystem.GITLAB: Format.GITLAB,
    CISystem.AZURE: Format.AZURE,
}
_FALSE = {"", "0", "false", "no", "off"}


def detect(environ: Mapping[str, str]) -> CISystem | None:
    """The CI system running this process, from the variables it sets.

    GitHub Actions (``GITHUB_ACTIONS=true``), GitLab CI (``GITLAB_CI=true``),
    Azure Pipelines (``TF_BUILD=True``), all compared case-insensitively; else
    :attr:`CISystem.GENERIC` when ``CI`` is set to anything but a false value
    (``CI=true``, ``CI=1``); else ``None``.
    """
    for system, variable in MARKERS:
        if environ.get(variable, "").strip().lower() == "true":
            return system
    if environ.get("CI", "").strip().lower() not in _FALSE:
        return CISystem.GENERIC
    return None


def auto_format(environ: Mapping[str, str], setting: str) -> Format | None:
    """The CI format to add to the text report, or ``None``.

    ``None`` when ``ci-output`` is ``off``, when no CI system is detected and
    for a generic CI (which has no format of its own).
    """
    if setting.strip().lower() == "off":
        return None
    system = detect(environ)
    return FORMAT_OF.get(system) if system is not None else None


def choose_format(
    option: str | None, setting: str, environ: Mapping[str, str]
) -> Format:
    """``--format`` when given, else the detected CI system's format, else text."""
    if option is not None:
        return Format(option.strip().lower())
    return auto_format(environ, setting) or Format.TEXT


def display_path(path: str | os.PathLike[str], environ: Mapping[str, str]) -> str:
    """``path`` as a CI system links it: relative to its checkout when inside it.

    GitHub and Azure resolve annotation paths against the repository; a path
    outside the checkout (or with no CI checkout known) stays absolute.
    """
    target = PurePath(os.fspath(path))
    system = detect(environ)
    bases = [environ.get(WORKSPACE[system], "")] if system in WORKSPACE else []
    for base in bases:
        if base and PurePath(base).is_absolute() and target.is_absolute():
            try:
                return target.relative_to(base).as_posix()
            except ValueError:
                continue
    return os.fspath(path)


def lock_lines_for(
    fmt: Format, lock_file: Path, environ: Mapping[str, str]
) -> tuple[str | None, dict[str, int]]:
    """The lock path to show and its package lines, read only when ``fmt`` annotates.

    No lock file: no path either, so that no annotation points at a missing file.
    """
    if not fmt.annotates or not lock_file.is_file():
        return None, {}
    from poetry_env_audit.lockfile import read_package_lines

    return display_path(lock_file, environ), read_package_lines(lock_file)


_STD_STREAMS = {"/dev/stdout": 1, "/dev/stderr": 2}
_FD_PATH = re.compile(r"/(?:dev|proc/self)/fd/([0-9]+)")


def _stream_fd(path: str) -> int | None:
    """The descriptor that ``/dev/stdout``, ``/dev/fd/N`` or ``/proc/self/fd/N`` names.

    Writing to it directly keeps what the shell set up (``>> log`` appends);
    opening the path again would start at offset 0 of the log.
    """
    if path in _STD_STREAMS:
        return _STD_STREAMS[path]
    match = _FD_PATH.fullmatch(path)
    return int(match.group(1)) if match else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_report_file(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path``; any failure is an :class:`AuditError`
    naming the path (one line, exit code 2).

    * a regular file (or none yet) is replaced atomically: a temporary file
      next to it is written and renamed over it, so a CI job archiving it
      never sees half a report; an existing file keeps its mode, a new one
      gets 0644; missing parent directories are created;
    * a symlink is refused: following it would let a committed link aim the
      report at any file the job can write;
    * ``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/N`` are written to that
      descriptor as it is (``>> log`` keeps appending); a FIFO or a character
      device is opened for writing without truncation and written through.
    """
    import stat
    import tempfile

    given = Path(os.fspath(path)).expanduser()
    data = text.encode("utf-8")
    tmp: str | None = None
    try:
        fd = _stream_fd(os.fspath(given))
        if fd is not None:
            import sys

            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            _write_all(fd, data)
            return
        try:
            found: os.stat_result | None = os.lstat(given)
        except FileNotFoundError:
            found = None
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise AuditError(
                f"refusing to write the report to {os.fspath(path)!r}: it is a"
                " symbolic link (give the path of the file itself)."
            )
        if found is not None and (
            stat.S_ISFIFO(found.st_mode) or stat.S_ISCHR(found.st_mode)
        ):
            _write_through(given, data)
            return
        if found is not None and not stat.S_ISREG(found.st_mode):
            raise IsADirectoryError(21, "Not a regular file", str(given))
        if given.parent.exists() and not given.parent.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(given.parent))
        given.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(found.st_mode) if found is not None else 0o644
        fd, tmp = tempfile.mkstemp(
            dir=os.fspath(given.parent), prefix=f".{given.name}.", suffix=".tmp"
        )
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        Path(tmp).chmod(mode)  # mkstemp makes it 0600
        Path(tmp).replace(
            given
        )  # rename(2): a symlink put there now is replaced, not followed
        tmp = None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise AuditError(
            f"cannot write the report to {os.fspath(path)!r}: {reason}."
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()


def _write_through(path: Path, data: bytes) -> None:
    """A FIFO or character device: opened without truncation or following a
    link put there since it was looked at, checked again once open."""
    import stat

    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            raise OSError(22, "Changed while being opened", str(path))
        _write_all(fd, data)
    finally:
        os.close(fd)
