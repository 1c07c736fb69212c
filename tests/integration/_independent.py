from __future__ import annotations

# An independent evaluation of what installing a lock does to the packages
# Poetry runs on, for test_realworld.py: written with ``packaging`` and the
# standard library alone (it never imports poetry_env_audit or Poetry), from
#   - Poetry's closure in the interpreter, read from its installed metadata
#     (``*.dist-info/METADATA``, ``entry_points.txt``);
#   - Poetry's own plan, parsed from ``poetry --no-plugins install --dry-run``
#     (or the sync) output;
#   - the requirements of planned versions, read from the lock file itself
#     (markers and extras evaluated for the target interpreter).
# Its rules are the README's ("How it works", step 4): after the planned
# changes, a requirement of Poetry or a plugin that is unmet, or a needed
# package removed, ``breaks``; any other change to a needed package ``changes``.
import json
import re
import sys
from dataclasses import dataclass
from dataclasses import field
from email.parser import HeaderParser
from typing import TYPE_CHECKING

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dev venv is 3.11 or newer
    import tomli as tomllib

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from pathlib import Path

PLUGIN_GROUPS = ("poetry.application.plugin", "poetry.plugin")

# Run in the interpreter under test (standard library only): its marker
# environment, as PEP 508 defines it.
MARKER_ENV_PROBE = """\
import json, os, platform, sys
def fmt(info):
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""

# "  - Downgrading packaging (24.2 -> 23.0)", "  - Installing gitdep (0.3.0 1a2b3c4)"
DRY_RUN_LINE = re.compile(
    r"^\s*- (Installing|Updating|Downgrading|Removing) (\S+) \((.*)\)$", re.M
)


@dataclass(frozen=True)
class Req:
    """A requirement; *specifiers* are alternatives (a Poetry union ``A || B``
    allows what any of them allows; PEP 508 has one)."""

    name: NormalizedName
    extras: frozenset[str]
    specifiers: tuple[SpecifierSet, ...]
    marker: Marker | None

    @classmethod
    def parse(cls, text: str) -> Req:
        req = Requirement(text)
        return cls(
            canonicalize_name(req.name),
            frozenset(canonicalize_name(e) for e in req.extras),
            (req.specifier,),
            req.marker,
        )

    def allows(self, version: str | None) -> bool:
        if version is None:
            return False
        return any(s.contains(version, prereleases=True) for s in self.specifiers)

    @property
    def key(self) -> str:
        """Name, extras and specifiers, comparable however each side spells them."""
        specs = " || ".join(
            ",".join(sorted(str(one) for one in s)) for s in self.specifiers
        )
        return f"{self.name}[{','.join(sorted(self.extras))}]{specs}"


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    requires: tuple[Req, ...]
    plugin: bool = False


@dataclass(frozen=True)
class Change:
    name: str
    action: str  # install, upgrade, downgrade, reinstall, remove
    current: str | None
    planned: str | None


@dataclass(frozen=True)
class Edge:
    requirer: str
    version: str
    requirement: Req

    @property
    def key(self) -> tuple[str, str]:
        return (self.requirer, self.requirement.key)


@dataclass
class Closure:
    needed: set[str] = field(default_factory=set)
    edges: dict[str, dict[tuple[str, str], Edge]] = field(default_factory=dict)

    def into(self, name: str) -> list[Edge]:
        return list(self.edges.get(name, {}).values())


# ------------------------------------------------------------------ reading


def installed(site_dirs: Iterable[Path]) -> dict[str, Dist]:
    """Every distribution in *site_dirs* (the first of a name wins, as on sys.path)."""
    found: dict[str, Dist] = {}
    for site in site_dirs:
        for info in sorted(site.glob("*.dist-info")):
            metadata = info / "METADATA"
            if not metadata.is_file():
                continue
            headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
            name = canonicalize_name(headers["Name"])
            entry_points = info / "entry_points.txt"
            groups = set()
            if entry_points.is_file():
                groups = set(
                    re.findall(r"^\[(.+)\]\s*$", entry_points.read_text(), re.M)
                )
            found.setdefault(
                name,
                Dist(
                    name=name,
                    version=headers["Version"],
                    requires=tuple(
                        Req.parse(r) for r in headers.get_all("Requires-Dist") or ()
                    ),
                    plugin=bool(groups & set(PLUGIN_GROUPS)),
                ),
            )
    return found


def parse_dry_run(stdout: str) -> list[Change]:
    """Poetry's own plan from its dry-run output."""
    changes: list[Change] = []
    for verb, name, versions in DRY_RUN_LINE.findall(stdout):
        sides = [side.split()[0] for side in versions.split(" -> ")]
        if verb == "Installing":
            changes.append(Change(canonicalize_name(name), "install", None, sides[0]))
        elif verb == "Removing":
            changes.append(Change(canonicalize_name(name), "remove", sides[0], None))
        else:
            action = compare(sides[0], sides[1])
            changes.append(Change(canonicalize_name(name), action, sides[0], sides[1]))
    return changes


def compare(current: str, planned: str) -> str:
    if current == planned:
        return "reinstall"
    try:
        before, after = Version(current), Version(planned)
    except InvalidVersion:
        return "upgrade" if planned > current else "downgrade"
    if after == before:
        return "reinstall"
    return "upgrade" if after > before else "downgrade"


def lock_requirements(lock: Path) -> dict[tuple[str, str], tuple[Req, ...]]:
    """(name, version) -> the requirements the lock records for it, an
    optional one once per extra that lists it (``extra == "..."``)."""
    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], tuple[Req, ...]] = {}
    for package in data.get("package", []):
        extras_of: dict[str, list[str]] = {}
        for extra, listed in (package.get("extras") or {}).items():
            for text in listed:
                match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
                if match:
                    name = canonicalize_name(match.group(1))
                    extras_of.setdefault(name, []).append(extra)
        requires: list[Req] = []
        for dep_name, spec in (package.get("dependencies") or {}).items():
            for entry in spec if isinstance(spec, list) else [spec]:
                table = entry if isinstance(entry, dict) else {"version": entry}
                if table.get("optional"):
                    conditions = extras_of.get(canonicalize_name(dep_name), [])
                else:
                    conditions = [""]
                requires += [lock_requirement(dep_name, table, x) for x in conditions]
        out[(canonicalize_name(package["name"]), package["version"])] = tuple(requires)
    return out


def lock_requirement(name: str, table: Mapping[str, object], extra: str) -> Req:
    """One dependency entry of the lock (a Poetry constraint, its markers)."""
    if set(table) - {"version", "markers", "optional", "extras"}:
        raise ValueError(f"unexpected dependency form for {name}: {table}")
    extras = table.get("extras") or []
    assert isinstance(extras, list)
    markers = [str(table["markers"])] if table.get("markers") else []
    if extra:
        markers.append(f'extra == "{extra}"')
    marker = Marker(" and ".join(f"({m})" for m in markers)) if markers else None
    alternatives = str(table.get("version", "*")).split("||")
    return Req(
        canonicalize_name(name),
        frozenset(canonicalize_name(str(e)) for e in extras),
        tuple(SpecifierSet(specifier(a)) for a in alternatives),
        marker,
    )


def specifier(constraint: str) -> str:
    """One Poetry constraint (no union) as the lock writes it, as PEP 440."""
    constraint = constraint.strip()
    if constraint in ("", "*"):
        return ""
    parts: list[str] = []
    for raw in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", constraint):
        part = raw.strip()
        if not part:
            continue
        if part.startswith("^"):
            parts += _caret(part[1:])
        elif part.startswith("~") and not part.startswith("~="):
            parts += _tilde(part[1:])
        elif part[0] in "<>=!~":
            parts.append(part)
        else:
            parts.append(f"=={part}")
    return ",".join(parts)


def _release(text: str) -> list[int]:
    return [int(x) for x in text.split(".")]


def _caret(text: str) -> list[str]:
    release = _release(text)
    first = next((i for i, x in enumerate(release) if x), len(release) - 1)
    upper = [*release[:first], release[first] + 1]
    return [f">={text}", "<" + ".".join(map(str, upper))]


def _tilde(text: str) -> list[str]:
    release = _release(text)
    upper = [release[0] + 1] if len(release) == 1 else [release[0], release[1] + 1]
    return [f">={text}", "<" + ".".join(map(str, upper))]


# ------------------------------------------------------------------ evaluating


def closure(
    index: Mapping[str, Dist], roots: Iterable[str], env: Mapping[str, str]
) -> Closure:
    """What *roots* need, transitively, and who requires each with what."""
    result = Closure()
    extras: dict[str, set[str]] = {}
    queue = [(canonicalize_name(r), frozenset[str]()) for r in roots]
    while queue:
        name, wanted = queue.pop()
        if name in extras and wanted <= extras[name]:
            continue
        extras[name] = extras.get(name, set()) | wanted
        result.needed.add(name)
        dist = index.get(name)
        if dist is None:
            continue
        for req in dist.requires:
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": e})
                for e in ("", *sorted(extras[name]))
            ):
                continue
            edge = Edge(name, dist.version, req)
            result.edges.setdefault(req.name, {})[edge.key] = edge
            queue.append((req.name, req.extras))
    return result


@dataclass(frozen=True)
class Expected:
    package: str
    verdict: str
    current: str | None
    planned: str | None
    action: str
    required_by: frozenset[tuple[str, str, str, bool]]


def text_key(text: str) -> str:
    return Req.parse(text).key


def evaluate(
    dists: Mapping[str, Dist],
    plan: Iterable[Change],
    planned_requires: Mapping[tuple[str, str], tuple[Req, ...]],
    env: Mapping[str, str],
) -> dict[str, Expected]:
    """package -> the finding the README's rules give for it."""
    roots = ["poetry", *(d.name for d in dists.values() if d.plugin)]
    before = closure(dists, roots, env)
    after_index = dict(dists)
    changes: list[Change] = []
    for change in plan:
        have = dists.get(change.name)
        if have is not None and change.action != "install":
            change = Change(change.name, change.action, have.version, change.planned)
        changes.append(change)
        if change.action == "remove":
            after_index.pop(change.name, None)
        else:
            key = (change.name, str(change.planned))
            if key not in planned_requires:
                raise AssertionError(f"the lock has no {key}")
            after_index[change.name] = Dist(
                change.name,
                str(change.planned),
                planned_requires[key],
                plugin=have.plugin if have else False,
            )
    after = closure(after_index, roots, env)
    removed = {c.name for c in changes if c.action == "remove"}
    expected: dict[str, Expected] = {}
    for change in changes:
        if change.name not in before.needed and change.name not in after.needed:
            continue
        if change.action == "remove":
            edges = before.into(change.name)
            required_by = {_row(e, None) for e in edges}
            verdict = "breaks" if change.name in before.needed else "changes"
        else:
            edges = after.into(change.name) if change.name in after.needed else []
            edges += [e for e in before.into(change.name) if e.requirer in removed]
            required_by = {_row(e, change.planned) for e in edges}
            unmet = any(not ok for *_, ok in required_by)
            verdict = (
                "breaks"
                if unmet or _own_unmet(change, before, after, after_index, dists)
                else "changes"
            )
        expected[change.name] = Expected(
            package=change.name,
            verdict=verdict,
            current=change.current,
            planned=change.planned,
            action=change.action,
            required_by=frozenset(required_by),
        )
    return expected


def _row(edge: Edge, version: str | None) -> tuple[str, str, str, bool]:
    return (
        edge.requirer,
        edge.version,
        edge.requirement.key,
        edge.requirement.allows(version),
    )


def _own_unmet(
    change: Change,
    before: Closure,
    after: Closure,
    after_index: Mapping[str, Dist],
    dists: Mapping[str, Dist],
) -> bool:
    """Whether a requirement of the planned version itself is unmet after the
    plan (and was not unmet in the same way before)."""
    if change.name not in after.needed:
        return False
    for target, edges in after.edges.items():
        for edge in edges.values():
            if edge.requirer != change.name:
                continue
            have = after_index.get(target)
            if have is not None and edge.requirement.allows(have.version):
                continue
            old = before.edges.get(target, {}).get(edge.key)
            was = dists.get(target)
            same = (
                old is not None
                and old.version == edge.version
                and (was.version if was else None) == (have.version if have else None)
            )
            if not same:
                return True
    return False


def reported(report: Mapping[str, object]) -> dict[str, Expected]:
    """The findings of a ``poetry env-audit --format json`` report, in the same form."""
    out: dict[str, Expected] = {}
    findings = report["findings"]
    assert isinstance(findings, list)
    for f in findings:
        name = canonicalize_name(f["package"])
        assert name not in out, json.dumps(findings, indent=1)
        out[name] = Expected(
            package=name,
            verdict=f["verdict"],
            current=f["current"],
            planned=f["planned"],
            action=f["action"],
            required_by=frozenset(
                (
                    canonicalize_name(r["package"]),
                    r["version"],
                    text_key(r["requirement"]),
                    r["satisfied"],
                )
                for r in f["required_by"]
            ),
        )
    return out
