from __future__ import annotations

# Ownership by file (issue 11): a wheel of another name that ships a file of
# a distribution Poetry runs on (tomlkit-shadow with tomlkit/__init__.py),
# in a shared environment. Other content: refused before the first
# operation runs, the environment byte for byte as it was (the wheel that
# Poetry would install first, leftpad-x, is not installed either). The same
# bytes: serialised, installed alone after the other operations. Without the
# check Poetry writes it "over existing file" and no longer imports.
# `poetry env-audit` checks the wheels Poetry's cache holds and counts the
# others: before the refused install none is cached; after it (the guard
# fetched them into Poetry's cache before refusing) it reports the same
# finding. A serialised overwrite killed half-way through rewriting Poetry's
# file heals at the next start, from the journal's copy of the owner.
import json
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from harness.fault_hooks import SWAP_SECONDS
from harness.fault_hooks import TRACE
from harness.fault_hooks import WRITE
from harness.fault_hooks import install_faults
from harness.index import build_simple_index
from harness.index import serve
from harness.poetry import describe
from harness.poetry import poetry_env
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.snapshot import check_consistency
from harness.snapshot import file_sha256
from harness.snapshot import snapshot_site_packages
from harness.synthetic import write_wheel

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter

LOCK_FILE = ".poetry-env-audit.lock"
SHADOW = "raise ImportError('tomlkit shadowed by tomlkit-shadow')\n"


@dataclass
class ShadowIndex:
    """A private index for one test's synthetic wheels."""

    wheels: Path
    root: Path
    url: str

    def publish(self, *wheels: tuple[str, dict[str, str] | None, list[str]]) -> None:
        for name, files, requires in wheels:
            write_wheel(self.wheels, name, "1.0", files=files, requires=requires)
        build_simple_index([self.wheels], self.root)


@pytest.fixture
def shadow_index(tmp_path: Path) -> Iterator[ShadowIndex]:
    root = tmp_path / "index"
    root.mkdir()
    with serve(root) as server:
        yield ShadowIndex(tmp_path / "wheels", root, server.url)


def _project(root: Path, index_url: str, dependencies: dict[str, str]) -> Path:
    project = root / "shadow-project"
    project.mkdir()
    deps = "".join(f'{name} = "{version}"\n' for name, version in dependencies.items())
    (project / "pyproject.toml").write_text(
        "[tool.poetry]\n"
        'name = "shadow-project"\nversion = "0.1.0"\ndescription = ""\n'
        'authors = ["poetry-env-audit tests"]\npackage-mode = false\n\n'
        "[tool.poetry.dependencies]\n"
        f'python = ">=3.9"\n{deps}\n'
        "[[tool.poetry.source]]\n"
        f'name = "shadow"\nurl = "{index_url}"\npriority = "primary"\n',
        encoding="utf-8",
    )
    return project


def _audit(interp: Interpreter, project: Path) -> tuple[int, dict[str, object]]:
    result = run_poetry(interp, ["env-audit", "--format", "json"], cwd=project)
    assert result.returncode in (0, 1), describe(result)
    return result.returncode, json.loads(result.stdout)


def _overwrites(report: dict[str, object]) -> list[dict[str, object]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["action"] == "overwrite"]


@pytest.mark.smoke
def test_wheel_that_would_overwrite_poetrys_files_is_refused_before_any_change(
    system_poetry: Interpreter, tmp_path: Path, shadow_index: ShadowIndex
) -> None:
    # leftpad-x is a dependency of tomlkit-shadow: Poetry installs it first,
    # in an earlier group, so a refusal at the moment tomlkit-shadow's wheel
    # is written would come after leftpad-x was installed.
    shadow_index.publish(
        ("leftpad-x", None, []),
        ("tomlkit-shadow", {"tomlkit/__init__.py": SHADOW}, ["leftpad-x==1.0"]),
    )
    project = _project(tmp_path, shadow_index.url, {"tomlkit-shadow": "1.0"})
    interp = system_poetry
    locked = run_poetry(interp, ["lock"], cwd=project)
    assert locked.returncode == 0, describe(locked)

    # env-audit downloads nothing: neither wheel is in Poetry's cache yet.
    code, report = _audit(interp, project)
    assert (code, _overwrites(report)) == (0, [])
    assert report["wheels"] == {"checked": 0, "unchecked": 2}
    text = run_poetry(interp, ["env-audit"], cwd=project)
    assert "2 planned wheels of 2 are not in Poetry's cache" in text.stdout, describe(
        text
    )

    site = interp.site_packages()
    before = snapshot_site_packages(site)
    listing = sorted(p.name for p in site[0].iterdir() if p.name != LOCK_FILE)
    result = run_poetry(interp, ["install"], cwd=project)

    why = describe(result)
    assert result.returncode == 1, why
    output = result.stdout + result.stderr
    assert "refusing to run this install: it would break Poetry" in output, why
    assert (
        "tomlkit-shadow 1.0 would overwrite tomlkit/__init__.py of tomlkit" in output
    ), why
    assert "with other content" in output, why
    assert "leftpad" not in result.stdout, why
    assert snapshot_site_packages(site) == before
    # The environment lock file is the one thing a shared target gets.
    after = sorted(p.name for p in site[0].iterdir() if p.name != LOCK_FILE)
    assert after == listing
    version = run_poetry(interp, ["--version"], cwd=project)
    assert version.returncode == 0, describe(version)

    # The guard fetched both wheels into Poetry's cache before refusing:
    # env-audit now checks them and reports the same finding.
    code, report = _audit(interp, project)
    assert report["wheels"] == {"checked": 2, "unchecked": 0}
    (finding,) = _overwrites(report)
    assert (code, finding["package"], finding["by"]) == (1, "tomlkit", "tomlkit-shadow")
    assert (finding["verdict"], finding["policy"]) == ("breaks", "block")
    assert "tomlkit/__init__.py" in str(finding["message"])


def test_wheel_that_writes_the_same_bytes_is_serialised(
    system_poetry: Interpreter, tmp_path: Path, shadow_index: ShadowIndex
) -> None:
    interp = system_poetry
    site = interp.site_packages()
    owned = site[0] / "tomlkit" / "__init__.py"
    digest = file_sha256(owned)
    shadow_index.publish(
        ("leftpad-x", None, []),
        ("tomlkit-same", {"tomlkit/__init__.py": owned.read_text("utf-8")}, []),
    )
    project = _project(
        tmp_path, shadow_index.url, {"tomlkit-same": "1.0", "leftpad-x": "1.0"}
    )
    locked = run_poetry(interp, ["lock"], cwd=project)
    assert locked.returncode == 0, describe(locked)
    install_faults(site[0])
    trace = tmp_path / "trace.jsonl"

    result = run_poetry(interp, ["install"], cwd=project, extra_env={TRACE: str(trace)})

    why = describe(result)
    assert result.returncode == 0, why
    output = result.stdout + result.stderr
    assert "serialising tomlkit-same" in output, why
    assert "of tomlkit" in output and "with the same bytes" in output, why
    ops = [json.loads(line) for line in trace.read_text().splitlines()]
    assert sorted(op["name"] for op in ops) == ["leftpad-x", "tomlkit-same"], ops
    (last,) = [op for op in ops if op["name"] == "tomlkit-same"]
    assert all(op["end"] <= last["start"] for op in ops if op is not last), ops
    assert file_sha256(owned) == digest
    assert check_consistency(site) == []
    assert not (site[0] / ".poetry-env-audit-swap").exists()
    version = run_poetry(interp, ["--version"], cwd=project)
    assert version.returncode == 0, describe(version)


def test_a_serialised_overwrite_killed_half_way_heals_at_the_next_start(
    system_poetry: Interpreter, tmp_path: Path, shadow_index: ShadowIndex
) -> None:
    """SIGKILL while the serialised wheel has rewritten half of Poetry's
    tomlkit/__init__.py in place: the next Python start puts the owner's
    bytes back from the journal's copy and removes what the wheel wrote."""
    interp = system_poetry
    site = interp.site_packages()
    owned = site[0] / "tomlkit" / "__init__.py"
    original = owned.read_bytes()
    shadow_index.publish(
        ("tomlkit-same", {"tomlkit/__init__.py": original.decode("utf-8")}, []),
    )
    project = _project(tmp_path, shadow_index.url, {"tomlkit-same": "1.0"})
    locked = run_poetry(interp, ["lock"], cwd=project)
    assert locked.returncode == 0, describe(locked)
    install_faults(site[0])
    held = {WRITE: "tomlkit/__init__.py", SWAP_SECONDS: "30"}
    proc = subprocess.Popen(
        [str(interp.python), "-m", "poetry", "install"],
        cwd=project,
        env=poetry_env(interp, extra_env=held),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        journal = site[0] / ".poetry-env-audit-swap" / "journal.json"
        while not (journal.exists() and owned.stat().st_size < len(original)):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the overwrite never began"
            time.sleep(0.01)
        assert json.loads(journal.read_text())["incoming"] == "tomlkit-same"
        proc.kill()
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    first = run_python(interp, ["-c", "import tomlkit"], cwd=project)
    assert first.returncode == 0, f"{output}\n{describe(first)}"
    assert "restored tomlkit" in first.stderr, f"{output}\n{describe(first)}"
    assert owned.read_bytes() == original
    assert not list(site[0].glob("tomlkit_same-*.dist-info"))
    assert check_consistency(site) == []
    version = run_poetry(interp, ["--version"], cwd=project)
    assert version.returncode == 0, describe(version)
