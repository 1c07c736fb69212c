"""Wheels already in Poetry's artifact cache, found without downloading.

Poetry keeps every archive it downloaded (and every wheel it built from an
sdist) under ``<cache-dir>/artifacts/<hash of the link>/``. The directory
names cannot be computed without the link, which only an index knows, so
:class:`CachedWheels` walks the cache once and indexes its wheels by name
and version; ``poetry self isolate`` and ``poetry env-audit`` look them up.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename
from packaging.utils import canonicalize_name
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion
from packaging.version import Version

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


@dataclass(frozen=True)
class CachedWheels:
    """The wheels under one cache directory that this interpreter can install,
    by ``(canonical name, version)``; the first by path wins."""

    wheels: dict[tuple[str, Version], Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path | None, supported: Iterable[str]) -> CachedWheels:
        """Index ``root`` (recursively) for wheels with one of the ``supported`` tags."""
        found: dict[tuple[str, Version], Path] = {}
        if root is None or not root.is_dir():
            return cls(found)
        tags = frozenset(supported)
        for wheel in sorted(root.rglob("*.whl")):
            try:
                name, version, _, wheel_tags = parse_wheel_filename(wheel.name)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if any(str(tag) in tags for tag in wheel_tags):
                found.setdefault((str(name), version), wheel)
        return cls(found)

    def find(self, name: str, version: str) -> Path | None:
        """A wheel of exactly ``name`` ``version``, if the cache has one."""
        try:
            wanted = Version(version)
        except InvalidVersion:
            return None
        return self.wheels.get((str(canonicalize_name(name)), wanted))


def poetry_cache() -> CachedWheels:
    """Poetry's artifact cache, for the running interpreter's tags."""
    from packaging.tags import sys_tags

    from poetry_env_audit.seams.isolation import artifacts_dir

    return CachedWheels.scan(artifacts_dir(), (str(tag) for tag in sys_tags()))
