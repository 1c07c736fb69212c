"""What the guard decides about the operations Poetry is about to execute.

:func:`decide` asks the engine (:func:`audit.assess`) with the same policy and
remedies as ``poetry env-audit``; the plan is the exact operations Poetry
computed (from the lock for ``install``/``sync``, after solving for
``add``/``update``/``remove``).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING

from poetry_env_audit.policy import PolicyAction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetry.installation.operations.operation import Operation

    from poetry_env_audit.audit import InstallCheck
    from poetry_env_audit.findings import Holder
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.plan import Reach
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.policy import Policy
    from poetry_env_audit.report import Report
    from poetry_env_audit.seams.command import InstallingCommand
    from poetry_env_audit.seams.plan import LockedPackages
    from poetry_env_audit.target import TargetEnvironment


@dataclass(frozen=True)
class Decision:
    """``report`` when the operations were judged; else, at most, the shared
    target that nothing changes in (the one-line notice)."""

    report: Report | None = None
    unchanged: TargetEnvironment | None = None


def decide(
    command: InstallingCommand, operations: Sequence[Operation], policy: Policy
) -> Decision:
    """Judge ``operations``; nothing to judge when the target does not overlap
    Poetry's environment (the fast path) or nothing changes."""
    from poetry_env_audit.seams.environment import describe_own_env
    from poetry_env_audit.seams.environment import describe_project_env
    from poetry_env_audit.seams.plan import operations_to_changes

    env = command.env
    import_paths = command.import_paths
    if not command.shares_with_poetry:
        return Decision()
    from poetry_env_audit.seams.plan import LockedPackages

    locked = LockedPackages(command.poetry)
    # Names and versions first: no requirement is read unless there is a decision.
    changes = operations_to_changes(operations, locked, _read_none)
    shared = policy.action("shared")
    if not changes and shared is not PolicyAction.BLOCK:
        if command.is_self or shared is not PolicyAction.WARN:
            return Decision()
        return Decision(
            unchanged=describe_project_env(command.poetry, env, import_paths)
        )

    from poetry_env_audit.audit import assess
    from poetry_env_audit.poetry_env import inspect_poetry_environment
    from poetry_env_audit.seams.command import install_flags
    from poetry_env_audit.seams.plan import project_holders

    if command.is_self:
        target = describe_own_env(env, import_paths)
        policy = self_policy(policy)
    else:
        target = describe_project_env(command.poetry, env, import_paths)
    own = inspect_poetry_environment(import_paths)
    from poetry_env_audit.plan import reach_from

    reach = reach_from(own.roots, {n: d.requires for n, d in own.index.items()})
    changes = operations_to_changes(operations, locked, reach)

    def holders_for(name: str, specifier: str) -> list[Holder]:
        if command.is_self:
            return []
        return project_holders(command.poetry, name, specifier, locked)

    return Decision(
        report=assess(
            poetry=own,
            target=target,
            changes=changes,
            policy=policy,
            holders_for=holders_for,
            project=str(command.project_dir),
            command=command.retry_command(),
            install_check=None
            if command.is_self
            else _install_check(command, own, target, locked, changes, reach),
            flags=install_flags(command.io),
        )
    )


def _install_check(
    command: InstallingCommand,
    own: PoetryEnvironment,
    target: TargetEnvironment,
    locked: LockedPackages,
    changes: Sequence[PlannedChange],
    reach: Reach,
) -> InstallCheck:
    """The engine's check of "install without synchronising" for this command."""
    from poetry_env_audit.audit import install_check
    from poetry_env_audit.audit import plain_install
    from poetry_env_audit.seams.plan import plain_install_is_sync_without_removals
    from poetry_env_audit.seams.plan import planned_changes

    groups, extras = command.install_options()

    def planned(all_extras: bool) -> list[PlannedChange]:
        return planned_changes(
            command.poetry,
            command.env,
            locked,
            groups=groups,
            extras=extras,
            sync=False,
            all_extras=all_extras,
            reach=reach,
        )

    derived = command.synchronising and plain_install_is_sync_without_removals(
        command.poetry, reresolve=command.reresolves
    )
    return install_check(
        plain_install(changes, planned, derived), own, target, locked.names
    )


def _read_none(changes: object, requirements: object) -> set[str]:
    """A reach that reads no requirement (the changes' names and versions only)."""
    del changes, requirements
    return set()


def touched_closure(
    command: InstallingCommand, operations: Sequence[Operation]
) -> tuple[str, ...]:
    """The packages of Poetry's closure that ``operations`` change, for when
    the decision failed: never raises, and errs on the side of naming them.

    Empty when the target does not share Poetry's environment (for ``self``
    commands it always does) or no operation touches the closure.
    """
    from packaging.utils import canonicalize_name

    try:
        names: set[str] = {
            str(canonicalize_name(str(op.package.name)))
            for op in operations
            if not op.skipped
        }
    except Exception:  # noqa: BLE001 - unreadable operations: assume the worst
        return ("(unknown)",)
    import_paths = command.import_paths
    try:
        if not command.shares_with_poetry:
            return ()
    except Exception:  # noqa: BLE001,S110 - cannot tell: take it as shared
        pass
    needed: set[str]
    try:
        from poetry_env_audit.poetry_env import inspect_poetry_environment

        needed = {d.name for d in inspect_poetry_environment(import_paths).needed}
    except Exception:  # noqa: BLE001 - then everything Poetry can import counts
        try:
            from poetry_env_audit.poetry_env import scan_distributions

            needed = {str(n) for n in scan_distributions(import_paths)}
        except Exception:  # noqa: BLE001 - nothing readable: every name counts
            needed = names
    return tuple(sorted(names & needed))


def self_policy(policy: Policy) -> Policy:
    """``poetry self`` changes Poetry on purpose: never block it for ``changes``."""
    actions = dict(policy.actions)
    if actions["changes"] is PolicyAction.BLOCK:
        actions["changes"] = PolicyAction.SERIALISE
    actions["shared"] = PolicyAction.OFF
    return replace(policy, actions=actions)


def serialised_names(report: Report) -> frozenset[str]:
    """Canonical names of the packages whose swaps run alone, after the rest
    (for a wheel that writes over another distribution's files, the wheel's)."""
    from packaging.utils import canonicalize_name

    return frozenset(
        canonicalize_name(f.by or f.package)
        for f in report.findings
        if f.policy is PolicyAction.SERIALISE
    )


def overwriting(report: Report) -> dict[str, str]:
    """Serialised wheels that write over files of a distribution Poetry
    needs: wheel -> that distribution (canonical names), whose files the
    swap's journal keeps."""
    from packaging.utils import canonicalize_name

    return {
        canonicalize_name(f.by): canonicalize_name(f.package)
        for f in report.findings
        if f.by and f.policy is PolicyAction.SERIALISE
    }
