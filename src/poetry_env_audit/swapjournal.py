"""Swaps that survive interruption: a journal and a hard-link backup around
each serialised swap.

Before a swap of distribution ``D`` in site-packages ``S`` (in this order,
each step atomic, so that a kill between any two leaves a state the next
start understands):

1. ``S/_poetry_env_audit_recover.py``: a copy of :mod:`poetry_env_audit._recover`
   (standard library only; it must run when Poetry cannot import);
2. ``S/.poetry-env-audit-swap/backup/N``: a hard link to each file of ``D``'s
   ``RECORD`` (a copy where a link cannot be made, or where a wheel of
   another name writes over ``D``'s files in place), so the uninstaller's
   ``unlink`` leaves the old data reachable;
3. ``S/.poetry-env-audit-swap/journal.json``: ``D``, its version and
   dist-info, each file with its backup, and the swapping process (pid and
   start time);
4. ``S/poetry_env_audit_recover.pth``: one ``import`` line that runs the
   recovery at every interpreter start, only while it exists.

After the swap: on success the ``.pth`` goes first (from then on no start
restores anything), then the journal, the backup and the module; on failure
(an error, Ctrl-C) the old version is restored at once, in process. A
``SIGKILL`` or ``SIGTERM`` leaves the four in place: the next Python started
in that environment (Poetry or anything else) finds the journal, sees that
its process is gone (a subprocess of the swap itself, such as ``pip
uninstall``, sees it alive and does nothing) and restores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_env_audit import _recover
from poetry_env_audit.atomic import write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True)
class Swap:
    """One in-place swap of a distribution, as the journal records it before it starts."""

    site: Path
    dist: str
    version: str
    dist_info: str = ""
    files: tuple[str, ...] = ()


def _find(site_dirs: Iterable[Path], name: str) -> tuple[Path, Path] | None:
    """``(site, dist-info)`` of the installed distribution ``name``."""
    wanted = _recover._canonical(name)
    for site in site_dirs:
        try:
            entries = sorted(site.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".dist-info") and entry.is_dir():
                stem = entry.name[: -len(".dist-info")].rsplit("-", 1)[0]
                if _recover._canonical(stem) == wanted:
                    return site, entry
    return None


def _link(source: Path, link: Path) -> bool:
    try:
        os.link(source, link)
    except OSError:
        return False
    return True


def begin(
    site_dirs: Iterable[Path], name: str, *, incoming: str | None = None
) -> Swap | None:
    """Journal the installed ``name`` before it is swapped; ``None`` when it is
    not installed (nothing to restore) or has no RECORD.

    ``incoming``: the swap installs that distribution, whose wheel writes
    over files of ``name`` (ownership by file). The installer rewrites an
    existing file in place (``open(path, "wb")``, the same inode), which
    would empty a hard link too, so ``name``'s files are copied; a restore
    also removes what ``incoming`` wrote."""
    dirs = list(site_dirs)
    found = _find(dirs, name)
    if found is None:
        return None
    site, dist_info = found
    records = _recover._record_files(str(dist_info))
    if not records:
        return None
    version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)[-1]
    _recover.cleanup(str(site))  # a stale journal of a finished swap
    try:
        return _journal(site, name, version, dist_info, records, incoming)
    except BaseException:
        # Interrupted (Ctrl-C) or failed before the swap began: nothing of
        # the journal may stay behind, and nothing needs restoring.
        _recover.cleanup(str(site))
        raise


def _journal(
    site: Path,
    name: str,
    version: str,
    dist_info: Path,
    records: list[str],
    incoming: str | None,
) -> Swap:
    source = Path(_recover.__file__).read_bytes()
    write_atomic(site / _recover.MODULE, source, mode=None)
    backup = site / _recover.JOURNAL_DIR / _recover.BACKUP
    backup.mkdir(parents=True)
    files: list[list[str]] = []
    for i, rel in enumerate(records):
        path = Path(os.path.normpath(site / rel))
        if not path.is_file() or path.is_symlink():
            continue
        key = str(i)
        if incoming is not None or not _link(path, backup / key):
            shutil.copy2(path, backup / key)
        files.append([rel, key])
    journal = {
        "dist": name,
        "version": version,
        "dist_info": dist_info.name,
        "files": files,
        "incoming": incoming,
        "pid": os.getpid(),
        "started": _recover.process_start(os.getpid()),
    }
    write_atomic(
        site / _recover.JOURNAL_DIR / _recover.JOURNAL,
        json.dumps(journal).encode("utf-8"),
        mode=None,
    )
    write_atomic(site / _recover.PTH, _recover.PTH_LINE.encode("ascii"), mode=None)
    return Swap(
        site=site,
        dist=name,
        version=version,
        dist_info=dist_info.name,
        files=tuple(records),
    )


def remove_old(swap: Swap) -> None:
    """Uninstall the journaled version in process, as ``pip uninstall`` does:
    every file of its ``RECORD`` (and the byte code of each ``.py``), then the
    directories that became empty. The backup keeps the data until the swap
    is finished."""
    site = swap.site
    dirs: set[Path] = set()
    for rel in swap.files:
        path = Path(os.path.normpath(site / rel))
        targets = [path]
        if path.suffix == ".py":
            targets += list((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))
        for target in targets:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            dirs.add(target.parent)
    shutil.rmtree(site / swap.dist_info, ignore_errors=True)
    root = Path(os.path.normpath(site))
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        current = directory
        while current != root and root in current.parents:
            try:
                current.rmdir()
            except OSError:
                break
            current = current.parent


def finish(swap: Swap, *, ok: bool) -> str | None:
    """After the swap: forget it (``ok``) or restore the old version now.
    Returns what was restored, if anything."""
    if ok:
        _recover.cleanup(str(swap.site))
        return None
    return _recover.recover(str(swap.site), force=True)
