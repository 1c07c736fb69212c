"""What installing the lock file would do to the target environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Callable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version

from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from collections.abc import Sequence


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


#: Given the planned changes (without requirements) and a reader of one
#: change's requirements, the names of the changes whose requirements count.
Reach = Callable[
    ["Sequence[PlannedChange]", Callable[[str], "Sequence[str]"]], "set[str]"
]
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def reach_from(roots: Iterable[str], installed: Mapping[str, Sequence[str]]) -> Reach:
    """A :data:`Reach` for Poetry's closure after the plan: the planned
    packages reachable from ``roots`` (Poetry and its plugins) through the
    planned versions' requirements and the installed ones' (``installed``:
    name -> requirements), every marker and extra taken (a superset). Only
    those can become a requirement of Poetry's; the rest need none read."""
    start = [canonicalize_name(r) for r in roots]

    def reach(
        changes: Sequence[PlannedChange], requirements: Callable[[str], Sequence[str]]
    ) -> set[str]:
        planned = {c.name: c for c in changes}
        seen: set[str] = set()
        wanted: set[str] = set()
        queue = list(start)
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            seen.add(name)
            change = planned.get(name)
            if change is not None and change.action is Action.REMOVE:
                continue
            if change is not None:
                wanted.add(name)
                raws: Sequence[str] = requirements(name)
            else:
                raws = installed.get(name, ())
            for raw in raws:
                match = _REQUIREMENT_NAME.match(raw)
                if match:
                    queue.append(canonicalize_name(match.group(1)))
        return wanted

    return reach
