from __future__ import annotations

# Tiny valid wheels of fake Poetry application plugins.
import base64
import hashlib
import re
import zipfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_PLUGIN_MODULE = '''\
"""A fake Poetry application plugin made by the test harness: it does nothing."""

from poetry.plugins.application_plugin import ApplicationPlugin


class FakePlugin(ApplicationPlugin):
    pass
'''


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _metadata(name: str, version: str, requires: list[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines.append("Summary: fake Poetry application plugin (test harness)")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def build_plugin_wheel(
    dest: Path, name: str, version: str, requires: list[str]
) -> Path:
    """Write ``<dest>/<name>-<version>-py3-none-any.whl``: a module whose class
    subclasses Poetry's ``ApplicationPlugin`` and does nothing, registered
    under ``poetry.application.plugin``, with *requires* as Requires-Dist."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}.py": _PLUGIN_MODULE,
        f"{dist_info}/METADATA": _metadata(name, version, requires),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: poetry-env-audit-tests\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (
            f"[poetry.application.plugin]\n{stem} = {stem}:FakePlugin\n"
        ),
    }
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{stem}-{version}-py3-none-any.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            data = text.encode()
            archive.writestr(path, data)
            record.append(f"{path},{_record_hash(data)},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel
