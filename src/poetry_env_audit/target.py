"""The environment an installing command writes to, and whether Poetry lives there."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Iterable


class TargetKind(StrEnum):
    SYSTEM = "system"
    VENV = "venv"
    CONDA = "conda"
    NEW_VENV = "new-venv"  # Poetry would create one: nothing there yet
    POETRY = "poetry"  # Poetry's own environment (``poetry self``)


class TargetReason(StrEnum):
    """Why Poetry installs into the target (what the user set, as Poetry reads it)."""

    CREATE_FALSE = "virtualenvs.create = false"
    VIRTUAL_ENV = "VIRTUAL_ENV"
    CONDA_PREFIX = "CONDA_PREFIX"
    IN_PROJECT = "in-project .venv"
    MANAGED = "managed virtualenv"
    NEW_VENV = "Poetry would create a new virtualenv"
    SELF = "poetry self"


@dataclass(frozen=True)
class TargetEnvironment:
    """Where the install goes.

    ``reason`` says why Poetry picks it (``VIRTUAL_ENV``, ``virtualenvs.create
    = false``, ...). ``shared_dirs`` are the target's site-packages directories
    that Poetry also imports from, compared as real paths.
    """

    path: str
    python: str | None
    kind: TargetKind
    reason: TargetReason
    site_dirs: tuple[str, ...]
    shared_dirs: tuple[str, ...]
    externally_managed: str | None = None

    @property
    def shared(self) -> bool:
        return bool(self.shared_dirs)

    @property
    def exists(self) -> bool:
        return self.kind is not TargetKind.NEW_VENV


def real_dirs(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Real paths of the directories that exist, in order, without duplicates."""
    out: dict[str, None] = {}
    for path in paths:
        real = os.path.realpath(os.fspath(path))
        if Path(real).is_dir():
            out.setdefault(real, None)
    return tuple(out)


def overlap(site_dirs: Iterable[str], import_paths: Iterable[str]) -> tuple[str, ...]:
    """Directories in both lists, by real path, in ``site_dirs`` order."""
    imported = {os.path.realpath(p) for p in import_paths}
    return tuple(d for d in (os.path.realpath(s) for s in site_dirs) if d in imported)
