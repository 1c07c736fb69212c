"""Recovery of an interrupted serialised swap (standard library only).

The guard copies this file into the site-packages directory of a swap as
``_poetry_env_audit_recover.py`` and drops ``poetry_env_audit_recover.pth``
next to it, for the duration of the swap only (see
:mod:`poetry_env_audit.swapjournal`). Any Python that starts in that
environment runs the ``.pth`` line first, before Poetry or anything else
imports: if the journal is there and the process that wrote it is gone, the
old files come back from their hard-linked backup, the half-written new
version is removed, one line on stderr says so, and the journal, the backup,
the ``.pth`` and this copy are deleted. A start with no interrupted swap finds
no ``.pth`` and runs nothing.

It must work on every Python a target may have (3.9 and later) and never make
a start fail: every error is swallowed after one line.
"""

# ruff: noqa: PTH100, PTH103, PTH105, PTH108, PTH112, PTH114, PTH118, PTH120, PTH123, PTH208
# os.path, not pathlib: this runs from a .pth at interpreter start, with as
# few imports as possible, on any Python a target has.
from __future__ import annotations

import json
import os
import re
import shutil
import sys

JOURNAL_DIR = ".poetry-env-audit-swap"
JOURNAL = "journal.json"
BACKUP = "backup"
PTH = "poetry_env_audit_recover.pth"
MODULE = "_poetry_env_audit_recover.py"
PTH_LINE = "import _poetry_env_audit_recover as r; r.run()\n"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def process_start(pid: int) -> str | None:
    """An identity for a running process: its start time (Linux), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
            text = stream.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str | None) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, not ours to signal
    now = process_start(pid)
    return started is None or now is None or now == started


def _record_files(dist_info: str) -> list[str]:
    import csv

    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8", newline="") as f:
            return [row[0] for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def cleanup(site: str) -> None:
    """Delete the ``.pth`` first (a start must never restore a finished
    swap), then the journal and its backup, then the module."""
    _remove(os.path.join(site, PTH))
    _remove(os.path.join(site, JOURNAL_DIR))
    _remove(os.path.join(site, MODULE))


def restore(site: str, journal: dict[str, object]) -> str:
    """Put the old files back; returns what was restored, for the one line."""
    dist = _canonical(str(journal["dist"]))
    # A wheel of another name that wrote over the old files: its files go too.
    incoming = journal.get("incoming")
    removed = {dist, _canonical(str(incoming))} if incoming else {dist}
    old_info = journal.get("dist_info")
    entries = journal.get("files") or []
    old_paths = {
        os.path.normpath(os.path.join(site, str(rel)))
        for rel, _ in entries  # type: ignore[attr-defined]
    }
    # The new version, as far as it got: its dist-info (other than the old
    # one) and the files its RECORD lists that the old version does not have.
    for name in os.listdir(site):
        if not name.endswith(".dist-info") or name == old_info:
            if name == old_info:
                for rel in _record_files(os.path.join(site, name)):
                    path = os.path.normpath(os.path.join(site, rel))
                    if path not in old_paths:
                        _remove(path)
            continue
        if _canonical(name[: -len(".dist-info")].rsplit("-", 1)[0]) not in removed:
            continue
        info = os.path.join(site, name)
        for rel in _record_files(info):
            path = os.path.normpath(os.path.join(site, rel))
            if path not in old_paths:
                _remove(path)
        _remove(info)
    backup = os.path.join(site, JOURNAL_DIR, BACKUP)
    for rel, key in entries:  # type: ignore[attr-defined]
        source = os.path.join(backup, str(key))
        target = os.path.normpath(os.path.join(site, str(rel)))
        if not os.path.lexists(source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(source, target)
    version = journal.get("version") or ""
    return f"{journal['dist']} {version}".strip()


def recover(site: str, *, force: bool = False) -> str | None:
    """Restore an interrupted swap in ``site``; ``None`` when there is none
    (or its process still runs, unless ``force``)."""
    path = os.path.join(site, JOURNAL_DIR, JOURNAL)
    try:
        with open(path, encoding="utf-8") as stream:
            journal = json.load(stream)
    except FileNotFoundError:
        cleanup(site)  # a .pth without a journal: the swap never began
        return None
    except (OSError, ValueError):
        journal = None
    if not isinstance(journal, dict):
        cleanup(site)
        return None
    pid = journal.get("pid")
    if not force and isinstance(pid, int) and _alive(pid, journal.get("started")):
        return None  # the swap is still running (this is one of its subprocesses)
    what = restore(site, journal)
    cleanup(site)
    return what


def run() -> None:
    """The ``.pth`` entry point: never raises, says one line when it restored."""
    site = os.path.dirname(os.path.abspath(__file__))
    try:
        what = recover(site)
    except Exception as error:  # noqa: BLE001 - a start must never fail because of us
        sys.stderr.write(
            f"poetry-env-audit: could not restore an interrupted swap in {site}:"
            f" {type(error).__name__}: {error}\n"
        )
        return
    if what:
        sys.stderr.write(
            f"poetry-env-audit: an interrupted install was repaired: restored {what}"
            f" in {site}.\n"
        )
