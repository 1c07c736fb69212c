"""Poetry's own environment: what the running Poetry imports and what it needs.

Everything here reads package metadata with :mod:`importlib.metadata` and
evaluates requirements with :mod:`packaging`; nothing imports Poetry. The pure
part (:func:`resolve_closure`) works on plain
:class:`DistInfo` records so that tests can feed it small tables.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version

from poetry_env_audit.controls import replace_controls

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from collections.abc import Sequence

PLUGIN_GROUPS = ("poetry.application.plugin", "poetry.plugin")
POETRY = "poetry"
#: Installed next to Poetry by every installer; their presence does not make an
#: environment "shared".
BOOTSTRAP_DISTS = frozenset({"pip", "setuptools", "wheel", "distribute"})
#: The file ``poetry self isolate`` leaves in the environment it made.
ISOLATED_MARKER = "poetry-env-audit-isolated"
#: ``poetry self isolate``, as remedies print it.
ISOLATE_COMMAND = "poetry self isolate"
#: Installation kinds that already are a dedicated environment.
DEDICATED_KINDS = frozenset({"pipx", "installer"})


@dataclass(frozen=True)
class DistInfo:
    """One installed distribution as found on a search path."""

    name: str
    display_name: str
    version: str
    location: str
    requires: tuple[str, ...] = ()
    plugin_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequiredBy:
    """``package version`` requires ``requirement`` (markers already evaluated)."""

    package: str
    version: str
    requirement: str
    specifier: str

    def allows(self, version: str | None) -> bool:
        if version is None:
            return False
        return version_satisfies(version, self.specifier)

    def describe(self) -> str:
        return f"{self.package} {self.version} requires {self.requirement}"


@dataclass(frozen=True)
class NeededDist:
    """A distribution that Poetry or a Poetry plugin needs at run time."""

    name: str
    display_name: str
    version: str | None
    location: str | None
    required_by: tuple[RequiredBy, ...]
    roots: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """A requirement of Poetry's closure that is not satisfied today."""

    package: str
    installed: str | None
    required_by: RequiredBy | None
    detail: str

    def describe(self) -> str:
        return self.detail


@dataclass(frozen=True)
class Unverifiable:
    """A requirement of Poetry's closure that could not be evaluated.

    ``package`` is the (canonical) name it constrains, ``None`` when not even
    that can be read: then every change to Poetry's packages is unverified.
    """

    package: str | None
    requirer: str
    version: str
    requirement: str
    reason: str

    def describe(self) -> str:
        return (
            f"{self.requirer} {self.version} requires {shorten(self.requirement)},"
            f" which could not be read ({self.reason})"
        )


def shorten(text: str, width: int = 60) -> str:
    """``text`` on one line, at most ``width`` characters (a marker can be huge)."""
    flat = replace_controls(" ".join(text.split()))
    return flat if len(flat) <= width else flat[: width - 3] + "..."


_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def requirement_name(raw: str) -> str | None:
    """The canonical project name a requirement text starts with, if any."""
    match = _NAME.match(raw)
    return canonicalize_name(match.group(1)) if match else None


@dataclass(frozen=True)
class VendoredDist:
    """A distribution vendored inside another (poetry-core's), by its own metadata."""

    name: str
    version: str
    location: str


@dataclass(frozen=True)
class Installation:
    """How Poetry was installed."""

    kind: str  # pipx | installer | venv | conda | user | system
    isolated: bool
    externally_managed: bool
    externally_managed_message: str | None
    others: tuple[str, ...]  # distributions in Poetry's env that Poetry does not need
    #: Made by ``poetry self isolate`` (its marker is in Poetry's prefix).
    self_isolated: bool = False

    def describe(self) -> str:
        labels = {
            "pipx": "pipx",
            "installer": "the official installer",
            "venv": "a virtual environment",
            "conda": "a conda environment",
            "user": "the user site-packages",
            "system": "the system interpreter",
        }
        text = labels.get(self.kind, self.kind)
        if self.isolated:
            return f"isolated ({text})"
        if self.others:
            shown = ", ".join(self.others[:3]) + (
                ", ..." if len(self.others) > 3 else ""
            )
            return f"shared ({text}, with {len(self.others)} other packages: {shown})"
        return f"shared ({text})"


def offers_isolation(*, shared: bool, kind: str, isolated_here: bool) -> bool:
    """Whether ``poetry self isolate`` is a way out: Poetry shares the target
    and is not in a dedicated environment yet (pipx, the official installer,
    or one that command made). Here, not in :mod:`isolate`, which a remedy
    need not import."""
    return shared and kind not in DEDICATED_KINDS and not isolated_here


@dataclass(frozen=True)
class PoetryEnvironment:
    """Poetry's own environment: where it runs, what it needs, and how it was
    installed."""

    version: str
    python: str
    prefix: str
    base_prefix: str
    import_paths: tuple[str, ...]
    plugins: tuple[str, ...]
    needed: tuple[NeededDist, ...]
    problems: tuple[Problem, ...]
    vendored: tuple[VendoredDist, ...]
    installation: Installation
    index: Mapping[str, DistInfo] = field(repr=False, compare=False)
    marker_env: Mapping[str, str] = field(
        repr=False, compare=False, default_factory=dict
    )
    unverifiable: tuple[Unverifiable, ...] = ()

    def get(self, name: str) -> NeededDist | None:
        key = canonicalize_name(name)
        for dist in self.needed:
            if dist.name == key:
                return dist
        return None

    @property
    def roots(self) -> tuple[str, ...]:
        return (POETRY, *self.plugins)


# --------------------------------------------------------------------------- pure


def version_satisfies(version: str, specifier: str) -> bool:
    """``pip check`` semantics: pre-releases count when they are installed."""
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return False
    if not specifier:
        return True
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    return spec.contains(parsed, prereleases=True)


class _UnreadableMarkerError(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def _requirement(raw: str) -> Requirement:
    """Parsed once per process: the closure is resolved before and after a plan."""
    return Requirement(raw)


def _applies(req: Requirement, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    try:
        return any(
            req.marker.evaluate({**env, "extra": extra})
            for extra in ("", *sorted(extras))
        )
    except Exception as exc:  # UndefinedComparison and friends
        raise _UnreadableMarkerError(str(exc)) from exc


def requirement_text(req: Requirement) -> str:
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


@dataclass(frozen=True)
class Closure:
    """What the roots need, transitively, and what of that does not hold."""

    needed: tuple[NeededDist, ...]
    problems: tuple[Problem, ...]
    unverifiable: tuple[Unverifiable, ...] = ()


def resolve_closure(
    index: Mapping[str, DistInfo],
    roots: Sequence[str],
    marker_env: Mapping[str, str],
) -> Closure:
    """Everything ``roots`` need, transitively, with who requires what.

    Like ``pip check`` but limited to the roots' closure: requirements that are
    missing or not satisfied come back as :class:`Problem`. Two roots that
    require incompatible versions of one package show up as a problem too.
    """
    edges: dict[str, dict[tuple[str, str], RequiredBy]] = {}
    root_of: dict[str, set[str]] = {}
    problems: dict[str, Problem] = {}
    unverifiable: dict[tuple[str, str], Unverifiable] = {}
    memo: dict[tuple[str, frozenset[str]], bool] = {}

    def cannot_read(dist: DistInfo, raw: str, reason: str) -> None:
        name = requirement_name(raw)
        if name is None and not raw.strip():
            return  # an empty header constrains nothing
        unverifiable[(dist.name, raw)] = Unverifiable(
            package=name,
            requirer=dist.display_name,
            version=dist.version,
            requirement=raw,
            reason=reason,
        )

    for root in roots:
        root_name = canonicalize_name(root)
        extras_seen: dict[str, set[str]] = {}
        queue: list[tuple[str, frozenset[str]]] = [(root_name, frozenset())]
        while queue:
            name, extras = queue.pop()
            seen = extras_seen.get(name)
            if seen is not None and extras <= seen:
                continue
            extras_seen[name] = (seen or set()) | extras
            root_of.setdefault(name, set()).add(root_name)
            dist = index.get(name)
            if dist is None:
                continue
            for raw in dist.requires:
                try:
                    req = _requirement(raw)
                except RecursionError:
                    # Valid, but nested deeper than packaging's parser goes.
                    cannot_read(dist, raw, "nested too deeply to parse")
                    continue
                except (InvalidRequirement, InvalidMarker) as exc:
                    cannot_read(dist, raw, "invalid requirement")
                    key = f"invalid:{dist.name}:{raw}"
                    problems[key] = Problem(
                        package=dist.name,
                        installed=dist.version,
                        required_by=None,
                        detail=(
                            f"{dist.display_name} {dist.version} has unreadable"
                            f" metadata: requirement {raw!r} ({exc})"
                        ),
                    )
                    continue
                memo_key = (raw, frozenset(extras_seen[name]))
                try:
                    applies = memo.get(memo_key)
                    if applies is None:
                        applies = _applies(req, marker_env, extras_seen[name])
                        memo[memo_key] = applies
                except _UnreadableMarkerError as exc:
                    cannot_read(dist, raw, "its marker cannot be evaluated")
                    problems[f"marker:{dist.name}:{raw}"] = Problem(
                        package=dist.name,
                        installed=dist.version,
                        required_by=None,
                        detail=(
                            f"{dist.display_name} {dist.version} has unreadable"
                            f" metadata: marker of {raw!r} ({exc})"
                        ),
                    )
                    continue
                if not applies:
                    continue
                target = canonicalize_name(req.name)
                text = requirement_text(req)
                edges.setdefault(target, {})[(dist.name, text)] = RequiredBy(
                    package=dist.name,
                    version=dist.version,
                    requirement=text,
                    specifier=str(req.specifier),
                )
                queue.append(
                    (target, frozenset(canonicalize_name(e) for e in req.extras))
                )

    needed: list[NeededDist] = []
    for name in sorted(root_of):
        dist = index.get(name)
        required_by = tuple(
            sorted(
                (edges.get(name) or {}).values(),
                key=lambda r: (r.package, r.requirement),
            )
        )
        needed.append(
            NeededDist(
                name=name,
                display_name=dist.display_name if dist else name,
                version=dist.version if dist else None,
                location=dist.location if dist else None,
                required_by=required_by,
                roots=tuple(sorted(root_of[name])),
            )
        )
        for edge in required_by:
            if dist is None:
                problems[f"missing:{name}:{edge.package}"] = Problem(
                    package=name,
                    installed=None,
                    required_by=edge,
                    detail=f"{edge.describe()}, which is not installed",
                )
            elif not edge.allows(dist.version):
                problems[f"conflict:{name}:{edge.package}"] = Problem(
                    package=name,
                    installed=dist.version,
                    required_by=edge,
                    detail=(
                        f"{edge.describe()}, but {dist.display_name}"
                        f" {dist.version} is installed"
                    ),
                )
    return Closure(
        needed=tuple(needed),
        problems=tuple(problems.values()),
        unverifiable=tuple(unverifiable.values()),
    )


# ------------------------------------------------------------------ reading disk


def realpath(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _headers(text: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Name, Version and Requires-Dist of a METADATA file, from its header block.

    Much cheaper than :mod:`email` parsing, which ``Distribution.metadata``
    does; continuation lines are folded as RFC 822 says.
    """
    name = version = None
    requires: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        if not line:
            break  # the body (the long description) starts here
        if line[0] in " \t":
            if last == "requires-dist" and requires:
                requires[-1] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        last = key.strip().lower()
        value = value.strip()
        if last == "name" and name is None:
            name = value
        elif last == "version" and version is None:
            version = value
        elif last == "requires-dist":
            requires.append(value)
    return name, version, tuple(requires)


def _plugin_groups(text: str | None) -> tuple[str, ...]:
    if not text or "[poetry." not in text:
        return ()
    groups = {
        line.strip()[1:-1].strip()
        for line in text.splitlines()
        if line.strip().startswith("[") and line.strip().endswith("]")
    }
    return tuple(sorted(groups & set(PLUGIN_GROUPS)))


def scan_distributions(paths: Iterable[str]) -> dict[str, DistInfo]:
    """Distributions importable from ``paths``; the first one of a name wins."""
    from importlib import metadata

    found: dict[str, DistInfo] = {}
    #: One real-path walk per directory, not per distribution.
    locations: dict[str, str] = {}
    for dist in metadata.distributions(path=list(paths)):
        try:
            text = dist.read_text("METADATA")
            if text is not None:
                raw_name, version, requires = _headers(text)
            else:  # an .egg-info: let importlib.metadata read it
                meta = dist.metadata
                # ``in`` first: a missing key warns on 3.12+ and raises on 3.14.
                raw_name = meta["Name"] if "Name" in meta else None  # noqa: SIM401 - PackageMetadata has no typed .get
                version = meta["Version"] if "Version" in meta else None  # noqa: SIM401 - as above
                requires = tuple(dist.requires or ())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if not raw_name:
            continue
        # Name and Version reach terminals and CI logs: no control characters.
        raw_name = replace_controls(raw_name)
        version = replace_controls(version) if version else version
        name = canonicalize_name(raw_name)
        if name in found:
            continue
        try:
            groups = _plugin_groups(dist.read_text("entry_points.txt"))
        except (OSError, ValueError, UnicodeDecodeError):
            groups = ()
        found[name] = DistInfo(
            name=name,
            display_name=raw_name,
            version=version or "",
            location=_location(str(dist.locate_file("")), locations),
            requires=requires,
            plugin_groups=groups,
        )
    return found


def _location(directory: str, seen: dict[str, str]) -> str:
    if directory not in seen:
        seen[directory] = realpath(directory)
    return seen[directory]


def externally_managed_message(stdlib: str | os.PathLike[str]) -> str | None:
    """PEP 668: ``None`` if not marked, else the marker's error text (or a default)."""
    marker = Path(stdlib) / "EXTERNALLY-MANAGED"
    if not marker.is_file():
        return None
    default = (
        f"{marker} marks this interpreter as externally managed (PEP 668);"
        " install into a virtual environment instead."
    )
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(marker, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return default
    if parser.has_option("externally-managed", "Error"):
        text = parser.get("externally-managed", "Error").strip()
        return text or default
    return default


def classify_installation(
    *,
    prefix: str,
    base_prefix: str,
    poetry_location: str | None,
    user_site: str | None,
    env_dists: Iterable[str],
    needed: Iterable[str],
    externally_managed: str | None,
    poetry_home: str | None = None,
) -> Installation:
    """Pure: decide how Poetry was installed from a few facts."""
    prefix_path = Path(prefix)
    parts = [part.lower() for part in prefix_path.parts]
    others = tuple(sorted(set(env_dists) - set(needed) - BOOTSTRAP_DISTS))
    if (prefix_path / "pipx_metadata.json").exists() or (
        "pipx" in parts and "venvs" in parts
    ):
        kind = "pipx"
    elif (poetry_home and realpath(prefix) == realpath(Path(poetry_home) / "venv")) or (
        prefix_path.name == "venv" and prefix_path.parent.name.lower() == "pypoetry"
    ):
        kind = "installer"
    elif (prefix_path / "conda-meta").is_dir():
        kind = "conda"
    elif (
        user_site
        and poetry_location
        and realpath(poetry_location) == realpath(user_site)
    ):
        kind = "user"
    elif realpath(prefix) != realpath(base_prefix):
        kind = "venv"
    else:
        kind = "system"
    isolated = kind in ("pipx", "installer") or (kind == "venv" and not others)
    in_venv = realpath(prefix) != realpath(base_prefix)
    return Installation(
        kind=kind,
        isolated=isolated,
        externally_managed=externally_managed is not None and not in_venv,
        externally_managed_message=None if in_venv else externally_managed,
        others=others,
        self_isolated=(prefix_path / ISOLATED_MARKER).exists(),
    )


def vendored_dists(poetry_core: DistInfo | None) -> tuple[VendoredDist, ...]:
    """poetry-core's ``_vendor`` copies: Poetry imports these first, installs never touch them."""
    if poetry_core is None:
        return ()
    vendor = Path(poetry_core.location) / "poetry" / "core" / "_vendor"
    if not vendor.is_dir():
        return ()
    found = scan_distributions([str(vendor)])
    return tuple(
        VendoredDist(name=d.name, version=d.version, location=str(vendor))
        for d in sorted(found.values(), key=lambda d: d.name)
    )


def inspect_poetry_environment(
    import_paths: Sequence[str] | None = None,
    marker_env: Mapping[str, str] | None = None,
) -> PoetryEnvironment:
    """Describe the Poetry that is running this code."""
    import site

    paths = tuple(
        realpath(p) for p in (sys.path if import_paths is None else import_paths) if p
    )
    existing = tuple(dict.fromkeys(p for p in paths if Path(p).is_dir()))
    index = scan_distributions(existing)
    plugins = tuple(
        sorted(
            name
            for name, dist in index.items()
            if dist.plugin_groups and name != POETRY
        )
    )
    env: dict[str, str] = (
        dict(marker_env)
        if marker_env is not None
        else {k: str(v) for k, v in default_environment().items()}
    )
    closure = resolve_closure(index, (POETRY, *plugins), env)
    poetry = index.get(POETRY)
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    own_site = {realpath(p) for p in _prefix_site_dirs(sys.prefix)}
    env_dists = [n for n, d in index.items() if d.location in own_site]
    stdlib = sysconfig.get_paths()["stdlib"]
    return PoetryEnvironment(
        version=poetry.version if poetry else "unknown",
        python=sys.executable,
        prefix=sys.prefix,
        base_prefix=sys.base_prefix,
        import_paths=existing,
        plugins=plugins,
        needed=closure.needed,
        problems=closure.problems,
        vendored=vendored_dists(index.get("poetry-core")),
        installation=classify_installation(
            prefix=sys.prefix,
            base_prefix=sys.base_prefix,
            poetry_location=poetry.location if poetry else None,
            user_site=user_site if isinstance(user_site, str) else None,
            env_dists=env_dists,
            needed=[d.name for d in closure.needed],
            externally_managed=externally_managed_message(stdlib),
            poetry_home=os.environ.get("POETRY_HOME"),
        ),
        index=index,
        marker_env=env,
        unverifiable=closure.unverifiable,
    )


def _prefix_site_dirs(prefix: str) -> list[str]:
    scheme_paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
    return [scheme_paths["purelib"], scheme_paths["platlib"]]
