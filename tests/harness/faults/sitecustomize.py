"""Test-only ``sitecustomize`` for throwaway interpreters (never shipped).

Copied into a test interpreter's site-packages, it does nothing unless one of
these variables is set for the Poetry run:

``ENV_AUDIT_FAULT_TRACE=FILE``
    append one JSON line per executed operation to FILE:
    ``{"name", "job", "start", "end", "uninstaller"}`` (``time.monotonic()``
    of one process), so a test can check what ran at the same time as what;
    ``uninstaller`` is ``"builtin"`` or ``"pip"`` for an operation that removed
    files (Poetry >= 2.5 has a built-in one), else null.
``ENV_AUDIT_FAULT_SWAP=NAME`` and ``ENV_AUDIT_FAULT_SWAP_SECONDS=S``
    after Poetry removed the old files of NAME during an update, wait S seconds
    before the new wheel is written: the window in which a parallel reader
    finds the package missing, widened so the race is deterministic.

``ENV_AUDIT_FAULT_WRITE=PATH`` (with ``ENV_AUDIT_FAULT_SWAP_SECONDS=S``)
    when a wheel writes the site-relative file PATH, write the first half of
    it over what is there (opened ``"wb"``, as the installer does), wait S
    seconds, then let the installer write it whole: a wheel rewriting a file
    of another distribution in place, held half-way.
``ENV_AUDIT_FAULT_HOLD=N:DIR``
    before its first operation, a Poetry process waits until N - 1 files
    ``DIR/*.err`` say "Waiting for the environment lock" (at most 300 s): the
    first of N concurrent installs holds the lock until every other one is
    waiting for it, however the machine schedules them. The others find the
    condition met and go on.
``ENV_AUDIT_FAULT_KILL_AT=STEP``
    ``poetry self isolate`` kills itself (SIGKILL, no clean-up) right after
    the step STEP (``poetry_env_audit.isolate.Step``: venv, copy, scripts,
    verify, backup, state, switch).

The first two hook ``poetry.installation.executor.Executor`` when Poetry
imports it (``_execute_operation`` and ``_remove``, present in Poetry 1.8 to
2.5); ``WRITE`` hooks ``poetry.installation.wheel_installer.WheelDestination
.write_to_fs``; the last hooks ``poetry_env_audit.isolate_run.checkpoint``.
"""

from __future__ import annotations

import os
import sys

_TRACE = os.environ.get("ENV_AUDIT_FAULT_TRACE")
_SWAP = os.environ.get("ENV_AUDIT_FAULT_SWAP")
_SWAP_SECONDS = float(os.environ.get("ENV_AUDIT_FAULT_SWAP_SECONDS") or 0)
_KILL_AT = os.environ.get("ENV_AUDIT_FAULT_KILL_AT")
_HOLD = os.environ.get("ENV_AUDIT_FAULT_HOLD")
_WRITE = os.environ.get("ENV_AUDIT_FAULT_WRITE")
_TARGET = "poetry.installation.executor"
_ISOLATE = "poetry_env_audit.isolate_run"
_WHEELS = "poetry.installation.wheel_installer"


def _patch_wheels(module: object) -> None:
    import io
    import time
    from pathlib import Path

    destination = module.WheelDestination  # type: ignore[attr-defined]
    write_to_fs = destination.write_to_fs

    def half_first(self, scheme, path, stream, is_executable):  # type: ignore[no-untyped-def]
        if path != _WRITE:
            return write_to_fs(self, scheme, path, stream, is_executable)
        data = stream.read()
        target = Path(self.scheme_dict[scheme]) / path
        with target.open("wb") as handle:
            handle.write(data[: len(data) // 2])
        time.sleep(_SWAP_SECONDS)
        return write_to_fs(self, scheme, path, io.BytesIO(data), is_executable)

    destination.write_to_fs = half_first


def _patch_isolate(module: object) -> None:
    import signal

    checkpoint = module.checkpoint  # type: ignore[attr-defined]

    def killing(step: object) -> None:
        checkpoint(step)
        if str(step) == _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)

    module.checkpoint = killing  # type: ignore[attr-defined]


def _patch(executor_class: type) -> None:
    import json
    import threading
    import time
    from pathlib import Path

    lock = threading.Lock()
    removed_by = threading.local()
    execute_operation = executor_class._execute_operation  # type: ignore[attr-defined]
    remove = executor_class._remove  # type: ignore[attr-defined]

    held = threading.Event()

    def hold_until_the_others_wait() -> None:
        count, _, folder = (_HOLD or "").partition(":")
        deadline = time.monotonic() + 300  # a bound, never an expectation
        while time.monotonic() < deadline:
            waiting = sum(
                "Waiting for the environment lock" in err.read_text(errors="replace")
                for err in Path(folder).glob("*.err")
            )
            if waiting >= int(count) - 1:
                return
            time.sleep(0.05)

    def traced(self: object, operation: object) -> object:
        if _HOLD and not held.is_set():
            with lock:
                if not held.is_set():
                    hold_until_the_others_wait()
                    held.set()
        start = time.monotonic()
        removed_by.name = None
        try:
            return execute_operation(self, operation)
        finally:
            if _TRACE and not getattr(operation, "skipped", False):
                record = {
                    "name": str(operation.package.name),  # type: ignore[attr-defined]
                    "job": str(operation.job_type),  # type: ignore[attr-defined]
                    "start": start,
                    "end": time.monotonic(),
                    "uninstaller": removed_by.name,
                }
                with lock, Path(_TRACE).open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")

    def slow_remove(self: object, package: object) -> object:
        builtin = getattr(self, "_use_builtin_uninstall", False)
        removed_by.name = "builtin" if builtin else "pip"
        result = remove(self, package)
        if _SWAP and str(package.name) == _SWAP:  # type: ignore[attr-defined]
            time.sleep(_SWAP_SECONDS)
        return result

    executor_class._execute_operation = traced  # type: ignore[attr-defined]
    executor_class._remove = slow_remove  # type: ignore[attr-defined]


def _install_hook() -> None:
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        def __init__(self, pending: set[str]) -> None:
            self.pending = pending

        def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
            if name not in self.pending:
                return None
            self.pending.remove(name)
            if not self.pending:
                sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def patched(module):  # type: ignore[no-untyped-def]
                exec_module(module)
                if name == _TARGET:
                    _patch(module.Executor)
                elif name == _WHEELS:
                    _patch_wheels(module)
                else:
                    _patch_isolate(module)

            spec.loader.exec_module = patched  # type: ignore[method-assign]
            return spec

    pending = {_TARGET} if _TRACE or _SWAP or _HOLD else set()
    if _KILL_AT:
        pending.add(_ISOLATE)
    if _WRITE:
        pending.add(_WHEELS)
    sys.meta_path.insert(0, Finder(pending))


if _TRACE or _SWAP or _HOLD or _KILL_AT or _WRITE:
    _install_hook()
