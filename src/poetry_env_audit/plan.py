"""What installing the lock file would do to the target environment."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion
from packaging.version import Version

from poetry_env_audit.values import StrEnum


class Action(StrEnum):
    INSTALL = "install"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    REINSTALL = "reinstall"
    REMOVE = "remove"
    #: A wheel of another name writes over the package's files (ownership by file).
    OVERWRITE = "overwrite"


@dataclass(frozen=True)
class PlannedChange:
    """One operation Poetry would execute, reduced to what matters here.

    ``requires`` are the PEP 508 requirements of the planned version (from the
    lock), used to check what Poetry would need after the change;
    ``unreadable`` the ones that have no PEP 508 form, as Poetry wrote them.
    """

    name: str
    display_name: str
    action: Action
    current: str | None
    planned: str | None
    requires: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    #: Poetry's ``source_type`` of the planned package (``None``: an index).
    source_type: str | None = None
    #: The wheel a ``file`` source installs, where it is one on disk.
    local_wheel: str | None = None


def classify(job_type: str, current: str | None, planned: str | None) -> Action:
    """Map Poetry's ``install|update|uninstall`` and two versions to an :class:`Action`."""
    if job_type not in ("install", "update", "uninstall"):
        raise ValueError(f"unknown operation type {job_type!r}")
    if job_type == "uninstall":
        return Action.REMOVE
    if job_type == "install" or current is None:
        return Action.INSTALL
    if planned is None or current == planned:
        return Action.REINSTALL
    try:
        before, after = Version(current), Version(planned)
    except InvalidVersion:
        if _natural_key(planned) == _natural_key(current):
            return Action.REINSTALL
        return (
            Action.UPGRADE
            if _natural_key(planned) > _natural_key(current)
            else Action.DOWNGRADE
        )
    if after == before:
        return Action.REINSTALL
    return Action.UPGRADE if after > before else Action.DOWNGRADE


def _natural_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order for versions that are not PEP 440: numbers compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.findall(r"\d+|[A-Za-z]+", version)
    )
