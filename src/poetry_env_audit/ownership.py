"""Ownership by file: a wheel of another name that would write a file of a
distribution Poetry needs.

Distribution names are not the only way to change what Poetry imports: a
wheel named ``tomlkit-shadow`` that ships ``tomlkit/__init__.py`` (real
example: ``msgpack-python`` installing over ``msgpack``) overwrites Poetry's
``tomlkit``. :func:`protected_files` maps every file of the distributions
Poetry needs, from their installed ``RECORD``, to its owner;
:func:`collisions` lists the files a wheel archive would write over them.
Pure reading, no Poetry import: the seam that calls it is
:func:`poetry_env_audit.seams.executor.check_wheel_installs`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from poetry_env_audit.controls import replace_controls

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from os import PathLike

    from poetry_env_audit.poetry_env import PoetryEnvironment


@dataclass(frozen=True)
class Owner:
    name: str  # canonical
    display_name: str
    version: str


@dataclass(frozen=True)
class Collision:
    """``wheel`` would write ``path``, a file of ``owner``."""

    wheel: str
    path: str
    owner: Owner

    def describe(self) -> str:
        return (
            f"{self.wheel} would overwrite {self.path} of"
            f" {self.owner.display_name} {self.owner.version}"
        )


def _site_relative(entry: str) -> str | None:
    """A RECORD or archive path as a path under site-packages, or ``None``
    for one outside it (scripts, headers, ``../../bin/x``)."""
    path = PurePosixPath(entry.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path.as_posix()


def protected_files(
    poetry: PoetryEnvironment, shared_dirs: Iterable[str]
) -> dict[str, Owner]:
    """Site-relative path -> owner, for each distribution Poetry needs that
    lives in one of ``shared_dirs`` (the directories the install writes to)."""
    from importlib import metadata

    shared = list(dict.fromkeys(shared_dirs))
    needed = {d.name: d for d in poetry.needed if d.location in shared}
    out: dict[str, Owner] = {}
    if not needed:
        return out
    for dist in metadata.distributions(path=shared):
        try:
            name = canonicalize_name(dist.metadata["Name"] or "")
        except (KeyError, ValueError):
            continue
        want = needed.get(name)
        if want is None or name in {o.name for o in out.values()}:
            continue
        owner = Owner(name, want.display_name, want.version or "")
        for entry in dist.files or ():
            rel = _site_relative(str(entry))
            if rel is not None and not rel.endswith(".pyc"):
                out.setdefault(rel, owner)
    return out


def wheel_files(archive: str | PathLike[str]) -> tuple[str | None, list[str]]:
    """The wheel's (canonical) distribution name and the site-relative paths
    it writes (``.data/purelib`` and ``.data/platlib`` included)."""
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    dist_name: str | None = None
    paths: list[str] = []
    for raw in names:
        if raw.endswith("/"):
            continue
        parts = raw.split("/")
        top = parts[0]
        if top.endswith(".dist-info") and len(parts) == 2 and parts[1] == "METADATA":
            dist_name = canonicalize_name(top[: -len(".dist-info")].rsplit("-", 1)[0])
        if top.endswith(".data") and len(parts) > 2:
            if parts[1] not in ("purelib", "platlib"):
                continue
            raw = "/".join(parts[2:])
        rel = _site_relative(raw)
        if rel is not None:
            paths.append(rel)
    return dist_name, paths


def collisions(
    archive: str | PathLike[str], protected: Mapping[str, Owner]
) -> list[Collision]:
    """The files of ``protected`` that the wheel at ``archive`` would write,
    except those of a distribution of its own name (an ordinary update)."""
    if not protected:
        return []
    dist_name, paths = wheel_files(archive)
    wheel = replace_controls(dist_name or PurePosixPath(str(archive)).name)
    found: list[Collision] = []
    for path in paths:
        owner = protected.get(path)
        if owner is not None and owner.name != dist_name:
            found.append(
                Collision(wheel=wheel, path=replace_controls(path), owner=owner)
            )
    return found
