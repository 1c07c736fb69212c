from __future__ import annotations

# The install guard in real Poetry: installs that would break Poetry are
# refused before a file changes, in-place swaps of Poetry's packages are
# serialised (and that closes a real race, reproduced by fault injection), an
# isolated Poetry sees no difference.
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Callable
from typing import cast

import pytest

from harness.debian import DEBIAN_ENV
from harness.fault_hooks import SWAP
from harness.fault_hooks import SWAP_SECONDS
from harness.fault_hooks import TRACE
from harness.fault_hooks import install_faults
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import sync_args
from harness.session import discard
from harness.session import private_clone
from harness.snapshot import check_consistency
from harness.snapshot import installed_versions
from harness.snapshot import snapshot_diff
from harness.snapshot import snapshot_site_packages

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind
    from harness.session import Projects
    from harness.session import TemplateStore

# Builds reach pyproject_hooks' _in_process.py about 3.5 s into the install on
# an idle 2-core machine (6 s under load): the window must outlast that.
RACE_WINDOW = "8"
BREAKING = "23.0"  # the packaging version downgrade-breaks pins


@pytest.fixture(params=["system_poetry", "venv_poetry"], ids=["system", "venv"])
def shared_poetry(request: pytest.FixtureRequest, poetry_version: str) -> Interpreter:
    """Poetry that installs into its own environment: system-like or an active venv."""
    return cast("Interpreter", request.getfixturevalue(str(request.param)))


# ------------------------------------------------------------------ helpers


def site(interp: Interpreter) -> list[Path]:
    return interp.site_packages()


def project_files(project: Path) -> dict[str, bytes]:
    return {
        name: (project / name).read_bytes()
        for name in ("pyproject.toml", "poetry.lock")
        if (project / name).exists()
    }


def poetry_requirement(interp: Interpreter, name: str) -> str:
    """The specifier Poetry's metadata puts on *name*, as the plugin prints it
    (``>=24.2``), read from the installed ``poetry`` dist-info."""
    for directory in site(interp):
        for dist_info in directory.glob("poetry-*.dist-info"):
            metadata = (dist_info / "METADATA").read_text(encoding="utf-8")
            match = re.search(
                rf"^Requires-Dist: {re.escape(name)}\s*\(?([<>=!~][^);\s]*)\)?",
                metadata,
                re.MULTILINE | re.IGNORECASE,
            )
            if match:
                return match.group(1)
    raise AssertionError(f"poetry's METADATA has no requirement on {name}")


def venv_remedy(interp: Interpreter) -> str:
    """The kind's "stop installing into Poetry's environment" command."""
    if interp.kind == "system":
        return "poetry config virtualenvs.create true --local"
    return "env -u VIRTUAL_ENV poetry install"


def assert_poetry_runs(interp: Interpreter, cwd: Path) -> None:
    result = run_poetry(interp, ["--version"], cwd=cwd)
    assert result.returncode == 0, describe(result)
    assert f"version {interp.poetry_version}" in result.stdout, describe(result)


def assert_refused(
    result: subprocess.CompletedProcess[str], interp: Interpreter
) -> None:
    """Exit code 1 and the refusal with its ways out, kind-specific command included."""
    why = describe(result)
    assert result.returncode == 1, why
    assert "poetry-env-audit: refusing to run this install" in result.stderr, why
    assert f"it would break Poetry {interp.poetry_version}" in result.stderr, why
    commands = re.findall(r"^ {6}(\S.*)$", result.stderr.split("Ways out:")[-1], re.M)
    assert venv_remedy(interp) in commands, why
    assert any(
        c.startswith(f'pipx install "poetry=={interp.poetry_version}"')
        for c in commands
    ), why
    assert "Nothing was installed, removed or written." in result.stderr, why


def assert_names_the_downgrade(
    result: subprocess.CompletedProcess[str], interp: Interpreter, current: str
) -> None:
    """The refusal names packaging, both versions and Poetry's own requirement."""
    spec = poetry_requirement(interp, "packaging")
    line = f"  packaging {current} -> {BREAKING} (downgrade): "
    found = [ln for ln in result.stderr.splitlines() if ln.startswith(line)]
    assert len(found) == 1, describe(result)
    assert f"poetry {interp.poetry_version} requires packaging{spec}" in found[0], (
        describe(result)
    )


@dataclass(frozen=True)
class Op:
    name: str
    job: str
    start: float
    end: float
    #: "builtin" or "pip" when the operation removed files, else None.
    uninstaller: str | None = None


def read_trace(path: Path) -> list[Op]:
    """The operations the trace hook recorded (``name`` normalised)."""
    ops = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        name = re.sub(r"[-_.]+", "-", str(data["name"])).lower()
        start, end = float(data["start"]), float(data["end"])
        ops.append(Op(name, str(data["job"]), start, end, data.get("uninstaller")))
    return ops


def assert_serialised(ops: list[Op], serial: set[str]) -> None:
    """Every op of *serial* starts after every other op ended; they never overlap."""
    last = sorted((o for o in ops if o.name in serial), key=lambda o: o.start)
    first = [o for o in ops if o.name not in serial]
    assert {o.name for o in last} == serial, ops
    assert first, ops
    ended = max(o.end for o in first)
    for op in last:
        assert op.start >= ended, f"{op} started before every other op ended: {ops}"
    for before, after in zip(last, last[1:]):
        assert after.start >= before.end, f"{before} and {after} overlap"


# ------------------------------------------------------------------ refusals


@dataclass(frozen=True)
class Scenario:
    """A command that would downgrade packaging below Poetry's requirement."""

    fixture: str
    args: Callable[[Interpreter], list[str]]
    prepare: Callable[[Path], None] | None = None
    # Whether the refusal lists the packaging downgrade.
    names_downgrade: bool = True


def _narrow_packaging(project: Path) -> None:
    # The lock holds the newest packaging (Poetry's own); below 24 the solver
    # has one choice left: 23.0.
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert 'packaging = ">=23.0"' in text
    pyproject.write_text(text.replace('">=23.0"', '">=23.0,<24"'), encoding="utf-8")


SCENARIOS = {
    "install": Scenario("downgrade-breaks", lambda i: ["install"]),
    "sync": Scenario("downgrade-breaks", sync_args),
    "add": Scenario("sync-removes", lambda i: ["add", f"packaging=={BREAKING}"]),
    "update": Scenario("guard-update", lambda i: ["update"], _narrow_packaging),
}


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param("install", marks=pytest.mark.smoke),
        "sync",
        "add",
        "update",
    ],
)
def test_breaking_lock_is_refused_and_nothing_changes(
    shared_poetry: Interpreter, projects: Projects, scenario: str
) -> None:
    case = SCENARIOS[scenario]
    interp = shared_poetry
    project = projects.locked(case.fixture, interp)
    if case.prepare is not None:
        case.prepare(project)
    current = installed_versions(site(interp))["packaging"]
    assert current != BREAKING
    before = snapshot_site_packages(site(interp))
    files = project_files(project)

    result = run_poetry(interp, case.args(interp), cwd=project)

    assert_refused(result, interp)
    if case.names_downgrade:
        assert_names_the_downgrade(result, interp, current)
    assert snapshot_diff(before, snapshot_site_packages(site(interp))) == []
    assert project_files(project) == files
    assert_poetry_runs(interp, project)


def test_sync_refusal_names_the_breaking_downgrade(
    system_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    current = installed_versions(site(system_poetry))["packaging"]
    result = run_poetry(system_poetry, sync_args(system_poetry), cwd=project)
    assert_refused(result, system_poetry)
    assert_names_the_downgrade(result, system_poetry, current)
    assert "Install without synchronising" not in result.stderr, describe(result)


def test_sync_that_would_uninstall_poetry_is_refused(
    shared_poetry: Interpreter, projects: Projects
) -> None:
    interp = shared_poetry
    project = projects.locked("sync-removes", interp)
    before = snapshot_site_packages(site(interp))
    versions = installed_versions(site(interp))

    result = run_poetry(interp, sync_args(interp), cwd=project)

    assert_refused(result, interp)
    removals = re.findall(r"^  (\S+) .*\(remove\): ", result.stderr, re.M)
    assert "poetry" in removals, describe(result)
    assert "poetry-core" in removals, describe(result)
    assert snapshot_diff(before, snapshot_site_packages(site(interp))) == []
    assert installed_versions(site(interp)) == versions
    assert_poetry_runs(interp, project)


def test_refusal_shows_versions_not_file_paths(
    system_poetry: Interpreter, projects: Projects
) -> None:
    project = projects.locked("sync-removes", system_poetry)
    result = run_poetry(system_poetry, sync_args(system_poetry), cwd=project)
    assert_refused(result, system_poetry)
    assert "  poetry-env-audit 0.1.0 (remove): " in result.stderr, describe(result)


def test_remove_of_a_package_poetry_needs_is_refused(
    shared_poetry: Interpreter, projects: Projects
) -> None:
    interp = shared_poetry
    project = projects.locked("guard-remove", interp)
    shellingham = installed_versions(site(interp))["shellingham"]
    assert f'version = "{shellingham}"' in (project / "poetry.lock").read_text()
    before = snapshot_site_packages(site(interp))
    files = project_files(project)

    result = run_poetry(interp, ["remove", "shellingham"], cwd=project)

    assert_refused(result, interp)
    assert re.search(
        rf"^  shellingham {re.escape(shellingham)} \(remove\): "
        rf"poetry {re.escape(interp.poetry_version)} requires shellingham",
        result.stderr,
        re.M,
    ), describe(result)
    assert snapshot_diff(before, snapshot_site_packages(site(interp))) == []
    assert project_files(project) == files
    assert_poetry_runs(interp, project)


def test_dry_run_says_it_would_refuse_and_changes_nothing(
    shared_poetry: Interpreter, projects: Projects
) -> None:
    interp = shared_poetry
    project = projects.locked("downgrade-breaks", interp)
    current = installed_versions(site(interp))["packaging"]
    before = snapshot_site_packages(site(interp))
    files = project_files(project)

    result = run_poetry(interp, ["install", "--dry-run"], cwd=project)

    assert result.returncode == 0, describe(result)
    assert "poetry-env-audit: would refuse to run this install" in result.stderr, (
        describe(result)
    )
    assert_names_the_downgrade(result, interp, current)
    assert "Nothing was installed" not in result.stderr, describe(result)
    assert f"Downgrading packaging ({current} -> {BREAKING})" in result.stdout
    assert snapshot_diff(before, snapshot_site_packages(site(interp))) == []
    assert project_files(project) == files


@pytest.mark.parametrize(
    ("table", "env", "names"),
    [
        pytest.param('breaks = "explode"', {}, ["breaks", "explode"], id="bad-value"),
        pytest.param('brakes = "block"', {}, ["brakes"], id="unknown-key"),
        pytest.param(
            "",
            {"POETRY_ENV_AUDIT_BREAKS": "explode"},
            ["POETRY_ENV_AUDIT_BREAKS", "explode"],
            id="bad-variable",
        ),
    ],
)
def test_bad_configuration_is_one_line_naming_it(
    system_poetry: Interpreter,
    projects: Projects,
    table: str,
    env: dict[str, str],
    names: list[str],
) -> None:
    project = projects.locked("downgrade-breaks", system_poetry)
    if table:
        with (project / "pyproject.toml").open("a", encoding="utf-8") as stream:
            stream.write(f"\n[tool.poetry-env-audit]\n{table}\n")
    before = snapshot_site_packages(site(system_poetry))

    result = run_poetry(system_poetry, ["install"], cwd=project, extra_env=env)

    assert result.returncode == 1, describe(result)
    ours = [ln for ln in result.stderr.splitlines() if "env-audit" in ln]
    assert len(ours) == 1, describe(result)
    assert ours[0].startswith("poetry-env-audit: "), describe(result)
    for name in names:
        assert name in ours[0], describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert "Installing" not in result.stdout, describe(result)
    assert snapshot_diff(before, snapshot_site_packages(site(system_poetry))) == []


# ------------------------------------------------------------------ serialising


def has_builtin_uninstaller(poetry_version: str) -> bool:
    """Poetry 2.5 brought ``installer.builtin-uninstall``."""
    return tuple(int(x) for x in poetry_version.split(".")[:2]) >= (2, 5)


@pytest.mark.smoke
def test_changes_in_place_are_serialised_after_everything_else(
    shared_poetry: Interpreter, projects: Projects, tmp_path: Path, poetry_version: str
) -> None:
    interp = shared_poetry
    install_faults(site(interp)[0])
    project = projects.locked("guard-serialise", interp)
    old = installed_versions(site(interp))
    trace = tmp_path / "trace.jsonl"

    result = run_poetry(interp, ["install"], cwd=project, extra_env={TRACE: str(trace)})

    assert result.returncode == 0, describe(result)
    for name, new in (("shellingham", "1.5.3"), ("pyproject[-_]hooks", "1.1.0")):
        old_version = old[name.replace("[-_]", "-")]
        lines = re.findall(
            rf"^poetry-env-audit: serialising {name} "
            rf"{re.escape(old_version)} -> {re.escape(new)} \(.*$",
            result.stderr,
            re.M,
        )
        assert len(lines) == 1, describe(result)
    assert result.stderr.count("serialising") == 2, describe(result)
    assert "refusing" not in result.stderr, describe(result)

    ops = read_trace(trace)
    pins = {
        "shellingham": "1.5.3",
        "pyproject-hooks": "1.1.0",
        "six": "1.17.0",
        "iniconfig": "2.0.0",
        "tabulate": "0.9.0",
        "colorama": "0.4.6",
        "toolz": "0.12.1",
    }
    assert sorted(o.name for o in ops) == sorted(pins), ops
    assert_serialised(ops, {"shellingham", "pyproject-hooks"})
    # Nothing else runs during a swap: where Poetry has an in-process
    # uninstaller it replaces the pip subprocess (serial-uninstaller = builtin).
    expected = "builtin" if has_builtin_uninstaller(poetry_version) else "pip"
    swaps = {o.name: o.uninstaller for o in ops if o.job == "update"}
    assert swaps == {"shellingham": expected, "pyproject-hooks": expected}, ops
    versions = installed_versions(site(interp))
    assert {n: versions.get(n) for n in pins} == pins
    assert check_consistency(site(interp)) == []
    assert_poetry_runs(interp, project)


def test_serial_uninstaller_configured_keeps_poetrys_uninstaller(
    system_poetry: Interpreter, projects: Projects, tmp_path: Path, poetry_version: str
) -> None:
    interp = system_poetry
    install_faults(site(interp)[0])
    project = projects.locked("guard-serialise", interp)
    trace = tmp_path / "trace.jsonl"
    env = {TRACE: str(trace), "POETRY_ENV_AUDIT_SERIAL_UNINSTALLER": "configured"}

    result = run_poetry(interp, ["install"], cwd=project, extra_env=env)

    assert result.returncode == 0, describe(result)
    ops = read_trace(trace)
    assert_serialised(ops, {"shellingham", "pyproject-hooks"})
    swaps = {o.name: o.uninstaller for o in ops if o.job == "update"}
    assert swaps == {"shellingham": "pip", "pyproject-hooks": "pip"}, ops
    assert check_consistency(site(interp)) == []


# ------------------------------------------------------------------ the race


@pytest.fixture
def fresh_clone(
    templates: TemplateStore, poetry_version: str, scratch: Path
) -> Iterator[Callable[[Kind], Interpreter]]:
    """Fresh clones (own HOME, config and Poetry cache) on demand, discarded after."""
    made: list[Interpreter] = []

    def make(kind: Kind) -> Interpreter:
        interp = private_clone(templates.get(kind, poetry_version), scratch, kind)
        made.append(interp)
        return interp

    yield make
    for interp in made:
        discard(interp)


def race_install(
    interp: Interpreter, projects: Projects, tmp_path: Path, *, plugin: bool
) -> tuple[subprocess.CompletedProcess[str], list[Op]]:
    """``poetry install`` of guard-race with pyproject-hooks' files gone for
    RACE_WINDOW seconds in the middle of its swap, in a fresh clone."""
    install_faults(site(interp)[0])
    project = projects.locked("guard-race", interp)
    trace = tmp_path / "trace.jsonl"
    env = {TRACE: str(trace), SWAP: "pyproject-hooks", SWAP_SECONDS: RACE_WINDOW}
    args = ["install"] if plugin else ["--no-plugins", "install"]
    result = run_poetry(interp, args, cwd=project, extra_env=env)
    return result, read_trace(trace)


SDISTS = {"docopt", "termcolor", "pyperclip"}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            "system",
            marks=pytest.mark.xfail(
                bool(os.environ.get(DEBIAN_ENV)),
                reason=(
                    "on the Debian legs' copy of Debian's CPython the widened swap"
                    " does not meet the sdist builds (seen on 3.14, cause not yet"
                    " found); the venv kind reproduces the race there"
                ),
                strict=True,
            ),
        ),
        "venv",
    ],
)
def test_race_reproduces_without_the_plugin(
    fresh_clone: Callable[[Kind], Interpreter],
    projects: Projects,
    tmp_path: Path,
    kind: Kind,
) -> None:
    """The harness reproduces the bug the plugin exists for: sdist builds run
    pyproject_hooks/_in_process/_in_process.py while Poetry swaps it."""
    interp = fresh_clone(kind)
    result, ops = race_install(interp, projects, tmp_path, plugin=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0, describe(result)
    missing = re.findall(
        r"can't open file '[^']*pyproject_hooks/_in_process/_in_process\.py'", output
    )
    assert missing, describe(result)
    swap = next(o for o in ops if o.name == "pyproject-hooks")
    builds = [o for o in ops if o.name in SDISTS]
    assert len(builds) == len(SDISTS), ops
    assert all(b.start < swap.end and swap.start < b.end for b in builds), ops


@pytest.mark.parametrize(
    ("kind", "attempt"), [("system", 1), ("system", 2), ("venv", 1)]
)
def test_race_is_closed_by_the_plugin(
    fresh_clone: Callable[[Kind], Interpreter],
    projects: Projects,
    tmp_path: Path,
    kind: Kind,
    attempt: int,
) -> None:
    interp = fresh_clone(kind)
    result, ops = race_install(interp, projects, tmp_path, plugin=True)

    assert result.returncode == 0, f"attempt {attempt}\n{describe(result)}"
    assert re.search(
        r"^poetry-env-audit: serialising pyproject[-_]hooks \S+ -> 1\.1\.0 ",
        result.stderr,
        re.M,
    ), describe(result)
    assert_serialised(ops, {"pyproject-hooks"})
    versions = installed_versions(site(interp))
    expected = {"pyproject-hooks": "1.1.0", "docopt": "0.6.2", "termcolor": "1.1.0"}
    expected["pyperclip"] = "1.8.2"
    assert {n: versions.get(n) for n in expected} == expected
    assert check_consistency(site(interp)) == []
    assert_poetry_runs(interp, tmp_path)


# ------------------------------------------------------------------ isolated


@pytest.mark.smoke
def test_isolated_poetry_output_is_identical_with_and_without_the_plugin(
    isolated_poetry: Interpreter, projects: Projects, tmp_path: Path
) -> None:
    assert isolated_poetry.has_plugin
    project = projects.locked("downgrade-breaks", isolated_poetry)
    poetry_site = snapshot_site_packages(site(isolated_poetry))
    outputs: dict[str, list[tuple[str, str]]] = {}
    for label, prefix in (("plugin", []), ("no-plugins", ["--no-plugins"])):
        shutil.rmtree(project / ".venv", ignore_errors=True)
        state = tmp_path / f"state-{label}"
        runs = []
        for _ in range(2):  # a fresh install, then the no-op one
            result = run_poetry(
                isolated_poetry, [*prefix, "install"], cwd=project, state_dir=state
            )
            assert result.returncode == 0, describe(result)
            runs.append((result.stdout, result.stderr))
        outputs[label] = runs
    assert outputs["plugin"] == outputs["no-plugins"]
    assert "Installing packaging (23.0)" in outputs["plugin"][0][0]
    assert (
        snapshot_diff(poetry_site, snapshot_site_packages(site(isolated_poetry))) == []
    )
