"""CI systems: which one runs us, which format it reads, and the report file it archives.

:func:`detect` and :func:`auto_format` are pure functions of the environment
variables; :func:`display_path` is pure path arithmetic. Only
:func:`lock_lines_for` and :func:`write_report_file` touch the file system.
"""

from __future__ import annotations

import contextlib
import os
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


def write_report_file(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically, creating its parent directories.

    A temporary file next to the target is written and then renamed over it,
    so a CI job archiving the file never sees half a report. Any failure is an
    :class:`AuditError` naming the path (one line, exit code 2).
    """
    import tempfile

    given = Path(os.fspath(path)).expanduser()
    # Through a symlink to the file it names; a device or pipe is written as is.
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    tmp: str | None = None
    try:
        if target.exists() and not target.is_file():
            with target.open("w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            return
        if target.parent.exists() and not target.parent.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(target.parent))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=os.fspath(target.parent), prefix=f".{target.name}.", suffix=".tmp"
        )
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        Path(tmp).chmod(0o644)  # mkstemp makes it 0600; a report is for others to read
        Path(tmp).replace(target)
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
