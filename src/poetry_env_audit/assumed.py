"""What ``env-audit --assume-shared`` and ``--poetry VERSION`` judge against.

``--assume-shared`` judges the lock as if the running Poetry shared the target
(the image recipe: ``pip install poetry`` into the image's Python and
``virtualenvs.create false``). ``--poetry VERSION [--python X.Y]`` goes one
step further: the Poetry judged against is the closure ``pip install
"poetry==VERSION"`` would install today on that Python, resolved by Poetry's
own solver (``seams.closure``) and kept here as plain values, so that the
verdicts come from the same engine (:func:`image_environment` is the
:class:`~poetry_env_audit.poetry_env.PoetryEnvironment` that engine reads).

Everything in this module is pure, but for the small cache file
(:func:`read_cache`, :func:`write_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version

from poetry_env_audit.errors import AuditError
from poetry_env_audit.poetry_env import POETRY
from poetry_env_audit.poetry_env import DistInfo
from poetry_env_audit.poetry_env import Installation
from poetry_env_audit.poetry_env import PoetryEnvironment
from poetry_env_audit.poetry_env import resolve_closure
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping

#: How long a resolved closure is reused without asking the index again.
CACHE_TTL = 24 * 3600
#: Cache file layout version (a change makes old files unreadable, not wrong).
CACHE_FORMAT = 1
#: The image's site-packages as reports show it: a name, not a path on this machine.
IMAGE_SITE = "<image>/site-packages"

_PYTHON = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_PLUGIN = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:==(\S+))?")


#: The patch release ``--python X.Y`` stands for: an image's ``python:X.Y`` is
#: its newest patch release, so markers and ``Requires-Python`` see a patch
#: above every real one (``cryptography`` excludes 3.9.0 and 3.9.1, say).
NEWEST_PATCH = 99


@dataclass(frozen=True)
class PythonTarget:
    """The image's Python: ``X.Y`` (its newest patch release) or ``X.Y.Z``."""

    major: int
    minor: int
    micro: int | None = None

    @property
    def text(self) -> str:
        base = f"{self.major}.{self.minor}"
        return base if self.micro is None else f"{base}.{self.micro}"

    @property
    def patch(self) -> int:
        return NEWEST_PATCH if self.micro is None else self.micro

    @property
    def full(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def info(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


def parse_python(text: str) -> PythonTarget:
    match = _PYTHON.fullmatch(text.strip())
    if match is None or int(match[1]) < 3:
        raise AuditError(f"--python {text!r}: expected a Python version X.Y or X.Y.Z.")
    micro = int(match[3]) if match[3] is not None else None
    return PythonTarget(int(match[1]), int(match[2]), micro)


@dataclass(frozen=True)
class PluginSpec:
    """``--with-plugin NAME[==VERSION]``."""

    name: str
    version: str | None = None

    @property
    def text(self) -> str:
        return self.name if self.version is None else f"{self.name}=={self.version}"


def parse_plugin(text: str) -> PluginSpec:
    match = _PLUGIN.fullmatch(text.strip())
    version = match[2] if match else None
    if match is None or (version is not None and not _is_version(version)):
        raise AuditError(
            f"--with-plugin {text!r}: expected NAME or NAME==VERSION (a plugin's"
            " distribution name and an exact version)."
        )
    return PluginSpec(canonicalize_name(match[1]), version)


def parse_poetry_version(text: str) -> str:
    value = text.strip()
    if not _is_version(value):
        raise AuditError(f"--poetry {text!r}: expected a Poetry version, e.g. 2.5.1.")
    return value


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@dataclass(frozen=True)
class Assumption:
    """What the user asked env-audit to assume instead of looking.

    ``poetry`` ``None``: the running Poetry shares the target
    (``--assume-shared``); else the image's Poetry (``--poetry``), on
    ``python``, with ``plugins``, resolved from ``index_url`` or the project's
    sources.
    """

    poetry: str | None = None
    python: PythonTarget | None = None
    index_url: str | None = None
    plugins: tuple[PluginSpec, ...] = ()

    @property
    def image(self) -> bool:
        return self.poetry is not None

    def flags(self) -> str:
        """The options as the user would write them (for the report's header)."""
        if self.poetry is None:
            return "--assume-shared"
        parts = [f"--poetry {self.poetry}"]
        if self.python is not None:
            parts.append(f"--python {self.python.text}")
        parts.extend(f"--with-plugin {p.text}" for p in self.plugins)
        if self.index_url:
            parts.append(f"--index-url {self.index_url}")
        return " ".join(parts)


def assumption_from_options(
    *,
    assume_shared: bool,
    poetry: str | None,
    python: str | None,
    index_url: str | None,
    plugins: Iterable[str],
) -> Assumption | None:
    """The :class:`Assumption` the command line asks for, or ``None`` (look
    at the real target). ``--python``, ``--index-url`` and ``--with-plugin``
    mean nothing without ``--poetry``."""
    plugin_specs = tuple(parse_plugin(p) for p in plugins)
    if poetry is None:
        extra = [
            name
            for name, given in (
                ("--python", python),
                ("--index-url", index_url),
                ("--with-plugin", plugin_specs),
            )
            if given
        ]
        if extra:
            raise AuditError(f"{', '.join(extra)} needs --poetry VERSION.")
        return Assumption() if assume_shared else None
    names = [p.name for p in plugin_specs]
    if POETRY in names or len(set(names)) != len(names):
        raise AuditError("--with-plugin: each plugin once, and not poetry itself.")
    return Assumption(
        poetry=parse_poetry_version(poetry),
        python=parse_python(python) if python is not None else None,
        index_url=index_url.strip() if index_url else None,
        plugins=plugin_specs,
    )


# ------------------------------------------------------------------ the closure


@dataclass(frozen=True)
class ResolvedPackage:
    """One distribution of the resolved closure, with its requirements (PEP 508,
    optional ones under their ``extra`` markers)."""

    name: str
    display_name: str
    version: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedClosure:
    """What ``pip install "poetry==VERSION"`` (and the plugins) would install
    on ``python``, resolved from ``sources`` at ``resolved_at`` (epoch)."""

    poetry: str
    python: str
    plugins: tuple[str, ...]
    sources: tuple[str, ...]
    resolved_at: float
    packages: tuple[ResolvedPackage, ...]
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "poetry": self.poetry,
            "python": self.python,
            "plugins": list(self.plugins),
            "sources": list(self.sources),
            "resolved_at": self.resolved_at,
            "packages": [
                {
                    "name": p.name,
                    "display_name": p.display_name,
                    "version": p.version,
                    "requires": list(p.requires),
                }
                for p in self.packages
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> ResolvedClosure:
        """Raises ``ValueError`` (or ``KeyError``/``TypeError``) for anything
        but a file :meth:`to_json` wrote."""
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise ValueError("another cache format")
        return cls(
            poetry=str(data["poetry"]),
            python=str(data["python"]),
            plugins=tuple(str(p) for p in data["plugins"]),
            sources=tuple(str(s) for s in data["sources"]),
            resolved_at=float(data["resolved_at"]),
            packages=tuple(
                ResolvedPackage(
                    name=str(p["name"]),
                    display_name=str(p["display_name"]),
                    version=str(p["version"]),
                    requires=tuple(str(r) for r in p["requires"]),
                )
                for p in data["packages"]
            ),
            cached=True,
        )


def cache_key(
    poetry: str, python: str, sources: Iterable[str], plugins: Iterable[str]
) -> str:
    """One file per (Poetry version, Python, sources, plugins)."""
    text = json.dumps([poetry, python, sorted(sources), sorted(plugins)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_path(cache_dir: str | os.PathLike[str], key: str) -> Path:
    return Path(cache_dir) / "env-audit" / "closures" / f"{key}.json"


def read_cache(
    path: Path, *, now: float, ttl: float = CACHE_TTL
) -> ResolvedClosure | None:
    """The closure cached at ``path`` if younger than ``ttl`` seconds, else ``None``
    (missing, unreadable, written by another format, or too old)."""
    try:
        closure = ResolvedClosure.from_json(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not 0 <= now - closure.resolved_at < ttl:
        return None
    return closure


def write_cache(path: Path, closure: ResolvedClosure) -> None:
    """Replace ``path`` atomically; a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".closure-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(closure.to_json(), stream, indent=1)
        Path(tmp).replace(path)
    except OSError:
        return


# ------------------------------------------------------------- the image itself


def image_marker_env(
    base: Mapping[str, Any], python: PythonTarget, machine: str
) -> dict[str, Any]:
    """``base`` (a marker environment of this machine, as Poetry's ``Env``
    computes it) as the image's CPython ``python`` on Linux would give it:
    deploy images are Linux, whatever the machine judging the lock."""
    env = dict(base)
    env.update(
        python_version=f"{python.major}.{python.minor}",
        python_full_version=python.full,
        implementation_version=python.full,
        implementation_name="cpython",
        platform_python_implementation="CPython",
        python_implementation="CPython",
        interpreter_name="cpython",
        interpreter_version=f"cp{python.major}{python.minor}",
        version_info=(*python.info, "final", 0),
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        platform_machine=machine,
    )
    return env


def image_machine(machine: str, system: str) -> str:
    """The image's ``platform_machine``: this machine's on Linux, else x86_64
    (``arm64`` of a Mac is ``aarch64`` in a Linux image)."""
    if system == "Linux":
        return machine
    return "aarch64" if machine.lower() in ("arm64", "aarch64") else "x86_64"


def string_markers(env: Mapping[str, Any]) -> dict[str, str]:
    """The PEP 508 part of a marker environment (what :mod:`packaging` reads)."""
    return {k: v for k, v in env.items() if isinstance(v, str)}


def image_index(
    closure: ResolvedClosure, marker_env: Mapping[str, str]
) -> dict[str, DistInfo]:
    """The closure as installed in the image: only what Poetry and the plugins
    need under the image's markers (a solve may also list packages for other
    platforms or Pythons)."""
    everything = {
        p.name: DistInfo(
            name=p.name,
            display_name=p.display_name,
            version=p.version,
            location=IMAGE_SITE,
            requires=p.requires,
            plugin_groups=("poetry.application.plugin",)
            if p.name in closure.plugins
            else (),
        )
        for p in closure.packages
    }
    needed = resolve_closure(everything, (POETRY, *closure.plugins), marker_env)
    return {d.name: everything[d.name] for d in needed.needed if d.name in everything}


def image_environment(
    closure: ResolvedClosure, marker_env: Mapping[str, str]
) -> PoetryEnvironment:
    """The :class:`PoetryEnvironment` of an image that just ran ``pip install
    "poetry==VERSION"`` (and the plugins): the engine judges against it
    exactly as against the running Poetry's."""
    index = image_index(closure, marker_env)
    plugins = tuple(sorted(p for p in closure.plugins if p in index))
    resolved = resolve_closure(index, (POETRY, *plugins), marker_env)
    return PoetryEnvironment(
        version=closure.poetry,
        python=closure.python,
        prefix="<image>",
        base_prefix="<image>",
        import_paths=(IMAGE_SITE,),
        plugins=plugins,
        needed=resolved.needed,
        problems=resolved.problems,
        vendored=(),
        installation=Installation(
            kind="system",
            isolated=False,
            externally_managed=False,
            externally_managed_message=None,
            others=(),
        ),
        index=index,
        marker_env=dict(marker_env),
        unverifiable=resolved.unverifiable,
    )


def image_target(closure: ResolvedClosure) -> TargetEnvironment:
    """The image's Python as the target: Poetry's own site-packages, by the
    image recipe's ``virtualenvs.create = false``."""
    return TargetEnvironment(
        path=f"<image: Python {closure.python} + poetry=={closure.poetry}>",
        python=closure.python,
        kind=TargetKind.SYSTEM,
        reason=TargetReason.CREATE_FALSE,
        site_dirs=(IMAGE_SITE,),
        shared_dirs=(IMAGE_SITE,),
    )


@dataclass(frozen=True)
class Assumed:
    """What a report was judged against, for its header and its JSON."""

    flags: str
    closure: ResolvedClosure | None = None

    def describe(self) -> str:
        if self.closure is None:
            return (
                f"assumed ({self.flags}): the running Poetry shares the environment"
                " the project installs into, as in an image that pip-installs Poetry"
                " and sets virtualenvs.create false; the real target is not looked at."
            )
        closure = self.closure
        where = ", ".join(closure.sources) or "the project's sources"
        plugins = f" with {', '.join(closure.plugins)}" if closure.plugins else ""
        how = "cached" if closure.cached else "resolved"
        return (
            f'assumed ({self.flags}): the environment `pip install "poetry=='
            f'{closure.poetry}"`{plugins} makes on a Linux CPython {closure.python}'
            f" ({len(closure.packages)} packages, {how} from {where} at"
            f" {_utc(closure.resolved_at)})."
        )


def _utc(epoch: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
