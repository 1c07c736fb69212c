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
    from poetry_env_audit.plan import Reach


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
            hint=f"Run `{relock_command()}` to bring it up to date.",
        )


def relock_command() -> str:
    """The command that refreshes a stale lock without updating what it pins:
    ``poetry lock`` on 2.x, ``poetry lock --no-update`` on 1.8 (there a bare
    ``poetry lock`` updates every dependency)."""
    from poetry_env_audit.seams import poetry_version

    return (
        "poetry lock --no-update"
        if poetry_version().startswith("1.")
        else "poetry lock"
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
    installed: Any = None,
    names_only: bool = False,
) -> list[Operation]:
    """Ask Poetry's Installer what ``poetry install`` would execute (a dry run).

    ``installed`` (an ``InstalledRepository``) stands for what ``env`` holds
    (an assumed image); by default Poetry reads it from ``env``.

    With ``names_only``, when Poetry will plan from a 2.1 lock's markers, its
    Installer gets the lock's packages without their dependencies where it
    asks for them with (:class:`_NamesOnlyLocker`).

    Raises :class:`AuditError` for a stale lock (:func:`check_fresh`).
    """
    from cleo.io.null_io import NullIO
    from packaging.utils import canonicalize_name
    from poetry.installation.installer import Installer

    recorder = RecordingExecutor()
    locker: Any = poetry.locker
    if names_only and plans_from_markers(poetry):
        locker = _NamesOnlyLocker(locker)
    installer = Installer(
        NullIO(),
        env,
        poetry.package,
        locker,
        poetry.pool,
        _FromLockMarkers(poetry.config),  # type: ignore[arg-type]
        installed=installed,
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


def planned_changes(
    poetry: Poetry,
    env: Env,
    locked: LockedPackages,
    *,
    groups: Iterable[str] | None,
    extras: Sequence[str],
    sync: bool,
    all_extras: bool = False,
    installed: Any = None,
    reach: Reach | None = None,
) -> list[PlannedChange]:
    """What ``poetry install`` with these options would change (a dry run).

    With ``reach`` only the planned versions it names get their requirements
    (:func:`operations_to_changes`), and Poetry plans from a 2.1 lock without
    reading every package's dependencies.
    """
    wanted = [str(e) for e in poetry.package.extras] if all_extras else list(extras)
    operations = plan_operations(
        poetry,
        env,
        groups=groups,
        extras=wanted,
        sync=sync,
        installed=installed,
        names_only=reach is not None,
    )
    return operations_to_changes(operations, locked, reach)


def plans_from_markers(poetry: Poetry) -> bool:
    """Poetry 2.x with a 2.1 lock (and ``installer.re-resolve`` off, as
    :func:`plan_operations` sets it) installs from the lock's markers: its
    Installer reads ``locked_repository()`` only for the names of the locked
    packages (``Transaction``'s current packages; read in 2.0.1, 2.2.1 and
    2.5.1), the packages it installs come from ``locked_packages()``."""
    from poetry_env_audit.seams import poetry_version

    if poetry_version().startswith("1."):
        return False
    try:
        return bool(poetry.locker.is_locked_groups_and_markers())
    except Exception:  # noqa: BLE001 - older Locker, or unreadable: Poetry's own read
        return False


class _NamesOnlyLocker:
    """Poetry's ``Locker`` whose ``locked_repository()`` holds the locked
    packages without their dependencies (``_get_locked_package(info,
    with_dependencies=False)``, as ``locked_packages()`` builds them): on a
    262-package lock 0.1 s instead of 0.5 s. Only for a plan from a 2.1
    lock's markers (:func:`plans_from_markers`), where Poetry needs no more."""

    def __init__(self, locker: Any) -> None:
        self._locker = locker

    def locked_repository(self) -> Any:
        from poetry.repositories.lockfile_repository import LockfileRepository

        repository = LockfileRepository()
        for info in self._locker.lock_data.get("package", []):
            repository.add_package(
                self._locker._get_locked_package(
                    info, with_dependencies=False
                )  # the seam: Locker._get_locked_package
            )
        return repository

    def __getattr__(self, name: str) -> Any:
        return getattr(self._locker, name)


def plain_install_is_sync_without_removals(poetry: Poetry, *, reresolve: bool) -> bool:
    """Whether Poetry plans a plain install as its sync plan minus the removals.

    True on Poetry 2.x when it installs from a 2.1 lock's markers
    (``installer.re-resolve`` off): ``Installer._do_install`` then calculates
    the operations with ``with_uninstalls = sync or (update and not
    reresolve)``, and synchronising only adds uninstalls (read in 2.0.1, 2.2.1
    and 2.5.1). Poetry 1.8, and any Poetry that re-resolves, also plans
    uninstalls of extras nobody requested: those need a plan of their own.
    """
    from poetry_env_audit.seams import poetry_version

    if reresolve or poetry_version().startswith("1."):
        return False
    try:
        return bool(poetry.locker.is_locked_groups_and_markers())
    except Exception:  # noqa: BLE001 - older Locker, or unreadable: plan it
        return False


def requirements_of(package: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A package's requirements as PEP 508 strings, and those that could not
    be converted (Poetry's own text for them), never dropped silently.

    Optional requirements are kept with an ``extra == "..."`` marker for each
    of the package's extras that lists them, so that they count exactly when
    someone requires the package with that extra.
    """
    extras_of: dict[str, list[str]] = {}
    for extra, deps in (getattr(package, "extras", None) or {}).items():
        for dep in deps:
            extras_of.setdefault(str(dep.name), []).append(str(extra))
    out: list[str] = []
    unreadable: list[str] = []
    for dep in getattr(package, "requires", ()):
        extras = extras_of.get(str(dep.name), []) if dep.is_optional() else [""]
        for extra in extras:
            text = pep508(dep, extra=extra)
            if text is None:
                unreadable.append(_poetry_text(dep))
            else:
                out.append(text)
    return tuple(out), tuple(dict.fromkeys(unreadable))


def _poetry_text(dep: Any) -> str:
    try:
        return str(dep.to_pep_508())
    except Exception:  # noqa: BLE001 - the name and constraint still say what it was
        return f"{dep.name} ({dep.pretty_constraint})"


def pep508(dep: Any, *, extra: str = "") -> str | None:
    """Poetry's ``Dependency`` as a requirement ``packaging`` reads, or ``None``.

    Poetry's ``to_pep_508()`` may write a union (``>=2.0.2,<3.0.5 || >3.0.5``)
    that PEP 440 has no syntax for; a union whose gaps are single versions is
    the same as ``!=`` exclusions (``>=2.0.2,!=3.0.5``). Any other union has no
    PEP 440 form: ``None``.
    """
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement

    try:
        text = str(dep.to_pep_508())
    except Exception:  # noqa: BLE001 - handled below from the parts
        text = ""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        spec = specifier_of_constraint(dep.constraint)
        if spec is None:
            return None
        marker = text.split(";", 1)[1].strip() if ";" in text else ""
        name = dep.complete_name if hasattr(dep, "complete_name") else dep.name
        try:
            req = Requirement(f"{name}{spec}{' ; ' + marker if marker else ''}")
        except InvalidRequirement:
            return None
    if extra:
        marker = f'extra == "{extra}"'
        req = Requirement(
            f"{str(req).split(';', 1)[0].strip()} ; "
            + (f"({req.marker}) and {marker}" if req.marker else marker)
        )
    return str(req)


def specifier_of_constraint(constraint: Any) -> str | None:
    """A PEP 440 specifier set for a Poetry version constraint, or ``None``."""
    from packaging.specifiers import InvalidSpecifier
    from packaging.specifiers import SpecifierSet

    if constraint.is_any():
        return ""
    text = str(constraint)
    try:
        return str(SpecifierSet(text))
    except InvalidSpecifier:
        pass
    if not hasattr(constraint, "ranges") and hasattr(constraint, "text"):
        return f"=={constraint.text}"  # a single version
    ranges = getattr(constraint, "ranges", None)
    if not ranges:
        return None
    try:
        # Each piece alone is a plain range that packaging reads.
        lower = [x for x in SpecifierSet(str(ranges[0])) if x.operator in (">", ">=")]
        upper = [x for x in SpecifierSet(str(ranges[-1])) if x.operator in ("<", "<=")]
    except InvalidSpecifier:
        return None
    parts = [str(x) for x in lower]
    for one, two in zip(ranges, ranges[1:]):
        point = getattr(two, "min", None)
        if point is None or one.include_max or two.include_min:
            return None  # a real gap: no PEP 440 form
        # ``<V`` is stored as ``<V.dev0`` (PEP 440: no pre-release of V either).
        if one.max != point and one.max != point.first_devrelease():
            return None
        parts.append(f"!={point.text}")
    parts.extend(str(x) for x in upper)
    try:
        return str(SpecifierSet(",".join(parts)))
    except InvalidSpecifier:
        return None


#: Attributes this plugin sets on Poetry's ``Locker`` (see :func:`watch_locked_repository`).
_WATCHED = "_poetry_env_audit_watched"
_LAST_READ = "_poetry_env_audit_last_read"


def _lock_stamp(locker: Any) -> tuple[int, int] | None:
    """(mtime_ns, size) of the lock file, or ``None`` when it cannot be read."""
    try:
        stat = Path(str(locker.lock)).stat()
    except (AttributeError, OSError, TypeError):
        return None
    return (stat.st_mtime_ns, stat.st_size)


def watch_locked_repository(poetry: Poetry) -> None:
    """Keep what Poetry's own ``Locker.locked_repository()`` returns, with the
    lock file's stamp at that moment, so that :class:`LockedPackages` need not
    parse the lock again (on a 262-package lock a parse costs about 0.2 s).
    Poetry still gets a fresh read on every call of its own."""
    locker = getattr(poetry, "locker", None)
    original = getattr(locker, "locked_repository", None)
    if original is None or getattr(locker, _WATCHED, False):
        return

    def locked_repository(*args: Any, **kwargs: Any) -> Any:
        stamp = _lock_stamp(locker)
        repository = original(*args, **kwargs)
        setattr(locker, _LAST_READ, (stamp, repository))
        return repository

    try:
        setattr(locker, "locked_repository", locked_repository)  # noqa: B010 - an instance attribute over Poetry's method
        setattr(locker, _WATCHED, True)
    except (AttributeError, TypeError):  # a Locker that takes no attributes
        return


class LockedPackages:
    """The lock's packages with their dependencies, read once per command.

    ``Locker.locked_repository()`` is what Poetry itself reads them with (on
    2.x, the packages it installs from a 2.1 lock come from
    ``locked_packages()``, without dependencies). What Poetry already read
    (:func:`watch_locked_repository`) is reused while the lock file is
    unchanged. Otherwise :meth:`find` and :meth:`requirers` read only the
    packages asked for (``Locker._get_locked_package`` of their lock entries).
    """

    def __init__(self, poetry: Poetry) -> None:
        self._poetry = poetry
        self._packages: list[Any] | None = None
        self._by_version: dict[tuple[str, str], Any] = {}
        self._one: dict[int, Any] = {}
        self._requirers: dict[str, list[Any]] | None = None
        watch_locked_repository(poetry)

    def _read_by_poetry(self) -> list[Any] | None:
        """What Poetry's own read returned, if the lock file is unchanged since."""
        locker = self._poetry.locker
        stamp, repository = getattr(locker, _LAST_READ, (None, None))
        if repository is None or stamp is None or stamp != _lock_stamp(locker):
            return None
        return list(repository.packages)

    def packages(self) -> list[Any]:
        if self._packages is None:
            try:
                packages = self._read_by_poetry()
                if packages is None:
                    packages = list(self._poetry.locker.locked_repository().packages)
                self._packages = packages
            except Exception:  # noqa: BLE001 - an unreadable lock is reported by check_lock
                self._packages = []
            self._by_version = {
                (str(p.name), p.version.text): p for p in self._packages
            }
        return self._packages

    def names(self) -> frozenset[str]:
        """The names of every locked package."""
        if self._packages is None:
            entries = self._entries()
            if entries is not None:
                return frozenset(_name(e) for e in entries)
        return frozenset(str(p.name) for p in self.packages())

    def find(self, name: str, version: str) -> Any:
        """The locked package ``name`` at ``version``, or ``None``."""
        if self._packages is None and self._read_by_poetry_or_none() is None:
            entries = self._entries()
            if entries is not None:
                for entry in entries:
                    if _name(entry) == name and str(entry.get("version")) == version:
                        return self._package(entry)
                return None
        self.packages()
        return self._by_version.get((name, version))

    def requirers(self, name: str) -> list[Any]:
        """The locked packages whose dependencies name ``name``, in lock order.

        The index of who requires what is built on the first call: a sync
        asks once per package it removes (36 times on a 262-package lock).
        """
        if self._requirers is None:
            self._requirers = self._index_requirers()
        return [
            self._package(entry) if isinstance(entry, dict) else entry
            for entry in self._requirers.get(name, ())
        ]

    def _index_requirers(self) -> dict[str, list[Any]]:
        """Name -> the lock entries (or packages) that depend on it."""
        from packaging.utils import canonicalize_name

        index: dict[str, list[Any]] = {}
        if self._packages is None and self._read_by_poetry_or_none() is None:
            entries = self._entries()
            if entries is not None:
                for entry in entries:
                    names = {
                        str(canonicalize_name(str(dep)))
                        for dep in (entry.get("dependencies") or {})
                    }
                    for name in names:
                        index.setdefault(name, []).append(entry)
                return index
        for package in self.packages():
            for name in {str(d.name) for d in package.requires}:
                index.setdefault(name, []).append(package)
        return index

    def _read_by_poetry_or_none(self) -> list[Any] | None:
        try:
            return self._read_by_poetry()
        except Exception:  # noqa: BLE001 - no usable read: the lazy path decides
            return None

    def _entries(self) -> list[dict[str, Any]] | None:
        """The lock's ``[[package]]`` tables, when one can be read alone."""
        locker: Any = getattr(self._poetry, "locker", None)
        if not hasattr(locker, "_get_locked_package"):
            return None
        try:
            entries = locker.lock_data.get("package", [])
        except Exception:  # noqa: BLE001 - unreadable: reported by check_lock
            return None
        return entries if isinstance(entries, list) else None

    def _package(self, entry: dict[str, Any]) -> Any:
        key = id(entry)
        if key not in self._one:
            locker = self._poetry.locker
            self._one[key] = locker._get_locked_package(
                entry
            )  # the seam: Locker._get_locked_package
        return self._one[key]


def _name(entry: dict[str, Any]) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(str(entry.get("name", ""))))


def operations_to_changes(
    operations: Iterable[Operation],
    locked: LockedPackages | None = None,
    reach: Reach | None = None,
) -> list[PlannedChange]:
    """Reduce Poetry operations to :class:`PlannedChange` (skipped ones dropped).

    A planned version's requirements are the lock's own (``locked``) when the
    lock has that version, else those of the package Poetry solved. With
    ``reach`` only the changes it names get them (the others cannot touch
    what Poetry needs): it is given the planned changes without requirements
    and a function that reads one change's requirements.
    """
    from dataclasses import replace

    from poetry_env_audit.plan import PlannedChange
    from poetry_env_audit.plan import classify

    changes: list[PlannedChange] = []
    targets: dict[str, Any] = {}
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
        changes.append(
            PlannedChange(
                name=str(ref.name),
                display_name=str(ref.pretty_name),
                action=classify(
                    job,
                    initial.version.text if initial else None,
                    target.version.text if target else None,
                ),
                current=initial.pretty_version if initial else None,
                planned=target.pretty_version if target else None,
                source_type=_source_type(target),
                local_wheel=local_wheel(target),
            )
        )
        if target is not None:
            targets[str(ref.name)] = target

    read: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def requirements(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if name not in read:
            target = targets.get(name)
            if target is None:
                read[name] = ((), ())
            else:
                found = locked.find(name, target.version.text) if locked else None
                read[name] = requirements_of(found or target)
        return read[name]

    wanted = (
        set(targets)
        if reach is None
        else reach(changes, lambda name: requirements(name)[0])
    )
    out: list[PlannedChange] = []
    for change in changes:
        if change.name in targets and change.name in wanted:
            requires, unreadable = requirements(change.name)
            change = replace(change, requires=requires, unreadable=unreadable)
        out.append(change)
    return out


def _source_type(package: Any) -> str | None:
    kind = getattr(package, "source_type", None) if package is not None else None
    return str(kind) if kind else None


def local_wheel(package: Any) -> str | None:
    """The wheel file a ``file`` source installs, as Poetry's executor finds
    it (``source_url``, relative to ``root_dir``), when it is a wheel on disk."""
    if package is None or getattr(package, "source_type", None) != "file":
        return None
    url = getattr(package, "source_url", None)
    if not url or not str(url).endswith(".whl"):
        return None
    path = Path(str(url))
    root = getattr(package, "root_dir", None)
    if not path.is_absolute() and root:
        path = Path(root) / path
    return str(path) if path.is_file() else None


def project_holders(
    poetry: Poetry, name: str, specifier: str, locked: LockedPackages | None = None
) -> list[Holder]:
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
    for package in (locked or LockedPackages(poetry)).requirers(name):
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
