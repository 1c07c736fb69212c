"""The install guard: gate, lock, decide, act.

Attached to every installing command by the COMMAND listener
(:func:`attach`), it replaces ``execute`` on that command's Executor
instance. At COMMAND time, before Poetry plans, it applies the PEP 668 gate
and takes the environment lock; when Poetry hands the operations to
``execute`` (before any download or file change) it decides on them
(:func:`decision.decide`) and acts: block, serialise Poetry's packages, or
warn. TERMINATE releases the lock (:meth:`InstallGuard.finish`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from typing import Callable

from poetry_env_audit.decision import decide
from poetry_env_audit.errors import AuditError
from poetry_env_audit.errors import ConfigError
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import load_policy
from poetry_env_audit.policy import strict_requested
from poetry_env_audit.seams.command import InstallingCommand

if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence
    from pathlib import Path

    from cleo.io.io import IO
    from poetry.installation.operations.operation import Operation

    from poetry_env_audit.console import GuardConsole
    from poetry_env_audit.decision import Decision
    from poetry_env_audit.envlock import EnvironmentLock
    from poetry_env_audit.ownership import Owner
    from poetry_env_audit.policy import Policy
    from poetry_env_audit.report import Report
    from poetry_env_audit.seams.executor import ExecutorHandle

    Decide = Callable[[InstallingCommand, Sequence[Operation], Policy], Decision]


class FileOwnershipError(Exception):
    """Raised inside Poetry's executor to stop a wheel that would overwrite
    a file of a distribution Poetry needs."""


class InstallGuard:
    """One installing command's guard. ``refused`` is set when the command must
    not run (or, at TERMINATE, must fail)."""

    def __init__(self, command: InstallingCommand, *, decide: Decide = decide) -> None:
        from poetry_env_audit.console import GuardConsole

        self.command = command
        self.console: GuardConsole = GuardConsole(command.io)
        self.refused = False
        self.lock: EnvironmentLock | None = None
        #: The lock file could not be created (read-only target), see ``prepare``.
        self.unwritable: AuditError | None = None
        self._decide = decide
        self._policy: Policy | None = None

    def policy(self) -> Policy:
        """The run's policy, read once (at COMMAND time) and kept for ``execute``."""
        if self._policy is None:
            self._policy = load_policy(self.command.table(), os.environ)  # type: ignore[arg-type]
        return self._policy

    # ------------------------------------------------------------ COMMAND time

    def prepare(self) -> None:
        """Before Poetry plans: the PEP 668 gate, then the environment lock."""
        from poetry_env_audit.envlock import EnvLockUnwritableError

        try:
            policy = self.policy()
            dry_run = self.command.dry_run()
            if not self.command.is_self and not pep668_gate(
                self.command, self.console, policy, dry_run
            ):
                self.refused = True
            elif policy.lock and not dry_run and lock_wanted(self.command, policy):
                self.lock = take_lock(self.command, self.console, policy)
            watch_lock(self.command)
        except EnvLockUnwritableError as error:
            # A read-only target: nothing can change there. Refused in
            # ``execute`` only if there turns out to be something to do.
            self.unwritable = error
        except AuditError as error:
            from poetry_env_audit.render import guard as messages

            self.console.line(messages.audit_error(error))
            self.refused = True
        except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
            self.refused = internal_error(self.command, self.console, error)

    def unguarded(self) -> None:
        """This Poetry gives the plugin no installer: say so; strict refuses."""
        from poetry_env_audit.render import guard as messages

        strict = strict_requested(self.command.table_or_none(), os.environ)
        self.console.line(messages.unguarded(strict=strict))
        self.refused = strict

    def finish(self) -> None:
        """At TERMINATE: after the last operation and the root-project install."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ------------------------------------------------------------ execute

    def execute(self, handle: ExecutorHandle, operations: list[Operation]) -> int:
        """Poetry's ``execute``, guarded: decide on the exact operations, then act."""
        ops = list(operations)
        if self.unwritable is not None and any(not op.skipped for op in ops):
            from poetry_env_audit.render import guard as messages

            self.console.line(messages.audit_error(self.unwritable))
            return 1
        try:
            decision = self._decide(self.command, ops, self.policy())
        except ConfigError as error:
            from poetry_env_audit.render import guard as messages

            self.console.line(messages.audit_error(error))
            return 1
        except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
            return undecided(
                self.command, self.console, handle, ops, error, self._policy
            )
        if decision.unchanged is not None:
            from poetry_env_audit.render import guard as messages
            from poetry_env_audit.seams import poetry_version

            notice = messages.notice(poetry_version(), decision.unchanged)
            self._say([notice], None)
        report = decision.report
        if report is not None and report.target.shared and not self.command.dry_run():
            from poetry_env_audit.ownership import protected_files

            protected: Mapping[str, Owner] = {}
            checked: frozenset[str] = frozenset()
            try:
                protected = protected_files(report.poetry, report.target.shared_dirs)
                report, checked = precheck_wheels(
                    handle, ops, report, self.policy(), protected
                )
            except Exception as error:  # noqa: BLE001 - each wheel is still checked as it is written
                if internal_error(self.command, self.console, error):
                    return 1
            guard_wheels(handle, self.console, self.policy(), protected, checked)
        for seam, fallback in self.command.fallbacks.take():
            from poetry_env_audit.render import guard as messages

            self.console.line(messages.missing_seam(seam, fallback))
        if report is None:
            return handle.run(ops)
        return self._act(handle, ops, report)

    def _act(self, handle: ExecutorHandle, ops: list[Operation], report: Report) -> int:
        from poetry_env_audit.decision import overwriting
        from poetry_env_audit.decision import serialised_names
        from poetry_env_audit.render import guard as messages
        from poetry_env_audit.report import RunVerdict

        dry_run = self.command.dry_run()
        self._say(messages.report_lines(report, dry_run=dry_run), report)
        if report.verdict is RunVerdict.BLOCK and not dry_run:
            return 1
        serial = serialised_names(report)
        if dry_run or not serial:
            return handle.run(ops)
        return handle.run_serialised(
            ops,
            serial,
            builtin=self.policy().serial_uninstaller == "builtin",
            before_swaps=self.command.warm_env,
            owners=overwriting(report),
        )

    # ------------------------------------------------------------ output

    def _say(self, lines: list[str], report: Report | None) -> None:
        ci_output = self._policy.ci_output if self._policy else "auto"
        self.console.lines(lines, report, ci_output=ci_output)


# ------------------------------------------------------------ the steps


def pep668_gate(
    command: InstallingCommand, console: GuardConsole, policy: Policy, dry_run: bool
) -> bool:
    """PEP 668: whether the command may install into the target."""
    from poetry_env_audit.envlock import externally_managed_error
    from poetry_env_audit.render import guard as messages
    from poetry_env_audit.seams.environment import env_stdlib

    env = command.env
    if env.is_venv():
        return True
    stdlib = env_stdlib(env)
    marker = externally_managed_error(stdlib, in_venv=False) if stdlib else None
    action = policy.action("externally-managed")
    if marker is None or action is PolicyAction.OFF:
        return True
    refuse = action is PolicyAction.BLOCK and not dry_run
    console.line(messages.externally_managed(str(env.path), marker, refused=refuse))
    return not refuse


def undecided(
    command: InstallingCommand,
    console: GuardConsole,
    handle: ExecutorHandle,
    ops: list[Operation],
    error: Exception,
    policy: Policy | None,
) -> int:
    """``execute`` when the decision failed: operations that change Poetry's
    closure are treated as ``unverified`` (refused by default, or serialised),
    anything else carries on (unless ``strict``)."""
    from poetry_env_audit.decision import touched_closure

    touched = touched_closure(command, ops)
    action = _unverified_action(policy) if touched else None
    if internal_error(command, console, error, touched=touched, action=action):
        return 1
    if action is PolicyAction.SERIALISE and not command.dry_run():
        from packaging.utils import canonicalize_name

        return handle.run_serialised(
            ops,
            frozenset(canonicalize_name(n) for n in touched),
            builtin=policy is None or policy.serial_uninstaller == "builtin",
            before_swaps=command.warm_env,
        )
    return handle.run(ops)


def _unverified_action(policy: Policy | None) -> PolicyAction:
    """The ``unverified`` policy, never raising (block when unreadable)."""
    try:
        return policy.action("unverified") if policy else PolicyAction.BLOCK
    except Exception:  # noqa: BLE001 - an error path: the safe default
        return PolicyAction.BLOCK


def precheck_wheels(
    handle: ExecutorHandle,
    ops: Sequence[Operation],
    report: Report,
    policy: Policy,
    protected: Mapping[str, Owner],
) -> tuple[Report, frozenset[str]]:
    """Ownership by file before the first operation runs: the wheels of the
    planned installs (fetched as Poetry would, :meth:`ExecutorHandle.archives`)
    checked against the files of the distributions Poetry needs. A wheel
    that would write over them becomes a finding on that distribution
    (``breaks``, or ``changes`` when every file keeps its bytes), so that a
    refusal comes before any file is touched and a valid overwrite is
    serialised. Returns the report and the wheels checked (real paths)."""
    from poetry_env_audit.audit import with_overwrites
    from poetry_env_audit.ownership import collisions
    from poetry_env_audit.ownership import overwrites

    if not protected:
        return report, frozenset()
    archives = handle.archives(ops)
    found = []
    checked: set[str] = set()
    for _, wheel in archives.wheels:
        try:
            found.extend(collisions(wheel, protected))
        except Exception:  # noqa: BLE001,S112 - checked again as it is written
            continue
        checked.add(os.path.realpath(wheel))
    if found:
        report = with_overwrites(report, overwrites(found), policy)
    return report, frozenset(checked)


def guard_wheels(
    handle: ExecutorHandle,
    console: GuardConsole,
    policy: Policy,
    protected: Mapping[str, Owner],
    checked: frozenset[str] = frozenset(),
) -> None:
    """As each wheel is written, those not checked before the first
    operation (``checked``: built during the install, from a directory or
    git): one that writes other content over a file of a distribution Poetry
    needs is ``breaks`` (refused by default: the operation fails before the
    file is written and Poetry runs nothing more); one that writes the same
    bytes is ``changes``, which can no longer be serialised at that point:
    refused where ``changes`` blocks, else installed with a warning."""
    from poetry_env_audit.ownership import collisions
    from poetry_env_audit.render import guard as messages

    if not protected:
        return

    def check(archive: Path) -> None:
        if os.path.realpath(archive) in checked:
            return
        found = collisions(archive, protected)
        if not found:
            return
        identical = all(c.identical for c in found)
        action = policy.action("changes" if identical else "breaks")
        if action is PolicyAction.OFF:
            return
        refuse = action is PolicyAction.BLOCK
        console.line(messages.file_collision(found, refused=refuse))
        if refuse:
            raise FileOwnershipError(messages.plain_collision(found))

    handle.check_wheels(check)


def lock_wanted(command: InstallingCommand, policy: Policy) -> bool:
    """Whether to lock the target: when it shares Poetry's environment (where
    another Poetry's install can break this one), or always if configured.
    Nothing is written into a target that shares nothing."""
    if policy.lock_always:
        return True
    return command.shares_with_poetry


def watch_lock(command: InstallingCommand) -> None:
    """Where the decision will run (a target that shares Poetry's environment),
    keep Poetry's own read of the lock for it: one parse of the lock, not two."""
    if command.is_self:
        return
    if command.shares_with_poetry:
        from poetry_env_audit.seams.plan import watch_locked_repository

        watch_locked_repository(command.poetry)


def take_lock(
    command: InstallingCommand, console: GuardConsole, policy: Policy
) -> EnvironmentLock:
    """The environment lock on the target, held until TERMINATE."""
    from poetry_env_audit.envlock import EnvironmentLock
    from poetry_env_audit.render import guard as messages
    from poetry_env_audit.seams.environment import env_purelib

    lock = EnvironmentLock(
        env_purelib(command.env),
        timeout=policy.lock_timeout,
        command=f"poetry {command.name}",
        notify=lambda line: console.line(messages.comment(line)),
    )
    lock.acquire()
    if lock.waited:
        command.refresh_installed()
    return lock


def internal_error(
    command: InstallingCommand,
    console: GuardConsole,
    error: Exception,
    *,
    touched: Sequence[str] = (),
    action: PolicyAction | None = None,
) -> bool:
    """The one rule for the plugin's own errors: one line, and Poetry carries
    on unless ``strict`` is set, or the operations it was deciding on change
    ``touched`` packages of Poetry's closure and ``action`` (the
    ``unverified`` policy) blocks. Returns whether to stop."""
    from poetry_env_audit.render import guard as messages

    strict = strict_requested(command.table_or_none(), os.environ)
    if touched and action is PolicyAction.BLOCK and not command.dry_run():
        console.line(messages.internal_error_refused(error, touched))
        return True
    console.line(messages.internal_error(error, strict=strict))
    if command.io.is_debug():
        import traceback

        console.line(traceback.format_exc())
    return strict


def attach(command: object, io: IO) -> InstallGuard | None:
    """Wrap the command's executor, unless this command never executes operations."""
    installing = InstallingCommand(command, io)
    if not installing.runs_operations:
        return None
    guard = InstallGuard(installing)
    if not installing.guardable:
        # Never silently unguarded: say so; strict refuses to go on.
        guard.unguarded()
        return guard
    installing.wrap_execute(guard.execute)
    guard.prepare()
    return guard
