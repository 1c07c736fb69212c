from __future__ import annotations

# Tiny valid wheels of fake Poetry application plugins.
from typing import TYPE_CHECKING

from harness.synthetic import normalised
from harness.synthetic import write_wheel

if TYPE_CHECKING:
    from pathlib import Path

_PLUGIN_MODULE = '''\
"""A fake Poetry application plugin made by the test harness: it does nothing."""

from poetry.plugins.application_plugin import ApplicationPlugin


class FakePlugin(ApplicationPlugin):
    pass
'''


def build_plugin_wheel(
    dest: Path, name: str, version: str, requires: list[str]
) -> Path:
    """Write ``<dest>/<name>-<version>-py3-none-any.whl``: a module whose class
    subclasses Poetry's ``ApplicationPlugin`` and does nothing, registered
    under ``poetry.application.plugin``, with *requires* as Requires-Dist."""
    stem = normalised(name)
    files = {
        f"{stem}.py": _PLUGIN_MODULE,
        f"{stem}-{version}.dist-info/entry_points.txt": (
            f"[poetry.application.plugin]\n{stem} = {stem}:FakePlugin\n"
        ),
    }
    return write_wheel(
        dest,
        name,
        version,
        requires=requires,
        files=files,
        summary="fake Poetry application plugin (test harness)",
    )
