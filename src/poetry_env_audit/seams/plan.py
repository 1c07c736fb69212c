"""Poetry's lock and plan: the operations ``poetry install`` would execute.

Poetry's ``Locker`` and ``Installer`` do the work (a dry run with a recording
executor); what comes back is reduced to
:class:`~poetry_env_audit.plan.PlannedChange` values and, for remedies, to the
project's :class:`~poetry_env_audit.findings.Holder` constraints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.errors import AuditError
from poetry_env_audit.findings import Holder
from poetry_env_audit.seams import one_line

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence

    from poetry.installation.operations.operation import Operation
    from poetry.poetry import Poetry
    from poetry.utils.env import Env

    from poetry_env_audit.plan import PlannedChange


def check_lock(poetry: Poetry) -> None:
    """Raise :class:`AuditError` unless the lock is present and readable.

    Freshness is Poetry's own first check when it plans (:func:`plan_operations`);
    :func:`check_fresh` says it in our words. Reading it here as well would
    parse the lock a second time.
    """
    locker = poetry.locker
    lock_path = Path(locker.lock)
    if not lock_path.exists():
        raise AuditError(
            f"{lock_path} does not exist.",
            hint="Run `poetry lock` first; env-audit plans from the lock, never from an index.",
        )
    try:
        data = locker.lock_data
        if not isinstance(data, dict) or (
            "package" not in data and "metadata" not in data
        ):
            raise RuntimeError("no [metadata] table")
    except Exception as exc:
        raise _unreadable(lock_path, exc) from exc


def check_fresh(poetry: Poetry) -> None:
    """Raise :class:`AuditError` when the lock is out of date with pyproject.toml."""
    lock_path = Path(poetry.locker.lock)
    try:
        fresh = poetry.locker.is_fresh()
    except Exception as exc:
        raise _unreadable(lock_path, exc) from exc
    if not fresh:
        raise AuditError(
            f"{lock_path} is out of date with pyproject.toml; auditing it would need"
            " a new solve over the network.",
            hint="Run `poetry lock` to bring it up to date.",
        )


def _unreadable(lock_path: Path, exc: BaseException) -> AuditError:
    return AuditError(
        f"{lock_path} could not be read: {one_line(exc)}.",
        hint="Regenerate it with `poetry lock`.",
    )


class RecordingExecutor:
    """Stands in for Poetry's Executor: records the operations, runs none."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self._enabled = True

    @property
    def enabled(self) -> bool:
        return self._enabled

    def disable(self) -> RecordingExecutor:
        self._enabled = False
        return self

    def dry_run(self, dry_run: bool = True) -> RecordingExecutor:
        return self

    def verbose(self, verbose: bool = True) -> RecordingExecutor:
        return self

    def enable_bytecode_compilation(self, enable: bool = True) -> None:
        return None

    def execute(self, operations: list[Operation]) -> int:
        self.operations = list(operations)
        return 0


class _FromLockMarkers:
    """Poetry's config with ``installer.re-resolve`` off, for planning only.

    Poetry 2.0 to 2.4 re-resolve the lock by default (2.5 does not); with it
    off, Poetry's Installer evaluates the markers a 2.1 lock records instead of
    solving, and falls back to solving for an older lock itself. Poetry 1.8
    has no such switch and always solves over the lock's packages (never an
    index).
    """

    def __init__(self, config: Any) -> None:
        self._config = config

    def get(self, setting_name: str, default: Any = None) -> Any:
        if setting_name == "installer.re-resolve":
            return False
        return self._config.get(setting_name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


def plan_operations(
    poetry: Poetry,
    env: Env,
    *,
    groups: Iterable[str] | None,
    extras: Sequence[str],
    sync: bool,
) -> list[Operation]:
    """Ask Poetry's Installer what ``poetry install`` would execute (a dry run).

    Raises :class:`AuditError` for a stale lock (:func:`check_fresh`).
    """
    from cleo.io.null_io import NullIO
    from packaging.utils import canonicalize_name
    from poetry.installation.installer import Installer

    recorder = RecordingExecutor()
    installer = Installer(
        NullIO(),
        env,
        poetry.package,
        poetry.locker,
        poetry.pool,
        _FromLockMarkers(poetry.config),  # type: ignore[arg-type]
        executor=recorder,  # type: ignore[arg-type]
    )
    installer.dry_run(True)
    if groups is not None:
        installer.only_groups({canonicalize_name(g) for g in groups})
    installer.extras([canonicalize_name(e) for e in extras])
    installer.requires_synchronization(sync)
    try:
        status = installer.run()
    except AuditError:
        raise
    except Exception as exc:
        check_fresh(poetry)  # Poetry's ValueError for a stale lock, in our words
        raise AuditError(
            f"Poetry could not plan the install: {one_line(exc)}."
        ) from exc
    if status != 0:
        raise AuditError(f"Poetry could not plan the install (status {status}).")
    return recorder.operations


def _requires(package: Any) -> tuple[str, ...]:
    out: list[str] = []
    for dep in getattr(package, "requires", ()):
        if dep.is_optional():
            continue
        try:
            out.append(str(dep.to_pep_508()))
        except Exception:  # noqa: BLE001,S112 - a requirement Poetry cannot print is skipped
            continue
    return tuple(out)


def operations_to_changes(operations: Iterable[Operation]) -> list[PlannedChange]:
    """Reduce Poetry operations to :class:`PlannedChange` (skipped ones dropped)."""
    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.plan import classify

    changes: list[PlannedChange] = []
    for op in operations:
        if op.skipped:
            continue
        job = op.job_type
        if job == "update":
            initial, target = op.initial_package, op.target_package  # type: ignore[attr-defined]
        elif job == "install":
            initial, target = None, op.package
        else:
            initial, target = op.package, None
        ref = target or initial
        # pretty_version: full_pretty_version carries a file path or a git ref.
        current = initial.pretty_version if initial else None
        planned = target.pretty_version if target else None
        changes.append(
            PlannedChange(
                name=str(ref.name),
                display_name=str(ref.pretty_name),
                action=classify(
                    job,
                    initial.version.text if initial else None,
                    target.version.text if target else None,
                ),
                current=current,
                planned=planned,
                requires=_requires(target) if target else (),
            )
        )
    return changes


def project_holders(poetry: Poetry, name: str, specifier: str) -> list[Holder]:
    """Who in the project (pyproject or lock) constrains ``name``, and whether each
    constraint leaves room for ``specifier`` (a PEP 440 specifier set)."""
    holders: list[Holder] = []
    root = poetry.package
    for dep in root.all_requires:
        if dep.name == name:
            holders.append(
                Holder(
                    who=f"{root.pretty_name} (pyproject.toml)",
                    constraint=str(dep.pretty_constraint),
                    allows=constraint_allows(dep.constraint, specifier),
                )
            )
    try:
        locked = poetry.locker.locked_repository().packages
    except Exception:  # noqa: BLE001 - the audit already reported an unreadable lock
        locked = []
    for package in locked:
        for dep in package.requires:
            if dep.name == name and not dep.is_optional():
                holders.append(
                    Holder(
                        who=f"{package.pretty_name} {package.full_pretty_version}",
                        constraint=str(dep.pretty_constraint),
                        allows=constraint_allows(dep.constraint, specifier),
                    )
                )
    return holders


def constraint_allows(constraint: Any, specifier: str) -> bool:
    """Whether a poetry-core version constraint leaves room for a PEP 440
    specifier set.

    poetry-core reads every operator but ``===`` (arbitrary equality): for a
    set it cannot read, the candidates are the versions the set names exactly.
    When even those cannot be compared, the constraint is taken to allow it
    (the remedy then proposes the requirement as it is).
    """
    from packaging.specifiers import InvalidSpecifier
    from packaging.specifiers import SpecifierSet
    from poetry.core.constraints.version import Version
    from poetry.core.constraints.version import parse_constraint

    try:
        wanted = parse_constraint(specifier or "*")
    except Exception:  # noqa: BLE001 - ParseConstraintError, or worse: fall back to packaging
        wanted = None
    if wanted is not None:
        return not constraint.intersect(wanted).is_empty()
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return True
    exact = [
        s.version for s in spec if s.operator in ("==", "===") and "*" not in s.version
    ]
    readable = False
    for text in exact:
        try:
            version = Version.parse(text)
        except Exception:  # noqa: BLE001,S112 - a version poetry-core cannot read
            continue
        readable = True
        if spec.contains(text, prereleases=True) and constraint.allows(version):
            return True
    return not readable
