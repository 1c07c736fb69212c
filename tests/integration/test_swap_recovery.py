from __future__ import annotations

# Swaps that survive interruption (issue 11): a serialised swap of one of
# Poetry's packages is interrupted with SIGKILL, SIGTERM or SIGINT at 20
# evenly spread moments of its window (from the journal's appearance to past
# the end of the widened removal window the fault hooks hold open);
# afterwards Poetry starts, installs, and the environment is consistent, with
# nothing of the journal left behind. The package swapped is tomlkit (the
# swap-startup fixture changes it in place to 0.13.2, which Poetry accepts):
# Poetry imports it at every start, on 1.8.5 and 2.5.1 alike
# (test_poetry_imports_the_swapped_package_at_start proves it), so while the
# swap has it removed, Poetry cannot start without the recovery hook.
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.fault_hooks import SWAP
from harness.fault_hooks import SWAP_SECONDS
from harness.fault_hooks import install_faults
from harness.poetry import describe
from harness.poetry import poetry_env
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.snapshot import check_consistency
from harness.snapshot import dist_infos
from harness.snapshot import installed_versions

if TYPE_CHECKING:
    from harness.interpreters import Interpreter
    from harness.session import Projects

WINDOW = 1.5  # seconds the fault hook holds the old files removed
MOMENTS = 20
SPAN = WINDOW + 0.5  # the moments reach past the window, into the new wheel's write
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}
JOURNAL = ".poetry-env-audit-swap/journal.json"
LEFTOVERS = (
    ".poetry-env-audit-swap",
    "poetry_env_audit_recover.pth",
    "_poetry_env_audit_recover.py",
)
PROBLEMS = (
    "import json; from poetry_env_audit.poetry_env import inspect_poetry_environment"
    " as i; print(json.dumps(sorted(p.detail for p in i().problems)))"
)
SMOKE = {("kill", 10), ("term", 5), ("int", 15)}
SWAPPED = "tomlkit"
SWAPPED_TO = "0.13.2"
FIXTURE = "swap-startup"
# What Poetry's own start (``poetry --version``) loaded, from where.
LOADED_AT_START = (
    "import runpy, sys; sys.argv = ['poetry', '--version']\n"
    "try:\n    runpy.run_module('poetry', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    f"print(getattr(sys.modules.get({SWAPPED!r}), '__file__', None))"
)


def _params() -> list[object]:
    out: list[object] = []
    for name in SIGNALS:
        for moment in range(MOMENTS):
            smoke = (name, moment) in SMOKE
            marks = [pytest.mark.smoke] if smoke else [pytest.mark.moments]
            out.append(
                pytest.param(name, moment, marks=marks, id=f"{name}-{moment:02d}")
            )
    return out


def _problems(interp: Interpreter, cwd: Path) -> list[str]:
    result = run_python(interp, ["-c", PROBLEMS], cwd=cwd)
    assert result.returncode == 0, describe(result)
    return list(json.loads(result.stdout))


def _one_dist_info_each(site: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    for info in dist_infos(site):
        name = (
            info.name[: -len(".dist-info")].rsplit("-", 1)[0].lower().replace("_", "-")
        )
        seen[name] = seen.get(name, 0) + 1
    return sorted(n for n, count in seen.items() if count > 1)


@pytest.mark.smoke
def test_poetry_imports_the_swapped_package_at_start(
    system_poetry: Interpreter,
) -> None:
    """The swapped package is one Poetry cannot start without: its start
    imports it from the site-packages the swap changes."""
    interp = system_poetry
    result = run_python(interp, ["-c", LOADED_AT_START], cwd=interp.prefix)
    assert result.returncode == 0, describe(result)
    assert f"version {interp.poetry_version}" in result.stdout, describe(result)
    loaded = result.stdout.strip().splitlines()[-1]
    expected = interp.site_packages()[0] / SWAPPED / "__init__.py"
    assert Path(loaded).resolve() == expected.resolve(), describe(result)


@pytest.mark.parametrize(("sig", "moment"), _params())
def test_interrupted_swap_heals_at_the_next_start(
    system_poetry: Interpreter, projects: Projects, sig: str, moment: int
) -> None:
    interp = system_poetry
    site = interp.site_packages()
    purelib = site[0]
    install_faults(purelib)
    project = projects.locked(FIXTURE, interp)
    problems_before = _problems(interp, project)
    env = poetry_env(interp, extra_env={SWAP: SWAPPED, SWAP_SECONDS: str(WINDOW)})
    proc = subprocess.Popen(
        [str(interp.python), "-m", "poetry", "install"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (purelib / JOURNAL).exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the swap never began"
            time.sleep(0.005)
        time.sleep(SPAN * moment / MOMENTS)
        if proc.poll() is None:
            proc.send_signal(SIGNALS[sig])
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # A plain Python start heals the environment, before Poetry runs at all.
    first = run_python(interp, ["-c", f"import {SWAPPED}"], cwd=project)
    assert first.returncode == 0, f"{output}\n{describe(first)}"
    interrupted = SPAN * moment / MOMENTS < WINDOW and sig != "int"
    if interrupted:
        assert f"restored {SWAPPED}" in first.stderr, f"{output}\n{describe(first)}"
    assert first.stderr.count("\n") <= 1, describe(first)
    started = run_poetry(interp, ["--version"], cwd=project)
    assert started.returncode == 0, f"{output}\n{describe(started)}"
    assert f"version {interp.poetry_version}" in started.stdout, describe(started)
    assert not [n for n in LEFTOVERS if (purelib / n).exists()], output
    again = run_poetry(interp, ["install"], cwd=project)
    assert again.returncode == 0, f"{output}\n{describe(again)}"
    assert installed_versions(site)[SWAPPED] == SWAPPED_TO
    assert check_consistency(site) == []
    assert _one_dist_info_each(site) == []
    assert _problems(interp, project) == problems_before
    assert not [n for n in LEFTOVERS if (purelib / n).exists()]
