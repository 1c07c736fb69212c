from __future__ import annotations

# Pure-Python wheels written from scratch: for fake plugins and for benchmarks.
import base64
import hashlib
import re
import zipfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence
    from pathlib import Path


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _entry(path: str) -> zipfile.ZipInfo:
    """A fixed timestamp: the same wheel twice is the same bytes (and hash),
    so locks cached across sessions stay valid."""
    info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def normalised(name: str) -> str:
    """The wheel file-name form of a project name."""
    return re.sub(r"[-_.]+", "_", name).lower()


def write_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    modules: int = 1,
    module_bytes: int = 64,
    requires: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
    summary: str = "synthetic wheel (test harness)",
) -> Path:
    """Write ``<dest>/<name>-<version>-py3-none-any.whl`` and return its path.

    The package ``<name>`` gets *modules* modules of about *module_bytes* bytes
    each, unless *files* gives the archive's payload itself (the dist-info
    METADATA, WHEEL and RECORD are always written here).
    """
    stem = normalised(name)
    dist_info = f"{stem}-{version}.dist-info"
    payload: dict[str, str] = dict(files) if files is not None else {}
    if files is None:
        filler = "#" * max(0, module_bytes - 32)
        payload[f"{stem}/__init__.py"] = ""
        for i in range(modules):
            payload[f"{stem}/m{i:03d}.py"] = f"VALUE = {i}\n# {filler}\n"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata.append(f"Summary: {summary}")
    metadata += [f"Requires-Dist: {r}" for r in requires]
    payload[f"{dist_info}/METADATA"] = "\n".join(metadata) + "\n"
    payload[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: poetry-env-audit-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{stem}-{version}-py3-none-any.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in payload.items():
            data = text.encode()
            archive.writestr(_entry(path), data)
            record.append(f"{path},{record_hash(data)},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(_entry(f"{dist_info}/RECORD"), "\n".join(record) + "\n")
    return wheel
