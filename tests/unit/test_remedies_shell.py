"""Every pasteable remedy runs exactly the command it shows, whatever the names
in it: each is executed with ``sh -c`` in a scratch directory where ``pipx``,
``poetry`` and ``python`` are fakes that record their argv (issue 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from poetry_env_audit.findings import Finding
from poetry_env_audit.findings import Requirer
from poetry_env_audit.findings import Verdict
from poetry_env_audit.plan import Action
from poetry_env_audit.remedies import align_lock
from poetry_env_audit.remedies import isolate_poetry
from poetry_env_audit.remedies import repair
from unit.factories import dist
from unit.factories import poetry_env

if TYPE_CHECKING:
    from pathlib import Path

    from poetry_env_audit.findings import Remedy

HOSTILE = [
    "adv-evil$(touch pwned-1)",
    "adv`touch pwned-2`",
    "adv;touch pwned-3",
    "adv' ; touch pwned-4 ; '",
    'adv" && touch pwned-5 && "',
    "adv|touch pwned-6",
    "adv\ntouch pwned-7",
    "adv&&touch pwned-8",
    "adv > pwned-9",
]

RECORDER = """#!{python}
import json, os, sys
with open(os.path.join(os.environ["RECORD_DIR"], "calls.jsonl"), "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pipx", "poetry", "python3"):
        script = bin_dir / name
        script.write_text(RECORDER.format(python=sys.executable), encoding="utf-8")
        script.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    return tmp_path


def run_pasted(scratch: Path, remedy: Remedy) -> list[list[str]]:
    """Run the remedy's command as a user pasting it would; return the calls."""
    assert remedy.command is not None
    sh = shutil.which("sh")
    assert sh is not None
    work = scratch / "work"
    env = {
        "PATH": f"{scratch / 'bin'}:/usr/bin:/bin",
        "RECORD_DIR": str(scratch),
        "HOME": str(work),
    }
    subprocess.run(
        [sh, "-c", remedy.command], cwd=work, env=env, check=False, timeout=30
    )
    assert list(work.iterdir()) == [], remedy.command  # nothing else was created
    calls = scratch / "calls.jsonl"
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]


@pytest.mark.parametrize("name", HOSTILE)
def test_isolate_poetry_injects_exactly_the_plugins(scratch: Path, name: str) -> None:
    poetry = poetry_env([dist("poetry", "2.5.1"), dist(name, "1.0", plugin=True)])
    assert name in poetry.plugins or name.lower() in poetry.plugins
    plugin = next(p for p in poetry.plugins if p != "poetry-env-audit")
    calls = run_pasted(scratch, isolate_poetry(poetry))
    assert calls == [
        ["pipx", "install", "poetry==2.5.1"],
        ["pipx", "inject", "poetry", *sorted([plugin, "poetry-env-audit"])],
    ]


@pytest.mark.parametrize("version", ["2.5.1$(touch pwned)", "1;touch pwned", "2 3"])
def test_isolate_poetry_quotes_a_hostile_poetry_version(
    scratch: Path, version: str
) -> None:
    poetry = poetry_env([dist("poetry", version)])
    calls = run_pasted(scratch, isolate_poetry(poetry))
    assert calls[0] == ["pipx", "install", f"poetry=={version}"]
    assert calls[1] == ["pipx", "inject", "poetry", "poetry-env-audit"]


def _finding(package: str, requirement: str) -> Finding:
    return Finding(
        package=package,
        current="25.0",
        planned="23.0",
        action=Action.DOWNGRADE,
        verdict=Verdict.BREAKS,
        required_by=(Requirer("poetry", "2.5.1", requirement, satisfied=False),),
        detail="",
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_align_lock_adds_exactly_the_requirement(scratch: Path, name: str) -> None:
    for requirement in (name, f"{name}>=24.2"):
        remedy = align_lock(_finding(name, requirement), ())
        calls = run_pasted(scratch, remedy)
        (scratch / "calls.jsonl").unlink()
        assert len(calls) == 1
        assert calls[0][:2] == ["poetry", "add"]
        assert calls[0][2].startswith(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_repair_installs_exactly_the_requirement(scratch: Path, name: str) -> None:
    poetry = poetry_env([dist("poetry", "2.5.1")], python="python3")
    calls = run_pasted(scratch, repair(poetry, name, ">=1"))
    assert calls == [["python3", "-m", "pip", "install", f"{name}>=1"]]
