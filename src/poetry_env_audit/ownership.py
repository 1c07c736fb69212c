"""Ownership by file: a wheel of another name that would write a file of a
distribution Poetry needs.

Distribution names are not the only way to change what Poetry imports: a
wheel named ``tomlkit-shadow`` that ships ``tomlkit/__init__.py`` (real
example: ``msgpack-python`` installing over ``msgpack``) overwrites Poetry's
``tomlkit``. :func:`protected_files` maps every file of the distributions
Poetry needs, from their installed ``RECORD``, to its owner;
:func:`collisions` lists the files a wheel archive would write over them,
each compared byte for byte with the installed file; :func:`overwrites`
groups them by (wheel, owner).

Such a wheel is a change of the owner that no version check sees. Its end
state is still valid exactly when every file it writes over one of the
owner's has the bytes that are there now (``identical``): the owner is left
byte for byte as Poetry reads it, so every requirement on it still holds
whatever the wheel's own version says. Then it is a ``changes`` (serialised:
the installer rewrites each file in place, and a reader in between would
see half of it); any other content is ``breaks``. A wheel's version says
nothing about the owner's (``msgpack-python`` 0.5 over ``msgpack`` 1.1), so
it is not compared with Poetry's requirements.

Pure reading, no Poetry import: the guard calls it on the archives of the
planned operations before the first one runs (and on every wheel as it is
written), ``poetry env-audit`` on the archives Poetry's cache already holds.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from typing import Callable

from packaging.utils import canonicalize_name

from poetry_env_audit.controls import replace_controls

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from os import PathLike

    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.poetry_env import PoetryEnvironment


@dataclass(frozen=True)
class Owner:
    """A distribution Poetry needs, as the owner of files in its site directory."""

    name: str  # canonical
    display_name: str
    version: str
    #: The directory its files are in (site-relative paths are relative to it).
    site: str = ""


@dataclass(frozen=True)
class Collision:
    """``wheel`` would write ``path``, a file of ``owner``; ``identical``:
    with exactly the bytes installed there now."""

    wheel: str
    path: str
    owner: Owner
    identical: bool = False
    wheel_version: str = ""

    def describe(self) -> str:
        return (
            f"{self.wheel} would overwrite {self.path} of"
            f" {self.owner.display_name} {self.owner.version}"
        )


@dataclass(frozen=True)
class Overwrite:
    """One wheel writing over files of one distribution Poetry needs."""

    wheel: str
    wheel_version: str
    owner: Owner
    paths: tuple[str, ...]
    #: Every one of ``paths`` gets the bytes it has now: the end state is valid.
    identical: bool

    def describe(self) -> str:
        more = f" (and {len(self.paths) - 1} more files)" if len(self.paths) > 1 else ""
        what = "the same bytes" if self.identical else "other content"
        wheel = f"{self.wheel} {self.wheel_version}".strip()
        return (
            f"{wheel} would overwrite {self.paths[0]}{more} of"
            f" {self.owner.display_name} {self.owner.version} with {what}"
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
        owner = Owner(
            name, want.display_name, want.version or "", str(dist.locate_file(""))
        )
        for entry in dist.files or ():
            rel = _site_relative(str(entry))
            if rel is not None and not rel.endswith(".pyc"):
                out.setdefault(rel, owner)
    return out


def _members(
    names: Iterable[str],
) -> tuple[str | None, str, list[tuple[str, str]]]:
    """The wheel's (canonical) name, its version and ``(member, site-relative
    path)`` for each file it writes (``.data/purelib`` and ``platlib`` included)."""
    dist_name: str | None = None
    version = ""
    out: list[tuple[str, str]] = []
    for raw in names:
        if raw.endswith("/"):
            continue
        parts = raw.split("/")
        top = parts[0]
        if top.endswith(".dist-info") and len(parts) == 2 and parts[1] == "METADATA":
            stem, _, version = top[: -len(".dist-info")].rpartition("-")
            dist_name = canonicalize_name(stem or version)
        rel_raw = raw
        if top.endswith(".data") and len(parts) > 2:
            if parts[1] not in ("purelib", "platlib"):
                continue
            rel_raw = "/".join(parts[2:])
        rel = _site_relative(rel_raw)
        if rel is not None:
            out.append((raw, rel))
    return dist_name, version, out


def wheel_files(archive: str | PathLike[str]) -> tuple[str | None, list[str]]:
    """The wheel's (canonical) distribution name and the site-relative paths
    it writes (``.data/purelib`` and ``.data/platlib`` included)."""
    with zipfile.ZipFile(archive) as zf:
        name, _, members = _members(zf.namelist())
    return name, [rel for _, rel in members]


def _installed_digest(owner: Owner, path: str) -> bytes | None:
    from pathlib import Path

    try:
        return hashlib.sha256((Path(owner.site) / path).read_bytes()).digest()
    except OSError:
        return None


def collisions(
    archive: str | PathLike[str], protected: Mapping[str, Owner]
) -> list[Collision]:
    """The files of ``protected`` that the wheel at ``archive`` would write,
    except those of a distribution of its own name (an ordinary update),
    each compared with the installed file."""
    if not protected:
        return []
    found: list[Collision] = []
    with zipfile.ZipFile(archive) as zf:
        dist_name, version, members = _members(zf.namelist())
        wheel = replace_controls(dist_name or PurePosixPath(str(archive)).name)
        for member, path in members:
            owner = protected.get(path)
            if owner is None or owner.name == dist_name:
                continue
            installed = _installed_digest(owner, path)
            identical = (
                installed is not None
                and hashlib.sha256(zf.read(member)).digest() == installed
            )
            found.append(
                Collision(
                    wheel=wheel,
                    path=replace_controls(path),
                    owner=owner,
                    identical=identical,
                    wheel_version=replace_controls(version),
                )
            )
    return found


def overwrites(found: Iterable[Collision]) -> list[Overwrite]:
    """``found`` grouped by (wheel, owner), in order of first appearance."""
    groups: dict[tuple[str, str], list[Collision]] = {}
    for collision in found:
        groups.setdefault((collision.wheel, collision.owner.name), []).append(collision)
    return [
        Overwrite(
            wheel=items[0].wheel,
            wheel_version=items[0].wheel_version,
            owner=items[0].owner,
            paths=tuple(c.path for c in items),
            identical=all(c.identical for c in items),
        )
        for items in groups.values()
    ]


@dataclass(frozen=True)
class PlannedCheck:
    """Ownership by file over a plan, from archives already on disk."""

    overwrites: tuple[Overwrite, ...] = ()
    checked: int = 0
    #: Planned wheels not on disk (not in Poetry's cache, or built by the
    #: install from a directory): not checked, nothing is downloaded.
    unchecked: int = 0


def check_planned(
    changes: Iterable[PlannedChange],
    protected: Mapping[str, Owner],
    find_cached: Callable[[str, str], str | PathLike[str] | None],
) -> PlannedCheck:
    """The planned installs' wheels checked against ``protected``: a ``file``
    source's own wheel, else the cache's wheel of that name and version
    (``find_cached``); a directory is built by the install, never cached."""
    from poetry_env_audit.plan import Action

    found: list[Collision] = []
    checked = unchecked = 0
    for change in changes:
        if change.action is Action.REMOVE or not change.planned:
            continue
        archive: str | PathLike[str] | None = change.local_wheel
        if archive is None and change.source_type != "directory":
            archive = find_cached(change.name, change.planned)
        if archive is None:
            unchecked += 1
            continue
        try:
            found.extend(collisions(archive, protected))
        except (OSError, zipfile.BadZipFile):
            unchecked += 1
            continue
        checked += 1
    return PlannedCheck(tuple(overwrites(found)), checked, unchecked)
