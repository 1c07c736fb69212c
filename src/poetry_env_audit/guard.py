"""The install guard: decide on the exact operations, then block, serialise or warn.

Attached to every installing command by a COMMAND listener, it replaces
``execute`` on that command's Executor instance. Poetry computes the
operations (from the lock for ``install``/``sync``, after solving for
``add``/``update``/``remove``) and hands them to ``execute`` before any
download or file change: that is where the engine (:func:`audit.assess`) is
asked, with the same policy and remedies as ``poetry env-audit``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit import seams
from poetry_env_audit.envlock import externally_managed_error
from poetry_env_audit.errors import AuditError
from poetry_env_audit.errors import ConfigError
from poetry_env_audit.policy import PolicyAction
from poetry_env_audit.policy import load_policy
from poetry_env_audit.policy import strict_requested
from poetry_env_audit.target import overlap
from poetry_env_audit.target import real_dirs

if TYPE_CHECKING:
    from cleo.io.io import IO
    from poetry.installation.operations.operation import Operation

    from poetry_env_audit.envlock import EnvironmentLock
    from poetry_env_audit.policy import Policy
    from poetry_env_audit.report import Report
    from poetry_env_audit.seams import ExecutorHandle


class _Messages:
    """``render.guard``, imported the first time a message is written."""

    def __getattr__(self, name: str) -> Any:
        from poetry_env_audit.render import guard

        return getattr(guard, name)


messages: Any = _Messages()


class InstallGuard:
    def __init__(self, command: Any, io: IO) -> None:
        self.command = command
        self.io = io
        self.is_self = seams.is_self_command(command)
        self.refused = False
        self.lock: EnvironmentLock | None = None
        self.policy: Policy | None = None
        self.lines: list[str] = []

    # ------------------------------------------------------------ before the command runs

    def prepare(self) -> None:
        """At COMMAND time, before Poetry plans: PEP 668, then the environment lock.

        Sets :attr:`refused` when the command must not run at all.
        """
        table: object = None
        try:
            table = seams.project_table(self.command.poetry)
            policy = self.load_policy(table)
            dry_run = seams.input_option(self.io, "dry-run")
            installer = seams.command_installer(self.command)
            env = seams.executor_env(installer, self.command)
            if not self.is_self and not self.externally_managed_ok(
                env, policy, dry_run
            ):
                self.refused = True
                return
            if policy.lock and not dry_run:
                self.take_lock(installer, env, policy)
        except AuditError as error:
            self.io.write_error_line(
                f"<error>{messages.PREFIX}: {messages._flat(str(error))}</error>"
            )
            self.refused = True
        except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
            strict = strict_requested(table, os.environ)
            self.io.write_error_line(messages.internal_error(error, strict=strict))
            self.refused = strict

    def load_policy(self, table: object) -> Policy:
        """The run's policy, read once (at COMMAND time) and kept for ``execute``."""
        if self.policy is None:
            self.policy = load_policy(table, os.environ)  # type: ignore[arg-type]
        return self.policy

    def externally_managed_ok(self, env: Any, policy: Policy, dry_run: bool) -> bool:
        if env.is_venv():
            return True
        stdlib = seams.env_stdlib(env)
        marker = externally_managed_error(stdlib, in_venv=False) if stdlib else None
        if marker is None:
            return True
        action = policy.action("externally-managed")
        if action is PolicyAction.OFF:
            return True
        if action is PolicyAction.BLOCK and not dry_run:
            self.io.write_error_line(messages.externally_managed(str(env.path), marker))
            return False
        self.io.write_error_line(
            messages.externally_managed(str(env.path), marker, refused=False)
        )
        return True

    def take_lock(self, installer: Any, env: Any, policy: Policy) -> None:
        from poetry_env_audit.envlock import EnvironmentLock

        name = str(getattr(self.command, "name", "") or "install")
        lock = EnvironmentLock(
            seams.env_purelib(env),
            timeout=policy.lock_timeout,
            command=f"poetry {name}",
            notify=lambda line: self.io.write_error_line(
                f"<comment>{messages.PREFIX}: {messages._flat(line)}</comment>"
            ),
        )
        lock.acquire()
        self.lock = lock
        if lock.waited:
            seams.refresh_installed(installer)

    def unguarded(self) -> None:
        import contextlib

        table: object = None
        with contextlib.suppress(Exception):  # best effort: the env var still counts
            table = seams.project_table(self.command.poetry)
        strict = strict_requested(table, os.environ)
        self.io.write_error_line(
            f"<warning>{messages.PREFIX}: this Poetry gives the plugin no installer"
            " (InstallerCommand._installer), so this command is NOT guarded"
            f"{'; strict mode stops here' if strict else ''}.</warning>"
        )
        self.refused = strict

    def finish(self) -> None:
        """At TERMINATE: after the last operation and the root-project install."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ------------------------------------------------------------ entry point

    def execute(self, handle: ExecutorHandle, operations: list[Operation]) -> int:
        ops = list(operations)
        table: object = None
        try:
            poetry = self.command.poetry
            table = seams.project_table(poetry)
            report = self.decide(poetry, ops, self.load_policy(table))
        except ConfigError as error:
            self.io.write_error_line(
                f"<error>{messages.PREFIX}: {messages._flat(str(error))}</error>"
            )
            return 1
        except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
            strict = strict_requested(table, os.environ)
            self.io.write_error_line(messages.internal_error(error, strict=strict))
            if self.io.is_debug():
                import traceback

                self.io.write_error_line(traceback.format_exc())
            return 1 if strict else handle.run(ops)
        self.report_missing_seams()
        if report is None:
            return handle.run(ops)
        return self.act(handle, ops, report)

    def report_missing_seams(self) -> None:
        for seam, fallback in sorted(seams.MISSING.items()):
            self.io.write_error_line(
                f"<warning>{messages.PREFIX}: this Poetry lacks {seam}; {fallback}.</warning>"
            )
        seams.MISSING.clear()

    # ------------------------------------------------------------ decision

    def decide(
        self, poetry: Any, ops: list[Operation], policy: Policy
    ) -> Report | None:
        """``None`` when the target does not overlap Poetry's environment (the fast path)."""
        installer = seams.command_installer(self.command)
        env = seams.executor_env(installer, self.command)
        import_paths = real_dirs(p for p in sys.path if p)
        if not self.is_self and not overlap(seams.env_site_dirs(env), import_paths):
            return None

        changes = seams.operations_to_changes(ops)
        if not changes and policy.action("shared") is not PolicyAction.BLOCK:
            # Nothing will change: no audit, at most the one-line notice.
            if not self.is_self and policy.action("shared") is PolicyAction.WARN:
                target = seams.describe_project_env(poetry, env, import_paths)
                self.lines.append(
                    messages.notice_for(
                        seams.poetry_version(), target.path, target.reason
                    )
                )
                self.flush(None)
            return None

        from poetry_env_audit.audit import assess
        from poetry_env_audit.poetry_env import inspect_poetry_environment

        if self.is_self:
            target = seams.describe_env(
                env, kind="poetry", reason="poetry self", import_paths=import_paths
            )
            policy = _self_policy(policy)
        else:
            target = seams.describe_project_env(poetry, env, import_paths)
        own = inspect_poetry_environment(import_paths)

        def holders_for(name: str, specifier: str) -> list[seams.Holder]:
            return (
                [] if self.is_self else seams.project_holders(poetry, name, specifier)
            )

        return assess(
            poetry=own,
            target=target,
            changes=changes,
            policy=policy,
            holders_for=holders_for,
            project=str(seams.project_dir(poetry)),
            command=self.retry_command(),
        )

    def retry_command(self) -> str | None:
        """For ``poetry remove``: the same removal without touching the environment."""
        if getattr(self.command, "name", "") != "remove":
            return None
        import shlex

        try:
            packages = [str(p) for p in self.command.argument("packages")]
        except Exception:  # noqa: BLE001 - an argument this version lacks
            packages = ["<package>"]
        return "poetry remove --lock " + " ".join(shlex.quote(p) for p in packages)

    # ------------------------------------------------------------ action

    def act(self, handle: ExecutorHandle, ops: list[Operation], report: Report) -> int:
        from poetry_env_audit.report import RunVerdict

        dry_run = seams.is_dry_run(seams.command_installer(self.command), self.command)
        self.warn(report, dry_run=dry_run)
        if report.verdict is RunVerdict.BLOCK:
            self.lines.append(messages.blocked(report, dry_run=dry_run))
        self.flush(report)
        if report.verdict is RunVerdict.BLOCK and not dry_run:
            return 1
        from packaging.utils import canonicalize_name

        serial: set[str] = {
            canonicalize_name(f.package)
            for f in report.findings
            if f.policy is PolicyAction.SERIALISE
        }
        if dry_run or not serial:
            return handle.run(ops)
        return self.serialise(handle, ops, report, serial)

    def warn(self, report: Report, *, dry_run: bool = False) -> None:
        from poetry_env_audit.report import RunVerdict

        blocking = report.verdict is RunVerdict.BLOCK
        for env in report.environment:
            if env.policy is PolicyAction.WARN:
                if env.kind == "shared":
                    if blocking:
                        continue  # the refusal says it already
                    self.lines.append(messages.notice(report))
                else:
                    self.lines.append(messages.env_warning(env))
        for finding in report.findings:
            if finding.policy is PolicyAction.WARN:
                self.lines.append(messages.warning(finding))
        if not blocking:
            for finding in report.findings:
                if finding.policy is PolicyAction.SERIALISE:
                    self.lines.append(messages.serialised(finding, dry_run=dry_run))

    def flush(self, report: Report | None) -> None:
        """The guard's lines on stderr; in CI also the CI system's own form.

        In GitHub Actions the lines sit between ``::stop-commands::`` and its
        token, so data in them cannot start a workflow command; then one
        annotation per finding follows. Azure gets its ``##vso`` issues,
        GitLab a collapsible section around the lines. Without a report (the
        no-op notice) there is nothing to annotate: the lines alone, made inert.
        """
        from cleo.io.outputs.output import Type

        from poetry_env_audit import ci
        from poetry_env_audit.render import Format
        from poetry_env_audit.render import guard_log

        lines, self.lines = self.lines, []
        fmt = ci.auto_format(
            os.environ, self.policy.ci_output if self.policy else "auto"
        )
        if fmt is None or fmt in (Format.TEXT, Format.JSON):
            for line in lines:
                self.io.write_error_line(line)
            return
        if report is None:
            for line in lines:
                self.io.write_error_line(guard_log(line, fmt))
            return
        lock_path, lock_lines = ci.lock_lines_for(
            fmt, Path(report.project or ".") / "poetry.lock", os.environ
        )
        if fmt is Format.GITLAB:
            from poetry_env_audit.render import gitlab

            if not lines:
                return
            stamp = gitlab.timestamp()
            self.io.write_error_line(gitlab.section_start(report, stamp), type=Type.RAW)
            for line in lines:
                self.io.write_error_line(guard_log(line, fmt))
            self.io.write_error_line(gitlab.section_end(stamp), type=Type.RAW)
            return
        if fmt is Format.GITHUB:
            from poetry_env_audit.render import github as renderer

            token = renderer.new_token()
            if lines:
                self.io.write_error_line(renderer.stop_commands(token), type=Type.RAW)
                for line in lines:
                    self.io.write_error_line(guard_log(line, fmt))
                self.io.write_error_line(renderer.resume_commands(token), type=Type.RAW)
        else:
            from poetry_env_audit.render import azure as renderer  # type: ignore[no-redef]

            for line in lines:
                self.io.write_error_line(guard_log(line, fmt))
        annotations = renderer.render(
            report, lock_path=lock_path, lock_lines=lock_lines
        )
        if annotations:
            self.io.write_line(annotations, type=Type.RAW)

    def serialise(
        self,
        handle: ExecutorHandle,
        ops: list[Operation],
        report: Report,
        serial: set[str],
    ) -> int:
        """All other operations first (parallel as configured), then Poetry's, one at a time.

        ``serial`` holds canonical names, as ``Package.name`` is in Poetry. With
        nothing else running, a swap's ``pip uninstall`` subprocess is pure
        waiting: where Poetry has an in-process uninstaller, it is used instead
        (``serial-uninstaller``).
        """
        first = [op for op in ops if op.package.name not in serial]
        last = [op for op in ops if op.package.name in serial]
        handle.summary(ops)
        handle.quiet_summary()
        try:
            status = handle.run(first) if first else 0
            if status or handle.shut_down():
                return status or 1
            seams.warm_env(
                seams.executor_env(seams.command_installer(self.command), self.command)
            )
            builtin = self.policy is None or self.policy.serial_uninstaller == "builtin"
            for op in last:
                handle.choose_uninstaller(op.package.name, builtin=builtin)
                status = handle.run([op])
                if status or handle.shut_down():
                    return status or 1
        finally:
            handle.restore_uninstaller()
            handle.restore_summary()
        return 0


def _self_policy(policy: Policy) -> Policy:
    """``poetry self`` changes Poetry on purpose: never block it for ``changes``."""
    actions = dict(policy.actions)
    if actions["changes"] is PolicyAction.BLOCK:
        actions["changes"] = PolicyAction.SERIALISE
    actions["shared"] = PolicyAction.OFF
    return replace(policy, actions=actions)


def attach(command: Any, io: IO) -> InstallGuard | None:
    """Wrap the command's executor, unless this command never executes operations."""
    if getattr(command, "name", "") in ("lock", "self lock"):
        return None
    installer = seams.command_installer(command)
    if installer is None or not hasattr(installer, "executor"):
        # Never silently unguarded: say so; strict refuses to go on.
        guard = InstallGuard(command, io)
        guard.unguarded()
        return guard
    guard = InstallGuard(command, io)
    seams.wrap_execute(installer, guard.execute)
    guard.prepare()
    return guard
