"""Poetry's Executor: the last point before files change, and the serial phase.

:func:`wrap_execute` replaces ``execute`` on one Executor instance (never the
class) with the guard's own; :class:`ExecutorHandle` runs operations through
Poetry's original ``execute``, all at once or in two phases
(:meth:`ExecutorHandle.run_serialised`).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Callable

if TYPE_CHECKING:
    from collections.abc import Collection
    from collections.abc import Mapping
    from collections.abc import Sequence

    from poetry.installation.operations.operation import Operation
    from poetry.utils.env import Env

    from poetry_env_audit.seams import Fallbacks
    from poetry_env_audit.swapjournal import Swap


@dataclass(frozen=True)
class Archives:
    """The wheels planned operations will write, fetched before they run:
    ``(package name, wheel)``; ``unchecked``: the packages whose wheel is
    only known once the install builds it (or that could not be fetched)."""

    wheels: tuple[tuple[str, Path], ...] = ()
    unchecked: tuple[str, ...] = ()


@dataclass
class ExecutorHandle:
    """Poetry's ``execute`` of one Executor instance, and what the serial phase adjusts."""

    executor: Any
    original: Any
    fallbacks: Fallbacks
    _summary: Any = None
    _configured_uninstaller: bool | None = field(default=None, repr=False)
    _wheel_check: Callable[[Path], None] | None = field(default=None, repr=False)
    #: ``serial-uninstaller = builtin``: serialised swaps remove in process.
    in_process_removal: bool = False

    def check_wheels(self, check: Callable[[Path], None]) -> bool:
        """Call ``check(archive)`` before every wheel Poetry's executor writes.

        ``Executor._wheel_installer.install(archive)`` is the one call every
        operation that writes files goes through (index, file, url, git and
        directory sources alike: each becomes a wheel first), after the
        archive is downloaded or built and, for an update, after the old
        version is removed. ``check`` may raise to stop that operation:
        Poetry reports it as the operation's failure and runs nothing more.
        Installed once per Executor; a later call replaces the check.
        Returns whether the seam exists.
        """
        installer: Any = getattr(self.executor, "_wheel_installer", None)
        install = getattr(installer, "install", None)
        if installer is None or install is None:
            self.fallbacks.note(
                "Executor._wheel_installer.install",
                "files of other wheels are not checked against Poetry's",
            )
            return False
        first = self._wheel_check is None
        self._wheel_check = check
        if first:

            def checked(wheel: Any) -> Any:
                if self._wheel_check is not None:
                    self._wheel_check(Path(wheel))
                return install(wheel)

            installer.install = checked
        return True

    def archives(self, operations: Sequence[Operation]) -> Archives:
        """The wheel each install or update of ``operations`` will write,
        obtained before any of them runs, as Poetry's executor obtains it:
        an index package's link from Poetry's chooser, downloaded into (or
        found in) Poetry's artifact cache with its hash checked against the
        lock (``Executor._download``; a URL: ``_download_link``; an sdist is
        built there, into the cache), a ``file`` source's wheel where it
        lies. Poetry's own run then finds each archive in its cache. Run on
        the executor's thread count (``installer.max-workers``). Directories
        and git sources (built, or cloned into the target, during the
        install) and anything that fails here are left out (``unchecked``):
        Poetry meets the same failure in its own run. Nothing is written
        outside Poetry's cache.

        Poetry's own ``_download`` of an operation fetched here then returns
        the same archive at once (:meth:`_reuse_downloads`): a second
        chooser pass would ask the index for each project page again (with
        a remote index's latency, a third of a second for 40 packages on
        Poetry 1.8) and hash each archive again.
        """
        from concurrent.futures import ThreadPoolExecutor

        wanted = [
            op
            for op in operations
            if not op.skipped and op.job_type in ("install", "update")
        ]
        if not wanted:
            return Archives()
        if not all(hasattr(self.executor, a) for a in ("_download", "_download_link")):
            self.fallbacks.note(
                "Executor._download/_download_link",
                "each wheel is checked against Poetry's files only as it is written",
            )
            return Archives(unchecked=tuple(str(op.package.name) for op in wanted))
        # Progress lines go to per-operation sections that exist only once
        # Poetry runs the operation: none while fetching ahead.
        self.executor.supports_fancy_output = lambda: False
        try:
            workers = max(1, int(getattr(self.executor, "_max_workers", 1) or 1))
            with ThreadPoolExecutor(max_workers=min(workers, len(wanted))) as pool:
                fetched = list(pool.map(self._fetch, wanted))
        finally:
            del self.executor.supports_fancy_output
        self._reuse_downloads(
            {
                _download_key(op): archive
                for op, (archive, by_download) in zip(wanted, fetched)
                if archive is not None and by_download
            }
        )
        found = [
            archive if archive is not None and archive.suffix == ".whl" else None
            for archive, _ in fetched
        ]
        return Archives(
            wheels=tuple(
                (str(op.package.name), path)
                for op, path in zip(wanted, found)
                if path is not None
            ),
            unchecked=tuple(
                str(op.package.name) for op, path in zip(wanted, found) if path is None
            ),
        )

    def _fetch(self, op: Operation) -> tuple[Path | None, bool]:
        """The archive Poetry's executor would install for ``op`` (a wheel,
        or what a build could not turn into one), and whether it came from
        ``Executor._download``."""
        package: Any = op.package
        kind = package.source_type
        try:
            if kind == "file":
                from poetry_env_audit.seams.plan import local_wheel

                wheel = local_wheel(package)
                return (Path(wheel) if wheel else None), False
            if kind == "url":
                url = str(package.source_url or "")
                if not url or url.startswith("file:"):
                    return None, False
                from poetry.core.packages.utils.link import Link

                return Path(self.executor._download_link(op, Link(url))), False
            if kind in (None, "", "legacy", "pypi"):
                return Path(self.executor._download(op)), True
        except Exception:  # noqa: BLE001 - Poetry's own run reports the failure
            return None, False
        return None, False

    def _reuse_downloads(self, fetched: Mapping[tuple[str, str, str], Path]) -> None:
        """``Executor._download`` (instance attribute, for this executor's
        one run) answers the operations fetched ahead with their archive;
        any other goes to Poetry's own."""
        if not fetched:
            return
        download = self.executor._download

        def reused(operation: Any) -> Any:
            archive = fetched.get(_download_key(operation))
            return archive if archive is not None else download(operation)

        self.executor._download = reused

    def run(self, operations: list[Operation]) -> int:
        """Run operations through Poetry's own execute, without its summary line."""
        return int(self.original(list(operations)))

    def run_serialised(
        self,
        operations: list[Operation],
        serial: Collection[str],
        *,
        builtin: bool,
        before_swaps: Callable[[], None],
        owners: Mapping[str, str] | None = None,
    ) -> int:
        """All other operations first (parallel as configured), then those on
        ``serial`` (canonical names, as ``Package.name`` is in Poetry) one at a time.

        ``owners``: for an operation whose wheel writes over files of another
        distribution Poetry needs (ownership by file), that distribution: the
        swap journals it, not the operation's own.

        Poetry's summary is printed once for the whole plan. ``before_swaps``
        runs between the phases, while every file is still in place. With
        nothing else running, a swap's ``pip uninstall`` subprocess is pure
        waiting: where Poetry has an in-process uninstaller and ``builtin``
        asks for it, it is used instead (:meth:`choose_uninstaller`).
        """
        first = [op for op in operations if op.package.name not in serial]
        last = [op for op in operations if op.package.name in serial]
        self.summary(operations)
        self.quiet_summary()
        try:
            status = self.run(first) if first else 0
            if status or self.shut_down():
                return status or 1
            before_swaps()
            self.start_worker()
            self.in_process_removal = builtin
            for op in last:
                self.choose_uninstaller(op.package.name, builtin=builtin)
                status = self.run_journaled(op, (owners or {}).get(op.package.name))
                if status or self.shut_down():
                    return status or 1
        finally:
            self.restore_uninstaller()
            self.restore_summary()
        return 0

    def start_worker(self) -> None:
        """Have a thread of Poetry's pool (``Executor._executor``) ready
        before the first swap, so that no thread starts while a swap runs.

        A ``ThreadPoolExecutor`` registers a new thread for its exit only
        after starting it; Ctrl-C in between (the first swap's ``submit``
        when the parallel phase started none) leaves a thread that nothing
        tells to stop, and the interpreter waits for it at exit forever (seen
        in the fault tests, SIGINT at the swap's first moment). An idle
        thread is reused by the next ``submit``."""
        pool = getattr(self.executor, "_executor", None)
        submit = getattr(pool, "submit", None)
        if submit is None:
            return
        import contextlib

        # A pool that cannot run: Poetry's own run says so.
        with contextlib.suppress(Exception):
            submit(lambda: None).result()

    def run_journaled(self, op: Operation, owner: str | None = None) -> int:
        """One swap with a journal and a backup of the old files
        (:mod:`poetry_env_audit.swapjournal`): interrupted by an error or
        Ctrl-C, the old version is restored at once; killed, at the next start
        of Python in that environment. With ``owner`` the journal is that
        distribution's, whose files the operation's wheel writes over."""
        from poetry_env_audit import swapjournal

        swap = None
        name = str(getattr(op, "initial_package", op.package).name)
        ok = in_process = False
        status = 1
        # Ctrl-C may come at any point, the journal's own writing included.
        try:
            if owner is not None or op.job_type != "install":
                try:
                    swap = swapjournal.begin(
                        _site_dirs(self.executor),
                        owner or name,
                        incoming=str(op.package.name) if owner else None,
                    )
                except Exception:  # noqa: BLE001 - no journal: the swap runs as before
                    swap = None
            in_process = swap is not None and _remove_in_process(
                self.executor, swap, enabled=self.in_process_removal
            )
            status = self.run([op])
            ok = status == 0
        finally:
            if in_process:
                del self.executor.run_pip
            if swap is not None:
                swapjournal.finish(swap, ok=ok)
        return status

    def summary(self, operations: list[Operation]) -> None:
        if self._summary is not None:
            self._summary(list(operations))

    def quiet_summary(self) -> None:
        if not hasattr(self.executor, "_display_summary"):
            self.fallbacks.note(
                "Executor._display_summary", "each phase prints its own summary"
            )
            return
        self.executor._display_summary = lambda operations: None

    def restore_summary(self) -> None:
        if "_display_summary" in vars(self.executor):
            del self.executor._display_summary

    def shut_down(self) -> bool:
        return bool(getattr(self.executor, "_shutdown", False))

    def choose_uninstaller(self, name: str, *, builtin: bool) -> bool:
        """Before a serialised operation on ``name``: Poetry's in-process uninstaller?

        Poetry 2.5 has one (``installer.builtin-uninstall``, off by default); it
        spares the ``pip uninstall`` subprocess each swap starts, the cost that
        serialising makes visible. It is chosen only for a single ``.dist-info``
        with a RECORD, where it removes exactly the files pip would (without a
        RECORD it would skip what pip refuses). Otherwise, and on older Poetry,
        the configured uninstaller stays. Returns whether the built-in one was
        chosen; :meth:`restore_uninstaller` undoes it.
        """
        if not hasattr(self.executor, "_use_builtin_uninstall"):
            return False
        if self._configured_uninstaller is None:
            self._configured_uninstaller = bool(self.executor._use_builtin_uninstall)
        chosen = builtin and _one_recorded_dist(self.executor._env, name)
        self.executor._use_builtin_uninstall = chosen or self._configured_uninstaller
        return chosen

    def restore_uninstaller(self) -> None:
        if self._configured_uninstaller is not None:
            self.executor._use_builtin_uninstall = self._configured_uninstaller
            self._configured_uninstaller = None


def _download_key(op: Any) -> tuple[str, str, str]:
    package = op.package
    return (str(package.name), str(package.version), str(package.source_url or ""))


def _remove_in_process(executor: Any, swap: Swap, *, enabled: bool) -> bool:
    """Where Poetry would start a ``pip uninstall`` subprocess for the
    journaled distribution (Poetry < 2.5, or 2.5 with its own uninstaller
    off), remove its files in process instead, from the journal's file
    list (:func:`swapjournal.remove_old`): the subprocess, which a
    parallel install overlaps with other work, is pure waiting in the
    serial phase. Only when ``serial-uninstaller = builtin`` asked for an
    in-process uninstaller (``enabled``)."""
    if not enabled or getattr(executor, "_use_builtin_uninstall", False):
        return False
    run_pip = getattr(executor, "run_pip", None)
    if run_pip is None or "run_pip" in vars(executor):
        return False
    from packaging.utils import canonicalize_name

    from poetry_env_audit import swapjournal

    def guarded_run_pip(*args: Any, **kwargs: Any) -> Any:
        if (
            len(args) >= 2
            and args[0] == "uninstall"
            and canonicalize_name(str(args[1])) == canonicalize_name(swap.dist)
        ):
            swapjournal.remove_old(swap)
            return 0
        return run_pip(*args, **kwargs)

    executor.run_pip = guarded_run_pip
    return True


def _site_dirs(executor: Any) -> list[Path]:
    env = getattr(executor, "_env", None)
    if env is None:
        return []
    from poetry_env_audit.seams.environment import env_site_dirs

    return [Path(d) for d in env_site_dirs(env)]


def _one_recorded_dist(env: Env, name: str) -> bool:
    dists = list(env.site_packages.distributions(name=name))
    return len(dists) == 1 and dists[0].read_text("RECORD") is not None


Execute = Callable[[ExecutorHandle, "list[Operation]"], int]


def wrap_execute(
    executor: Any, replacement: Execute, fallbacks: Fallbacks
) -> ExecutorHandle:
    """Replace ``executor.execute`` on the instance; return the handle."""
    handle = ExecutorHandle(
        executor=executor,
        original=executor.execute,
        fallbacks=fallbacks,
        _summary=getattr(executor, "_display_summary", None),
    )
    executor.execute = lambda operations: replacement(handle, operations)
    return handle


def executor_env(
    executor: Any, fallback: Callable[[], Env], fallbacks: Fallbacks
) -> Env:
    """The environment the executor will write to."""
    env = getattr(executor, "_env", None)
    if env is None:
        fallbacks.note("Executor._env", "using the command's env")
        return fallback()
    return env  # type: ignore[no-any-return]
