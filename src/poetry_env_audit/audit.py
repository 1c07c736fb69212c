"""The audit engine: the single place where the decision is made.

``poetry env-audit`` and the install guard both call :func:`assess` with the
planned changes; they differ only in where the plan comes from (a dry run of
the lock, or the operations Poetry is about to execute).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any
from typing import Callable

from packaging.utils import canonicalize_name

from poetry_env_audit import remedies
from poetry_env_audit.findings import EnvFinding
from poetry_env_audit.findings import EnvKind
from poetry_env_audit.findings import Verdict
from poetry_env_audit.findings import evaluate
from poetry_env_audit.findings import with_policy
from poetry_env_audit.plan import Action
from poetry_env_audit.plan import reach_from
from poetry_env_audit.policy import SEVERITY
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.report import Report
from poetry_env_audit.report import RunVerdict

if TYPE_CHECKING:
    from collections.abc import Collection
    from collections.abc import Iterable
    from collections.abc import Sequence

    from cleo.io.io import IO
    from poetry.poetry import Poetry

    from poetry_env_audit.assumed import Assumption
    from poetry_env_audit.findings import Finding
    from poetry_env_audit.findings import Holder
    from poetry_env_audit.findings import Remedy
    from poetry_env_audit.ownership import Overwrite
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.policy import Policy
    from poetry_env_audit.target import TargetEnvironment

HoldersFor = Callable[[str, str], "Sequence[Holder]"]
#: Whether ``poetry install`` without synchronising (with every extra when
#: asked) would leave Poetry's requirements met: the engine's check of a remedy.
InstallCheck = Callable[[bool], bool]


@dataclass(frozen=True)
class AuditOptions:
    """What to plan: the groups and extras selected, and whether the install
    synchronises."""

    groups: frozenset[str] | None = None
    extras: tuple[str, ...] = ()
    sync: bool = False
    #: The group and extras options, as the user gave them (for remedies).
    flags: str = ""


def _no_holders(name: str, specifier: str) -> Sequence[Holder]:
    del name, specifier
    return ()


def environment_findings(
    poetry: PoetryEnvironment, target: TargetEnvironment, policy: Policy
) -> tuple[EnvFinding, ...]:
    out: list[EnvFinding] = []
    if target.shared:
        out.append(
            EnvFinding(
                kind=EnvKind.SHARED,
                message=(
                    f"Poetry {poetry.version} runs from {', '.join(target.shared_dirs)},"
                    f" the environment this command installs into ({target.reason})."
                ),
                policy=policy.action(EnvKind.SHARED),
                remedies=remedies.for_shared(poetry, target),
            )
        )
    elif not poetry.installation.isolated:
        out.append(
            EnvFinding(
                kind=EnvKind.NOT_ISOLATED,
                message=(
                    f"Poetry {poetry.version} is installed in"
                    f" {poetry.installation.describe()} at {poetry.prefix}; this"
                    " project's target does not overlap it."
                ),
                policy=None,
                remedies=(remedies.isolate_poetry(poetry),),
            )
        )
    marker = target.externally_managed or (
        poetry.installation.externally_managed_message if target.shared else None
    )
    if marker:
        out.append(
            EnvFinding(
                kind=EnvKind.EXTERNALLY_MANAGED,
                message=f"{target.python or target.path} is externally managed: "
                + " ".join(marker.split()),
                policy=policy.action(EnvKind.EXTERNALLY_MANAGED),
                remedies=remedies.for_shared(poetry, target),
            )
        )
    for problem in poetry.problems:
        spec = problem.required_by.specifier if problem.required_by else ""
        out.append(
            EnvFinding(
                kind=EnvKind.INCONSISTENT,
                message=f"Poetry's environment is already inconsistent: {problem.detail}.",
                policy=policy.action(EnvKind.INCONSISTENT),
                remedies=(remedies.repair(poetry, problem.package, spec),),
            )
        )
    return tuple(out)


def run_verdict(
    findings: Iterable[Finding], environment: Iterable[EnvFinding]
) -> RunVerdict:
    worst = PolicyAction.OFF
    for action in [f.policy for f in findings] + [e.policy for e in environment]:
        if action is not None and SEVERITY[action] > SEVERITY[worst]:
            worst = action
    return {
        PolicyAction.BLOCK: RunVerdict.BLOCK,
        PolicyAction.SERIALISE: RunVerdict.SERIALISE,
        PolicyAction.WARN: RunVerdict.WARN,
        PolicyAction.OFF: RunVerdict.OK,
    }[worst]


def checked_plain_install(check: InstallCheck, flags: str) -> Remedy:
    """The first install without synchronising the engine finds harmless."""
    for all_extras in (False, True):
        try:
            harmless = check(all_extras)
        except Exception:  # noqa: BLE001 - an unchecked command is never offered
            harmless = False
        if harmless:
            more = "--all-extras" if all_extras and "--all-extras" not in flags else ""
            return remedies.install_without_sync(
                " ".join(x for x in (flags, more) if x)
            )
    return remedies.NO_PLAIN_INSTALL


def plain_install(
    sync_changes: Sequence[PlannedChange],
    plan: Callable[[bool], Sequence[PlannedChange]],
    derived: bool,
) -> Callable[[bool], Sequence[PlannedChange]]:
    """The changes of an install without synchronising: the sync plan's minus
    its removals where Poetry plans it so (``derived``), else Poetry's own plan."""

    def changes(all_extras: bool) -> Sequence[PlannedChange]:
        if derived and not all_extras:
            return [c for c in sync_changes if c.action is not Action.REMOVE]
        return plan(all_extras)

    return changes


def install_check(
    planned: Callable[[bool], Sequence[PlannedChange]],
    poetry: PoetryEnvironment,
    target: TargetEnvironment,
    locked_names: Callable[[], Collection[str]] | None = None,
) -> InstallCheck:
    """An :data:`InstallCheck` over ``planned(all_extras)``, the changes of an
    install without synchronising as Poetry would plan it.

    With ``locked_names`` (the lock's package names) the plan with every extra
    is not made when the plain one already breaks a requirement of a package
    the lock does not have: every extra only adds installs from the same lock,
    so that version change and that requirer are in it too.
    """
    hopeless: list[bool] = []

    def check(all_extras: bool) -> bool:
        if all_extras and hopeless:
            return False
        broken = [
            f
            for f in evaluate(poetry, target, planned(all_extras))
            if f.verdict is Verdict.BREAKS
        ]
        if not all_extras and locked_names is not None:
            names = locked_names()
            hopeless.extend(
                True
                for f in broken
                if f.action is not Action.REMOVE
                and any(
                    not r.satisfied and canonicalize_name(r.package) not in names
                    for r in f.required_by
                )
            )
        return not broken

    return check


def assess(
    *,
    poetry: PoetryEnvironment,
    target: TargetEnvironment,
    changes: Sequence[PlannedChange],
    policy: Policy,
    holders_for: HoldersFor = _no_holders,
    project: str | None = None,
    sync: bool = False,
    command: str | None = None,
    install_check: InstallCheck | None = None,
    flags: str = "",
) -> Report:
    """Findings, policy and remedies for ``changes`` to ``target``.

    With ``install_check`` the remedy for a removal is checked before it is
    offered: the plain install (``flags`` kept), else the same with every
    extra, else the word that none avoids it. Without it, a plain install is
    offered only when nothing but removals breaks.
    """
    findings: list[Finding] = []
    judged = evaluate(poetry, target, changes)
    # A plain install is a way out of removals only if it would not be refused too.
    plain_install_passes = not any(
        f.verdict is Verdict.BREAKS and f.action is not Action.REMOVE for f in judged
    )
    plain: Remedy | None = None
    removes = any(
        f.verdict is Verdict.BREAKS and f.action is Action.REMOVE for f in judged
    )
    if install_check is not None and removes:
        plain = checked_plain_install(install_check, flags)
        plain_install_passes = True  # checked: a command, or the word there is none
    for finding in judged:
        holders = (
            holders_for(
                canonicalize_name(finding.package), remedies.poetry_specifier(finding)
            )
            if finding.verdict is Verdict.BREAKS
            else ()
        )
        findings.append(
            with_policy(
                finding,
                policy.action(finding.kind),
                remedies.for_package(
                    finding,
                    poetry,
                    target,
                    holders,
                    command,
                    plain_install_passes=plain_install_passes,
                    plain=plain,
                ),
            )
        )
    environment = environment_findings(poetry, target, policy)
    return Report(
        project=project,
        poetry=poetry,
        target=target,
        sync=sync,
        changes=tuple(changes),
        findings=tuple(findings),
        environment=environment,
        verdict=run_verdict(findings, environment),
    )


def with_overwrites(
    report: Report,
    found: Sequence[Overwrite],
    policy: Policy,
    *,
    checked: int | None = None,
    unchecked: int | None = None,
) -> Report:
    """``report`` with a finding on the owning distribution for each wheel
    that would write over its files, judged and acted on like any other
    finding (``breaks``, or ``changes`` when each file keeps its bytes)."""
    from dataclasses import replace

    from poetry_env_audit.findings import overwrite_finding

    added = []
    for overwrite in found:
        finding = overwrite_finding(overwrite, report.poetry)
        added.append(
            with_policy(
                finding,
                policy.action(finding.kind),
                remedies.for_package(finding, report.poetry, report.target, ()),
            )
        )
    findings = (*report.findings, *added)
    return replace(
        report,
        findings=findings,
        verdict=run_verdict(findings, report.environment),
        wheels_checked=report.wheels_checked if checked is None else checked,
        wheels_unchecked=report.wheels_unchecked if unchecked is None else unchecked,
    )


def audit_project(
    poetry: Poetry,
    io: IO,
    options: AuditOptions,
    policy: Policy,
    assumption: Assumption | None = None,
) -> Report:
    """``poetry env-audit``: predict what installing the lock would do, and judge it.

    With an ``assumption`` (``--assume-shared``, ``--poetry``) the Poetry
    judged against, the environment planned on and what it holds come from
    :func:`~poetry_env_audit.seams.closure.assumed_basis` instead of the real
    setup; the engine is the same.
    """
    from poetry_env_audit.poetry_env import inspect_poetry_environment
    from poetry_env_audit.seams.environment import find_target
    from poetry_env_audit.seams.plan import LockedPackages
    from poetry_env_audit.seams.plan import check_fresh
    from poetry_env_audit.seams.plan import check_lock
    from poetry_env_audit.seams.plan import plain_install_is_sync_without_removals
    from poetry_env_audit.seams.plan import planned_changes
    from poetry_env_audit.seams.plan import project_holders
    from poetry_env_audit.seams.project import project_dir

    own = inspect_poetry_environment()
    check_lock(poetry)
    installed: Any = None
    basis = None
    if assumption is None:
        env, target = find_target(poetry, io, own.import_paths)
    else:
        from poetry_env_audit.seams.closure import assumed_basis

        basis = assumed_basis(poetry, own, assumption)
        own, env, target, installed = (
            basis.poetry,
            basis.env,
            basis.target,
            basis.installed,
        )
    locked = LockedPackages(poetry)
    changes: list[PlannedChange] = []
    check: InstallCheck | None = None
    if env is None:
        check_fresh(poetry)
    else:
        found = env

        # Only what can reach Poetry's closure needs its requirements read.
        reach = reach_from(own.roots, {n: d.requires for n, d in own.index.items()})

        def planned(sync: bool, all_extras: bool = False) -> list[PlannedChange]:
            return planned_changes(
                poetry,
                found,
                locked,
                groups=options.groups,
                extras=options.extras,
                sync=sync,
                all_extras=all_extras,
                installed=installed,
                reach=reach,
            )

        changes = planned(options.sync)
        # env-audit plans from the lock's markers (re-resolve off).
        derived = options.sync and plain_install_is_sync_without_removals(
            poetry, reresolve=False
        )
        check = install_check(
            plain_install(
                changes, lambda all_extras: planned(False, all_extras), derived
            ),
            own,
            target,
            locked.names,
        )

    def holders_for(name: str, specifier: str) -> Sequence[Holder]:
        return project_holders(poetry, name, specifier, locked)

    report = assess(
        poetry=own,
        target=target,
        changes=changes,
        policy=policy,
        holders_for=holders_for,
        project=str(project_dir(poetry)),
        sync=options.sync,
        install_check=check,
        flags=options.flags,
    )
    if basis is not None:
        report = replace(report, assumed=basis.assumed)
    return planned_ownership(report, changes, policy) if target.shared else report


def planned_ownership(
    report: Report, changes: Sequence[PlannedChange], policy: Policy
) -> Report:
    """``env-audit``'s ownership by file: the planned wheels Poetry's cache
    (or a ``file`` source) already has are checked, nothing is downloaded;
    the report counts the others."""
    from poetry_env_audit.ownership import check_planned
    from poetry_env_audit.ownership import protected_files

    protected = protected_files(report.poetry, report.target.shared_dirs)
    installs = [c for c in changes if c.action is not Action.REMOVE and c.planned]
    if not protected or not installs:
        return report
    from poetry_env_audit.artifacts import CachedWheels
    from poetry_env_audit.artifacts import poetry_cache

    try:
        cache = poetry_cache()
    except OSError:  # an unreadable cache: every planned wheel is unchecked
        cache = CachedWheels()
    result = check_planned(installs, protected, cache.find)
    return with_overwrites(
        report,
        result.overwrites,
        policy,
        checked=result.checked,
        unchecked=result.unchecked,
    )
