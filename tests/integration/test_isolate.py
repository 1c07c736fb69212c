from __future__ import annotations

# `poetry self isolate` in real Poetry: the launcher the user runs moves to a
# venv of its own (offline, from the installed files), the project's lock that
# the guard refused then installs into the original interpreter, a second run,
# --undo, --dry-run, an interruption after each step and the refusals.
#
# Clones move the prefix, so the `bin/poetry` a clone inherits names the
# template's interpreter: each test writes the launcher pip would have written
# for the clone (`make_launcher`) and runs that script itself.
import json
import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING
from typing import cast

import pytest

from harness.fakes import build_plugin_wheel
from harness.fault_hooks import KILL_AT
from harness.fault_hooks import install_faults
from harness.interpreters import pip_install
from harness.poetry import describe
from harness.poetry import poetry_env
from harness.poetry import run_poetry
from harness.poetry import state_dir_for
from harness.snapshot import installed_versions

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import Projects

BREAKING = "23.0"  # the packaging version downgrade-breaks pins
ISOLATE = ["self", "isolate"]
#: Nothing reachable for the isolating step: a dead index and dead proxies,
#: loopback included (the local index is not exempted).
DEAD = "http://127.0.0.1:9"
OFFLINE = {
    "PIP_INDEX_URL": f"{DEAD}/simple/",
    "PIP_FIND_LINKS": "",
    "HTTP_PROXY": DEAD,
    "HTTPS_PROXY": DEAD,
    "ALL_PROXY": DEAD,
    "http_proxy": DEAD,
    "https_proxy": DEAD,
    "all_proxy": DEAD,
    "NO_PROXY": "",
    "no_proxy": "",
}
STEPS_BEFORE_SWITCH = ["venv", "copy", "scripts", "verify", "backup", "state"]


@pytest.fixture(params=["system_poetry", "venv_poetry"], ids=["system", "venv"])
def shared_poetry(request: pytest.FixtureRequest, poetry_version: str) -> Interpreter:
    """Poetry that installs into its own environment: system-like or an active venv."""
    return cast("Interpreter", request.getfixturevalue(str(request.param)))


# ------------------------------------------------------------------ helpers


def make_launcher(interp: Interpreter) -> Path:
    """``<prefix>/bin/poetry`` as pip writes it for this clone's interpreter."""
    launcher = interp.bin_dir / "poetry"
    launcher.write_text(
        f"#!{interp.python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        "from poetry.console.application import main\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return launcher


def run_launcher(
    interp: Interpreter,
    launcher: Path,
    args: list[str],
    *,
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The launcher itself (its shebang decides the interpreter), in the
    environment ``run_poetry`` uses."""
    return subprocess.run(
        [str(launcher), *args],
        cwd=cwd,
        env=poetry_env(interp, extra_env=extra_env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def data_dir(interp: Interpreter) -> Path:
    return state_dir_for(interp) / "data"


def venv_of(interp: Interpreter) -> Path:
    return data_dir(interp) / "isolated-venv"


def isolate(
    interp: Interpreter, launcher: Path, cwd: Path, *more: str
) -> subprocess.CompletedProcess[str]:
    return run_launcher(interp, launcher, [*ISOLATE, *more], cwd=cwd, extra_env=OFFLINE)


def shebang_python(launcher: Path) -> str:
    return launcher.read_text(encoding="utf-8").splitlines()[0][2:]


def plugin_names(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, describe(result)
    return sorted(re.findall(r"^\s+- (\S+) \(", result.stdout, re.M))


def ways_out(result: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"^ {6}(\S.*)$", result.stderr.split("Ways out:")[-1], re.M)


def audit_json(interp: Interpreter, launcher: Path, project: Path) -> dict[str, object]:
    result = run_launcher(
        interp, launcher, ["env-audit", "--format", "json"], cwd=project
    )
    assert result.returncode in (0, 1), describe(result)
    return cast("dict[str, object]", json.loads(result.stdout))


def assert_runs(interp: Interpreter, launcher: Path, cwd: Path) -> None:
    result = run_launcher(interp, launcher, ["--version"], cwd=cwd)
    assert result.returncode == 0, describe(result)
    assert f"version {interp.poetry_version}" in result.stdout, describe(result)


def real(path: Path | str) -> str:
    return os.path.realpath(path)


# ------------------------------------------------------------------ the recipe


@pytest.mark.smoke
def test_isolated_poetry_installs_the_lock_the_guard_refused(
    shared_poetry: Interpreter, projects: Projects
) -> None:
    interp = shared_poetry
    project = projects.locked("downgrade-breaks", interp)
    launcher = make_launcher(interp)
    plugins = plugin_names(
        run_launcher(interp, launcher, ["self", "show", "plugins"], cwd=project)
    )
    assert "poetry-env-audit" in plugins

    refused = run_launcher(interp, launcher, ["install"], cwd=project)
    assert refused.returncode == 1, describe(refused)
    assert ways_out(refused)[0] == "poetry self isolate", describe(refused)

    result = isolate(interp, launcher, project)

    assert result.returncode == 0, describe(result)
    assert f"Poetry {interp.poetry_version} is isolated: {launcher}" in result.stdout
    assert result.stderr == "", describe(result)
    venv = venv_of(interp)
    assert shebang_python(launcher) == str(venv / "bin" / "python")
    assert_runs(interp, launcher, project)
    after = plugin_names(
        run_launcher(interp, launcher, ["self", "show", "plugins"], cwd=project)
    )
    assert after == plugins
    report = audit_json(interp, launcher, project)
    poetry = cast("dict[str, object]", report["poetry"])
    target = cast("dict[str, object]", report["target"])
    assert real(str(poetry["prefix"])) == real(venv)
    assert real(str(poetry["prefix"])) != real(interp.prefix)
    assert (poetry["isolated"], target["shared"]) == (True, False)
    assert real(str(target["path"])) == real(interp.prefix)

    installed = run_launcher(interp, launcher, ["install"], cwd=project)

    assert installed.returncode == 0, describe(installed)
    assert "refusing" not in installed.stderr, describe(installed)
    assert installed_versions(interp.site_packages())["packaging"] == BREAKING
    assert_runs(interp, launcher, project)
    report = audit_json(interp, launcher, project)
    assert cast("dict[str, object]", report["poetry"])["isolated"] is True
    assert cast("dict[str, object]", report["target"])["shared"] is False
    assert report["verdict"] == "ok"
    # The original environment keeps its packages (Poetry included).
    assert installed_versions(interp.site_packages())["poetry"] == interp.poetry_version


def test_second_run_says_it_is_already_isolated(
    system_poetry: Interpreter, projects: Projects, tmp_path: Path
) -> None:
    interp = system_poetry
    launcher = make_launcher(interp)
    assert isolate(interp, launcher, tmp_path).returncode == 0
    switched = launcher.read_bytes()

    again = isolate(interp, launcher, tmp_path)
    # The original Poetry, run as a module, finds its launcher switched too.
    module = run_poetry(interp, ISOLATE, cwd=tmp_path, extra_env=OFFLINE)

    for result in (again, module):
        assert result.returncode == 0, describe(result)
        assert result.stdout.startswith(
            f"Poetry is already isolated ({venv_of(interp)}, launcher {launcher})."
        ), describe(result)
    assert launcher.read_bytes() == switched


def test_poetry_alone_in_an_inactive_venv_is_already_isolated(
    isolated_poetry: Interpreter, tmp_path: Path
) -> None:
    interp = isolated_poetry
    launcher = make_launcher(interp)
    original = launcher.read_bytes()

    result = isolate(interp, launcher, tmp_path)

    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith(
        "Poetry is already isolated (a virtual environment that holds nothing else"
        f" and is not active at {interp.prefix}, launcher {launcher})."
    ), describe(result)
    assert launcher.read_bytes() == original
    assert not venv_of(interp).exists()


def test_undo_restores_the_launcher(system_poetry: Interpreter, tmp_path: Path) -> None:
    interp = system_poetry
    launcher = make_launcher(interp)
    original = launcher.read_bytes()
    mode = launcher.stat().st_mode
    assert isolate(interp, launcher, tmp_path).returncode == 0

    undone = run_launcher(interp, launcher, [*ISOLATE, "--undo"], cwd=tmp_path)

    assert undone.returncode == 0, describe(undone)
    assert f"{launcher} runs Poetry from {real(interp.prefix)} again" in undone.stdout
    assert launcher.read_bytes() == original
    assert launcher.stat().st_mode == mode
    assert sorted(p.name for p in data_dir(interp).glob("isolated-venv*")) == [
        "isolated-venv.lock"
    ]
    assert_runs(interp, launcher, tmp_path)
    nothing = run_launcher(interp, launcher, [*ISOLATE, "--undo"], cwd=tmp_path)
    assert nothing.returncode == 0, describe(nothing)
    assert "nothing to undo" in nothing.stdout, describe(nothing)
    # And it can be isolated again.
    assert isolate(interp, launcher, tmp_path).returncode == 0
    assert_runs(interp, launcher, tmp_path)


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    interp = system_poetry
    launcher = make_launcher(interp)
    original = launcher.read_bytes()

    result = isolate(interp, launcher, tmp_path, "--dry-run")

    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"Would isolate Poetry {interp.poetry_version}, which runs from"
    )
    assert (
        f"  - create the virtual environment {venv_of(interp)} from " in result.stdout
    )
    assert re.search(
        r"^  - copy \d+ distributions \(\d+ files\) from ", result.stdout, re.M
    )
    assert "poetry-env-audit 0.1.0" in result.stdout
    assert lines[-1] == "Nothing was changed (--dry-run)."
    assert launcher.read_bytes() == original
    assert not data_dir(interp).exists() or not any(data_dir(interp).iterdir())


# ------------------------------------------------------------------ interruptions


@pytest.mark.parametrize("step", STEPS_BEFORE_SWITCH)
def test_interruption_before_the_switch_leaves_the_old_launcher(
    system_poetry: Interpreter, tmp_path: Path, step: str
) -> None:
    interp = system_poetry
    install_faults(interp.site_packages()[0])
    launcher = make_launcher(interp)
    original = launcher.read_bytes()

    killed = run_launcher(
        interp, launcher, ISOLATE, cwd=tmp_path, extra_env={**OFFLINE, KILL_AT: step}
    )

    assert killed.returncode == -9, describe(killed)
    assert launcher.read_bytes() == original
    assert_runs(interp, launcher, tmp_path)
    again = isolate(interp, launcher, tmp_path)
    assert again.returncode == 0, describe(again)
    assert "is isolated" in again.stdout, describe(again)
    assert shebang_python(launcher) == str(venv_of(interp) / "bin" / "python")
    assert_runs(interp, launcher, tmp_path)


def test_interruption_after_the_switch_is_isolated(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    interp = system_poetry
    install_faults(interp.site_packages()[0])
    launcher = make_launcher(interp)

    killed = run_launcher(
        interp,
        launcher,
        ISOLATE,
        cwd=tmp_path,
        extra_env={**OFFLINE, KILL_AT: "switch"},
    )

    assert killed.returncode == -9, describe(killed)
    assert_runs(interp, launcher, tmp_path)
    again = isolate(interp, launcher, tmp_path)
    assert again.stdout.startswith("Poetry is already isolated"), describe(again)
    undone = run_launcher(interp, launcher, [*ISOLATE, "--undo"], cwd=tmp_path)
    assert undone.returncode == 0, describe(undone)
    assert shebang_python(launcher) == str(interp.python)


# ------------------------------------------------------------------ refusals


def assert_refused(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 1, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("poetry-env-audit: cannot isolate Poetry: "), describe(
        result
    )
    for name in names:
        assert name in lines[0], describe(result)
    assert "Traceback" not in result.stderr


def test_read_only_launcher_is_refused(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    interp = system_poetry
    launcher = make_launcher(interp)
    launcher.chmod(0o555)
    original = launcher.read_bytes()

    result = isolate(interp, launcher, tmp_path)

    assert_refused(result, f"the launcher {launcher} is not writable")
    assert launcher.read_bytes() == original
    assert not venv_of(interp).exists()


def test_plugin_without_record_is_refused(
    system_poetry: Interpreter, find_links: list[Path], tmp_path: Path
) -> None:
    interp = system_poetry
    wheel = build_plugin_wheel(tmp_path / "fake", "fake-plugin", "1.0", [])
    pip_install(interp.python, [str(wheel)], [wheel.parent, *find_links])
    [record] = interp.site_packages()[0].glob("fake_plugin-1.0.dist-info/RECORD")
    record.unlink()
    launcher = make_launcher(interp)
    original = launcher.read_bytes()

    result = isolate(interp, launcher, tmp_path)

    assert_refused(result, "fake-plugin 1.0", "has no RECORD file")
    assert launcher.read_bytes() == original
    assert not venv_of(interp).exists()
    assert_runs(interp, launcher, tmp_path)


def test_plugin_without_record_comes_from_poetrys_cache(
    system_poetry: Interpreter, find_links: list[Path], tmp_path: Path
) -> None:
    interp = system_poetry
    wheel = build_plugin_wheel(tmp_path / "fake", "fake-plugin", "1.0", [])
    pip_install(interp.python, [str(wheel)], [wheel.parent, *find_links])
    [record] = interp.site_packages()[0].glob("fake_plugin-1.0.dist-info/RECORD")
    record.unlink()
    # Where Poetry keeps the wheels it downloaded (POETRY_CACHE_DIR/artifacts).
    cached = state_dir_for(interp) / "cache" / "artifacts" / "0a" / "1b" / "2c"
    cached.mkdir(parents=True)
    shutil.copy2(wheel, cached / wheel.name)
    launcher = make_launcher(interp)
    plugins = plugin_names(
        run_launcher(interp, launcher, ["self", "show", "plugins"], cwd=tmp_path)
    )
    assert "fake-plugin" in plugins

    dry = isolate(interp, launcher, tmp_path, "--dry-run")
    result = isolate(interp, launcher, tmp_path)

    assert (
        f"install fake-plugin 1.0 (it has no RECORD) from Poetry's cache: {cached / wheel.name}"
        in dry.stdout
    ), describe(dry)
    assert result.returncode == 0, describe(result)
    after = plugin_names(
        run_launcher(interp, launcher, ["self", "show", "plugins"], cwd=tmp_path)
    )
    assert after == plugins
    copied = venv_of(interp) / "lib" / f"python{interp.python_minor}" / "site-packages"
    assert (copied / "fake_plugin-1.0.dist-info" / "RECORD").is_file()


def test_module_run_without_a_launcher_is_refused(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    # The clone's bin/poetry names the template's interpreter, not this one.
    result = run_poetry(system_poetry, ISOLATE, cwd=tmp_path, extra_env=OFFLINE)

    assert_refused(result, "no `poetry` launcher of this Poetry was found")
    assert not venv_of(system_poetry).exists()


def test_symlinked_launcher_is_replaced_and_restored_as_a_symlink(
    system_poetry: Interpreter, tmp_path: Path
) -> None:
    interp = system_poetry
    script = make_launcher(interp)
    original = script.read_bytes()
    link = tmp_path / "bin" / "poetry"
    link.parent.mkdir()
    link.symlink_to(script)

    result = isolate(interp, link, tmp_path)

    assert result.returncode == 0, describe(result)
    assert not link.is_symlink()
    assert shebang_python(link) == str(venv_of(interp) / "bin" / "python")
    assert script.read_bytes() == original  # the file it pointed to is left alone
    assert_runs(interp, link, tmp_path)
    undone = run_launcher(interp, link, [*ISOLATE, "--undo"], cwd=tmp_path)
    assert undone.returncode == 0, describe(undone)
    assert link.is_symlink()
    assert link.readlink() == script
