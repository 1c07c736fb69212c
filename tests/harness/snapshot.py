from __future__ import annotations

# What is installed, byte for byte: snapshots of site-packages to compare
# before and after a command, and a consistency check of the RECORD files.
import base64
import csv
import hashlib
import os
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

from harness.wheels import normalize

if TYPE_CHECKING:
    from collections.abc import Iterable

MISSING = "<missing>"


def dist_infos(dirs: Iterable[Path]) -> list[Path]:
    """Every ``*.dist-info`` directory directly under *dirs* (sorted)."""
    found: list[Path] = []
    for directory in dict.fromkeys(dirs):
        if directory.is_dir():
            found += sorted(p for p in directory.glob("*.dist-info") if p.is_dir())
    return found


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return MISSING


def record_entries(dist_info: Path) -> list[tuple[str, str]]:
    """(path, hash) rows of a RECORD; hash is ``algo=urlsafe-b64`` or ""."""
    record = dist_info / "RECORD"
    if not record.is_file():
        return []
    with record.open(newline="", encoding="utf-8") as stream:
        return [
            (row[0], row[1] if len(row) > 1 else "")
            for row in csv.reader(stream)
            if row
        ]


def _resolve(site: Path, entry: str) -> Path:
    return Path(os.path.normpath(site / entry))


def snapshot_site_packages(dirs: Iterable[Path]) -> dict[str, str]:
    """``{path: sha256-hex}`` for each dist-info's RECORD and METADATA and
    every file its RECORD lists (missing files map to ``"<missing>"``), plus
    ``{"dist:<dist-info name>": "<name> <version>"}``.  Equal snapshots mean
    byte-identical installed distributions."""
    snapshot: dict[str, str] = {}
    for dist_info in dist_infos(dirs):
        site = dist_info.parent
        name, version = dist_name_version(dist_info)
        snapshot[f"dist:{dist_info}"] = f"{name} {version}"
        for special in ("RECORD", "METADATA"):
            snapshot[str(dist_info / special)] = file_sha256(dist_info / special)
        for entry, _ in record_entries(dist_info):
            path = _resolve(site, entry)
            snapshot[str(path)] = file_sha256(path)
    return snapshot


def dist_name_version(dist_info: Path) -> tuple[str, str]:
    """Normalised name and version from METADATA (or the directory name)."""
    try:
        text = (dist_info / "METADATA").read_text(encoding="utf-8")
        headers = HeaderParser().parsestr(text)
        name, version = headers["Name"], headers["Version"]
    except (OSError, KeyError):
        name, version = None, None
    if not name or not version:
        name, _, version = dist_info.name[: -len(".dist-info")].partition("-")
    return normalize(str(name)), str(version)


def installed_versions(dirs: Iterable[Path]) -> dict[str, str]:
    """``{normalised name: version}`` of the distributions in *dirs*."""
    return dict(dist_name_version(d) for d in dist_infos(dirs))


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two snapshots."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"{key}: {old} -> {new}")
    return lines


def check_consistency(dirs: Iterable[Path]) -> list[str]:
    """Problems of the installed distributions: two dist-infos of one name,
    RECORD entries whose file is missing or whose hash does not match."""
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for dist_info in dist_infos(dirs):
        name, _ = dist_name_version(dist_info)
        if name in seen:
            problems.append(f"duplicate {name}: {seen[name].name} and {dist_info.name}")
        seen.setdefault(name, dist_info)
        problems += _record_problems(dist_info)
    return problems


def _record_problems(dist_info: Path) -> list[str]:
    problems: list[str] = []
    site = dist_info.parent
    for entry, expected in record_entries(dist_info):
        path = _resolve(site, entry)
        if not path.is_file():
            problems.append(f"{dist_info.name}: {entry} is missing")
        elif expected and not _hash_matches(path, expected):
            problems.append(f"{dist_info.name}: {entry} does not match its RECORD hash")
    return problems


def _hash_matches(path: Path, expected: str) -> bool:
    algorithm, _, value = expected.partition("=")
    try:
        digest = hashlib.new(algorithm, path.read_bytes()).digest()
    except (ValueError, OSError):
        return False
    encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return encoded == value
