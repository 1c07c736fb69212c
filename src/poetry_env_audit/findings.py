"""Findings: every planned change to a package Poetry needs, with a verdict.

``breaks``: after the change a requirement of Poetry or of a Poetry plugin is
no longer met, or a package they need is removed. ``changes``: the package is
replaced in place but every requirement still holds. Environment-level
findings describe the setting rather than one package.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING

from poetry_env_audit.plan import Action
from poetry_env_audit.poetry_env import DistInfo
from poetry_env_audit.poetry_env import resolve_closure
from poetry_env_audit.values import StrEnum

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry_env_audit.ownership import Overwrite
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.poetry_env import RequiredBy
    from poetry_env_audit.poetry_env import Unverifiable
    from poetry_env_audit.policy import PolicyAction
    from poetry_env_audit.target import TargetEnvironment


class Verdict(StrEnum):
    BREAKS = "breaks"
    CHANGES = "changes"
    #: A requirement of Poetry's closure on the package could not be evaluated.
    UNVERIFIED = "unverified"


class EnvKind(StrEnum):
    """What an environment finding is about; also its policy key (but ``not-isolated``)."""

    SHARED = "shared"
    NOT_ISOLATED = "not-isolated"
    EXTERNALLY_MANAGED = "externally-managed"
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True)
class Remedy:
    """A way out: what it does, and the command that does it (checked before it is
    offered)."""

    title: str
    command: str | None = None


@dataclass(frozen=True)
class Holder:
    """Something in the project that constrains a package: who, and how.

    ``allows`` says whether the constraint leaves room for what Poetry needs.
    """

    who: str
    constraint: str
    allows: bool


@dataclass(frozen=True)
class Requirer:
    """A requirement on a package, by whom, and whether the planned version meets it."""

    package: str
    version: str
    requirement: str
    satisfied: bool

    def describe(self) -> str:
        return f"{self.package} {self.version} requires {self.requirement}"


@dataclass(frozen=True)
class Finding:
    """A planned change to a distribution Poetry needs, in a shared environment."""

    package: str
    current: str | None
    planned: str | None
    action: Action
    verdict: Verdict
    required_by: tuple[Requirer, ...]
    detail: str
    policy: PolicyAction | None = None
    remedies: tuple[Remedy, ...] = ()
    #: For :attr:`Action.OVERWRITE`: the canonical name of the wheel that
    #: would write the files (the operation the policy acts on).
    by: str | None = None

    @property
    def kind(self) -> str:
        return self.verdict.value


@dataclass(frozen=True)
class EnvFinding:
    """A finding about the setting: shared, externally managed, inconsistent."""

    kind: EnvKind
    message: str
    policy: PolicyAction | None = None
    remedies: tuple[Remedy, ...] = ()


def _applies_to_poetry(
    target: TargetEnvironment, dist: DistInfo | None, import_paths: Sequence[str]
) -> bool:
    """Whether installing into ``target`` changes what Poetry imports for this name.

    True when Poetry imports the name from a shared directory, when it does
    not have the name at all, or when a shared directory comes before the one
    it imports it from (the new copy would shadow it).
    """
    if not target.shared:
        return False
    if dist is None or dist.location in target.shared_dirs:
        return True
    order = {path: i for i, path in reversed(list(enumerate(import_paths)))}
    first_shared = min(
        (order[d] for d in target.shared_dirs if d in order), default=None
    )
    where = order.get(dist.location)
    return first_shared is not None and where is not None and first_shared < where


def evaluate(
    poetry: PoetryEnvironment,
    target: TargetEnvironment,
    changes: Sequence[PlannedChange],
) -> tuple[Finding, ...]:
    """Verdicts for the planned changes that touch what Poetry runs on."""
    if not target.shared:
        return ()
    index = dict(poetry.index)
    applied: list[PlannedChange] = []
    for change in changes:
        current = index.get(change.name)
        if not _applies_to_poetry(target, current, poetry.import_paths):
            continue
        if current is not None and change.action is not Action.INSTALL:
            # What is installed, whatever version the plan says it replaces
            # (Poetry 1.8 names the lock's version in some removals).
            change = replace(change, current=current.version)
        applied.append(change)
        if change.action is Action.REMOVE:
            index.pop(change.name, None)
        else:
            index[change.name] = DistInfo(
                name=change.name,
                display_name=current.display_name if current else change.display_name,
                version=change.planned or "",
                location=current.location if current else target.shared_dirs[0],
                # What has no PEP 508 form stays visible: unverifiable below.
                requires=change.requires + change.unreadable,
                plugin_groups=current.plugin_groups if current else (),
            )
    after = resolve_closure(index, poetry.roots, poetry.marker_env)
    after_needed = {d.name: d for d in after.needed}
    before_problems = {p.detail for p in poetry.problems}
    unreadable = (*poetry.unverifiable, *after.unverifiable)
    findings: list[Finding] = []
    for change in applied:
        before = poetry.get(change.name)
        now = after_needed.get(change.name)
        unread = _unverifiable_for(change.name, unreadable, before or now)
        if before is None and now is None and not unread:
            continue  # Poetry does not need it, before or after
        edges: Sequence[RequiredBy]
        if change.action is Action.REMOVE:
            edges = before.required_by if before else ()
            requirers = _poetry_first([_requirer(e, None) for e in edges])
            verdict = Verdict.BREAKS if before is not None else Verdict.CHANGES
            detail = _removal_detail(change, requirers)
        else:
            # After the plan, plus what packages the plan removes required: their
            # removal is refused on its own, and without it this change would
            # break them. (A requirer that merely stopped requiring it counts not.)
            removed = {c.name for c in applied if c.action is Action.REMOVE}
            kept = tuple(now.required_by) if now else ()
            dropped = tuple(
                e
                for e in (before.required_by if before else ())
                if e.package in removed
            )
            edges = kept + dropped
            requirers = tuple(_requirer(e, change.planned) for e in edges)
            own = [
                p.detail
                for p in after.problems
                if p.required_by is not None
                and p.required_by.package == change.name
                and p.detail not in before_problems
            ]
            broken = [r for r in _poetry_first(requirers) if not r.satisfied]
            verdict = Verdict.BREAKS if broken or own else Verdict.CHANGES
            detail = _change_detail(change, broken, own)
        if unread and verdict is not Verdict.BREAKS:
            verdict = Verdict.UNVERIFIED
            detail = _unverified_detail(change, unread)
        findings.append(
            Finding(
                package=before.display_name if before else change.display_name,
                current=change.current,
                planned=change.planned,
                action=change.action,
                verdict=verdict,
                required_by=_poetry_first(requirers),
                detail=detail,
            )
        )
    return tuple(findings)


def overwrite_finding(overwrite: Overwrite, poetry: PoetryEnvironment) -> Finding:
    """A wheel of another name writing over files of a distribution Poetry
    needs: ``changes`` when each file keeps its bytes (the owner is left as
    Poetry reads it), else ``breaks`` (see :mod:`poetry_env_audit.ownership`)."""
    owner = overwrite.owner
    needed = poetry.get(owner.name)
    edges = needed.required_by if needed else ()
    requirers = _poetry_first(
        [
            Requirer(
                package=e.package,
                version=e.version,
                requirement=e.requirement,
                satisfied=overwrite.identical,
            )
            for e in edges
        ]
    )
    if overwrite.identical:
        detail = (
            f"{overwrite.describe()}; it is left as Poetry reads it, so every"
            " requirement of Poetry still holds"
        )
    else:
        detail = f"{overwrite.describe()}, which Poetry runs on"
    return Finding(
        package=owner.display_name,
        current=owner.version,
        planned=owner.version if overwrite.identical else None,
        action=Action.OVERWRITE,
        verdict=Verdict.CHANGES if overwrite.identical else Verdict.BREAKS,
        required_by=requirers,
        detail=detail,
        by=overwrite.wheel,
    )


def _unverifiable_for(
    name: str, unreadable: Sequence[Unverifiable], needed: object
) -> tuple[Unverifiable, ...]:
    """The unreadable requirements that may constrain ``name``: those on it,
    and those whose name cannot be read when Poetry needs ``name``."""
    seen: dict[tuple[str, str], Unverifiable] = {}
    for item in unreadable:
        if item.package == name or (item.package is None and needed is not None):
            seen.setdefault((item.requirer, item.requirement), item)
    return tuple(seen.values())


def _unverified_detail(change: PlannedChange, unread: Sequence[Unverifiable]) -> str:
    versions = (
        f"{change.current} -> {change.planned}"
        if change.current and change.planned and change.current != change.planned
        else f"{change.planned or change.current}"
    )
    why = "; ".join(u.describe() for u in unread[:2])
    return (
        f"{change.display_name} {versions} cannot be checked against Poetry's"
        f" requirements: {why}; to change it anyway set"
        " POETRY_ENV_AUDIT_UNVERIFIED=warn"
    )


def _poetry_first(requirers: Sequence[Requirer]) -> tuple[Requirer, ...]:
    return tuple(sorted(requirers, key=lambda r: (r.package != "poetry", r.package)))


def _requirer(edge: RequiredBy, planned: str | None) -> Requirer:
    return Requirer(
        package=edge.package,
        version=edge.version,
        requirement=edge.requirement,
        satisfied=edge.allows(planned),
    )


def _removal_detail(change: PlannedChange, requirers: Sequence[Requirer]) -> str:
    who = "; ".join(r.describe() for r in requirers) or "Poetry needs it"
    return f"{change.display_name} {change.current} would be removed ({who})"


def _change_detail(
    change: PlannedChange, broken: Sequence[Requirer], own: Sequence[str]
) -> str:
    verb = {
        Action.INSTALL: "installed",
        Action.UPGRADE: "upgraded",
        Action.DOWNGRADE: "downgraded",
        Action.REINSTALL: "reinstalled",
        Action.REMOVE: "removed",
        Action.OVERWRITE: "overwritten",
    }[change.action]
    versions = (
        f"{change.current} -> {change.planned}"
        if change.current and change.current != change.planned
        else f"{change.planned}"
    )
    head = f"{change.display_name} would be {verb} ({versions})"
    if broken:
        return f"{head}, but " + "; ".join(r.describe() for r in broken)
    if own:
        return f"{head}, but then " + "; ".join(own)
    return f"{head} in place; every requirement of Poetry still holds"


def with_policy(
    finding: Finding, action: PolicyAction, remedies: Sequence[Remedy]
) -> Finding:
    return replace(finding, policy=action, remedies=tuple(remedies))
