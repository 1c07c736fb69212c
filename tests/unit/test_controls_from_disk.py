"""Fields read from disk reach no terminal or CI log with a control character
(issue 11): the lock holder's sidecar and the names and versions in METADATA."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from poetry_env_audit.envlock import LOCK_NAME
from poetry_env_audit.envlock import lock_path_for
from poetry_env_audit.lockholder import HOLDER_SUFFIX
from poetry_env_audit.lockholder import holder
from poetry_env_audit.poetry_env import scan_distributions

if TYPE_CHECKING:
    from pathlib import Path

CONTROLS = re.compile("[\x00-\x1f\x7f]")
HOSTILE = "\x1b]0;owned\x07\x1b[2J\r::error::x\n##vso[task.complete]\x7f"


def test_holder_fields_lose_their_control_characters(tmp_path: Path) -> None:
    lock_path = lock_path_for(tmp_path)
    lock_path.with_name(LOCK_NAME + HOLDER_SUFFIX).write_text(
        json.dumps(
            {
                "pid": 1,
                "since": f"2026-11-22{HOSTILE}",
                "command": f"poetry install{HOSTILE}",
                "host": f"elsewhere{HOSTILE}",
            }
        )
    )
    found = holder(lock_path)
    assert found is not None
    for text in (found.since, found.command, found.host, found.describe()):
        assert CONTROLS.search(text) is None, repr(text)
    assert found.command.startswith("poetry install")
    assert "on elsewhere" in found.describe()


def test_metadata_name_and_version_lose_their_control_characters(
    tmp_path: Path,
) -> None:
    info = tmp_path / "evil-1.0.dist-info"
    info.mkdir()
    # A header line cannot hold \n or \r: the other controls are what is left.
    hostile = "\x1b]0;owned\x07\x1b[2J\x7f"
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: evil{hostile}\nVersion: 1.0{hostile}\n\n",
        encoding="utf-8",
    )
    (dist,) = scan_distributions([str(tmp_path)]).values()
    assert CONTROLS.search(dist.display_name) is None
    assert CONTROLS.search(dist.version) is None
    assert CONTROLS.search(dist.name) is None
    assert dist.display_name.startswith("evil")
    assert dist.version.startswith("1.0")
