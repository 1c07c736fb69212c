from __future__ import annotations

# The cross-process environment lock and the PEP 668 refusal, with real Poetry
# processes: concurrent installs into one shared environment, a holder killed
# with SIGKILL, a waiter that times out, --dry-run, and EXTERNALLY-MANAGED.
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.fault_hooks import HOLD
from harness.fault_hooks import SWAP
from harness.fault_hooks import SWAP_SECONDS
from harness.fault_hooks import TRACE
from harness.fault_hooks import install_faults
from harness.interpreters import python_info
from harness.poetry import describe
from harness.poetry import poetry_env
from harness.poetry import run_poetry
from harness.session import discard
from harness.session import private_clone
from harness.snapshot import check_consistency
from harness.snapshot import dist_infos
from harness.snapshot import dist_name_version
from harness.snapshot import installed_versions
from harness.snapshot import snapshot_diff
from harness.snapshot import snapshot_site_packages

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Mapping
    from collections.abc import Sequence
    from typing import IO

    from harness.interpreters import Interpreter
    from harness.session import Projects
    from harness.session import TemplateStore

LOCK_NAME = ".poetry-env-audit.lock"
HOLDER_NAME = LOCK_NAME + ".holder"
# The packages the lock-* fixtures pin (none is in Poetry's closure).
PACKAGES = ("six", "tzdata", "pytz", "pygments")
WAITING = re.compile(
    r"poetry-env-audit: Waiting for the environment lock on (?P<path>\S+):"
    r" held by process (?P<pid>\d+) \(poetry install\) since \S+\."
)
#: A waiter that arrived between the holder's lock and its holder record.
WAITING_UNNAMED = re.compile(
    r"poetry-env-audit: Waiting for the environment lock on (?P<path>\S+):"
    r" held by another process\."
)
TIMED_OUT = re.compile(
    r"^poetry-env-audit: Timed out after 1 s waiting for the environment lock"
    r" on (?P<path>\S+) \(held by process (?P<pid>\d+), poetry install,"
    r" since [^)]+\)\.",
    re.MULTILINE,
)
# Sleep inside an update (after the old files went, before the new ones come):
# long enough for anything a test does meanwhile, ended by SIGKILL.
HOLD_SECONDS = 120
# How long concurrent rounds without the lock may take in all.
NO_LOCK_ROUNDS = 10
NO_LOCK_BUDGET = 90.0
PROCESS_TIMEOUT = 300.0
_LOCKED_PACKAGE = re.compile(
    r'^\[\[package\]\]\nname = "(?P<name>[^"]+)"\nversion = "(?P<version>[^"]+)"',
    re.MULTILINE,
)


def _skip_without_plugin(interp: Interpreter, templates: TemplateStore) -> None:
    problem = templates.plugin_problem(interp.kind, interp.poetry_version)
    if problem or not interp.has_plugin:
        pytest.skip(f"plugin not installed: {problem}")


def purelib(interp: Interpreter) -> Path:
    return Path(os.path.realpath(python_info(interp.python)["purelib"]))


def lock_versions(project: Path) -> dict[str, str]:
    """``{name: version}`` of the packages in a project's poetry.lock."""
    text = (project / "poetry.lock").read_text(encoding="utf-8")
    return {m["name"]: m["version"] for m in _LOCKED_PACKAGE.finditer(text)}


def ours(versions: Mapping[str, str]) -> dict[str, str]:
    return {name: versions[name] for name in PACKAGES if name in versions}


def dist_counts(site: Sequence[Path]) -> dict[str, int]:
    counts = dict.fromkeys(PACKAGES, 0)
    for dist_info in dist_infos(site):
        name, _ = dist_name_version(dist_info)
        if name in counts:
            counts[name] += 1
    return counts


@dataclass
class Proc:
    """One Poetry process started by a test (output in files, never pipes)."""

    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    trace: Path | None = None
    ended: float | None = None
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def poll(self) -> bool:
        """True once it has ended (and records when it was first seen ended)."""
        if self.popen.poll() is None:
            return False
        if self.ended is None:
            self.ended = time.monotonic()
            for stream in self._files:
                stream.close()
        return True

    def describe(self) -> str:
        return (
            f"[{self.name}] pid {self.pid} exit code {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    def kill(self) -> None:
        """SIGKILL this process (by its own pid) if it still runs, and reap it."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.poll()

    def operations(self) -> list[tuple[float, float]]:
        """(start, end) of each operation it executed, from its trace file.

        ``time.monotonic()`` is CLOCK_MONOTONIC, one clock for every process
        of a Linux machine, so the spans of two processes compare.
        """
        if self.trace is None or not self.trace.is_file():
            return []
        rows = [json.loads(line) for line in self.trace.read_text().splitlines()]
        return [(float(r["start"]), float(r["end"])) for r in rows]


def start_poetry(
    interp: Interpreter,
    args: Sequence[str],
    *,
    cwd: Path,
    logs: Path,
    name: str,
    extra_env: Mapping[str, str] | None = None,
    go: Path | None = None,
    trace: bool = False,
) -> Proc:
    """``<python> -m poetry ARGS`` in the environment ``run_poetry`` builds.

    With *go*, the process first waits for that file to exist, then exec's
    Poetry (same pid): every process given the same *go* starts Poetry at the
    moment the test creates it.
    """
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(extra_env or {})
    trace_file = logs / f"{name}.trace" if trace else None
    if trace_file is not None:
        env[TRACE] = str(trace_file)
    argv = [str(interp.python), "-m", "poetry", *args]
    if go is not None:
        wait = 'while [ ! -e "$0" ]; do sleep 0.01; done; exec "$@"'
        argv = ["/bin/sh", "-c", wait, str(go), *argv]
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    out_stream, err_stream = out.open("wb"), err.open("wb")
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        env=poetry_env(interp, extra_env=env),
        stdin=subprocess.DEVNULL,
        stdout=out_stream,
        stderr=err_stream,
    )
    return Proc(name, popen, out, err, trace_file, _files=[out_stream, err_stream])


def wait_all(procs: Sequence[Proc], timeout: float = PROCESS_TIMEOUT) -> None:
    """Wait for every process, noting when each ended; kill them on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        ended = [p.poll() for p in procs]  # every one, each time: note its end
        if all(ended):
            return
        if time.monotonic() > deadline:
            for proc in procs:
                proc.kill()
            pytest.fail(
                "Poetry processes still running after"
                f" {timeout:g} s:\n" + "\n".join(p.describe() for p in procs)
            )
        time.sleep(0.01)


@pytest.fixture
def started() -> Iterator[list[Proc]]:
    """Processes a test starts: any still running at its end are killed (by pid)."""
    procs: list[Proc] = []
    yield procs
    for proc in procs:
        proc.kill()


def concurrent_installs(
    interp: Interpreter,
    projects: Sequence[Path],
    logs: Path,
    started: list[Proc],
    extra_env: Mapping[str, str] | None = None,
) -> list[Proc]:
    """``poetry install`` in each project, all released at the same moment."""
    go = logs / "GO"
    procs = [
        start_poetry(
            interp,
            ["install", "--no-interaction"],
            cwd=project,
            logs=logs,
            name=project.name,
            extra_env=extra_env,
            go=go,
            trace=True,
        )
        for project in projects
    ]
    started.extend(procs)
    time.sleep(0.2)  # every shell is polling by now
    go.touch()
    wait_all(procs)
    return procs


def check_serialised(procs: Sequence[Proc], lock_path: Path) -> Proc:
    """All succeeded one after another; returns the one that ran last."""
    report = "\n".join(p.describe() for p in procs)
    assert all(p.returncode == 0 for p in procs), report
    spans = {p.name: p.operations() for p in procs}
    assert all(spans.values()), f"an install executed no operation: {spans}\n{report}"
    order = sorted(procs, key=lambda p: min(s for s, _ in spans[p.name]))
    for before, after in zip(order, order[1:]):
        end = max(e for _, e in spans[before.name])
        begin = min(s for s, _ in spans[after.name])
        assert end <= begin, f"{before.name} and {after.name} overlapped\n{report}"
    ended = sorted(procs, key=lambda p: p.ended or 0.0)
    assert [p.name for p in ended] == [p.name for p in order], report
    waiting = {p.name: WAITING.findall(p.stderr) for p in procs}
    unnamed = {p.name: WAITING_UNNAMED.findall(p.stderr) for p in procs}
    assert waiting[order[0].name] == unnamed[order[0].name] == [], report
    pids = {p.pid: p for p in procs}
    for position, proc in enumerate(order[1:], start=1):
        lines = waiting[proc.name]
        assert len(lines) + len(unnamed[proc.name]) == 1, (
            f"{proc.name} did not wait once\n{report}"
        )
        if not lines:  # it waited before the holder had written its record
            assert unnamed[proc.name] == [str(lock_path)], report
            continue
        path, pid = lines[0]
        assert path == str(lock_path), report
        assert pids[int(pid)] in order[:position], report
    return order[-1]


def problems_of_ours(site: Sequence[Path]) -> list[str]:
    """``check_consistency`` limited to the lock-* fixtures' packages."""
    names = {f"duplicate {n}" for n in PACKAGES}
    return [
        problem
        for problem in check_consistency(site)
        if problem.split(":")[0] in names or problem.split("-")[0].lower() in PACKAGES
    ]


def check_consistent_as(
    site: Sequence[Path], project: Path, *, everything: bool = True
) -> None:
    """Every distribution once, RECORDs intact (of every distribution, or only
    of the fixtures' packages), versions those of *project*'s lock."""
    assert (check_consistency(site) if everything else problems_of_ours(site)) == []
    assert dist_counts(site) == dict.fromkeys(PACKAGES, 1)
    assert ours(installed_versions(site)) == ours(lock_versions(project))


def check_released(interp: Interpreter) -> None:
    """The lock file stays (a plain empty file), its holder record is gone."""
    lock_path = purelib(interp) / LOCK_NAME
    assert lock_path.is_file() and not lock_path.is_symlink()
    assert lock_path.stat().st_size == 0
    assert not (lock_path.parent / HOLDER_NAME).exists()


@pytest.mark.smoke
@pytest.mark.parametrize(
    "fixtures",
    [("lock-a", "lock-b"), ("lock-a", "lock-b", "lock-c", "lock-d")],
    ids=["two", "four"],
)
def test_concurrent_installs_run_one_after_another(
    fixtures: tuple[str, ...],
    system_poetry: Interpreter,
    templates: TemplateStore,
    projects: Projects,
    tmp_path: Path,
    started: list[Proc],
) -> None:
    _skip_without_plugin(system_poetry, templates)
    install_faults(purelib(system_poetry))
    dirs = {f: projects.locked(f, system_poetry) for f in fixtures}
    site = system_poetry.site_packages()
    logs = tmp_path / "logs"
    # The first holds the lock until the others wait: contention however the
    # machine schedules the processes.
    hold = {HOLD: f"{len(dirs)}:{logs}"}
    procs = concurrent_installs(
        system_poetry, list(dirs.values()), logs, started, extra_env=hold
    )
    last = check_serialised(procs, purelib(system_poetry) / LOCK_NAME)
    check_consistent_as(site, dirs[last.name])
    check_released(system_poetry)


def corruption(site: Sequence[Path], dirs: Sequence[Path]) -> list[str]:
    """What is wrong with the environment after concurrent installs: broken
    RECORDs, two distributions of a name, versions that are no project's lock."""
    problems = check_consistency(site)
    problems += [
        f"{name}: {count} distributions"
        for name, count in dist_counts(site).items()
        if count != 1
    ]
    versions = ours(installed_versions(site))
    if all(versions != ours(lock_versions(d)) for d in dirs):
        problems.append(f"versions {versions} are no project's lock")
    return problems


def test_without_the_lock_concurrent_installs_corrupt(
    system_poetry: Interpreter,
    templates: TemplateStore,
    poetry_version: str,
    scratch: Path,
    projects: Projects,
    tmp_path: Path,
    started: list[Proc],
) -> None:
    """The proof that the tests above can fail: the same two installs with the
    lock switched off (the plugin otherwise active) break the environment."""
    _skip_without_plugin(system_poetry, templates)
    dirs = [projects.locked(f, system_poetry) for f in ("lock-a", "lock-b")]
    template = templates.get("system", poetry_version)
    deadline = time.monotonic() + NO_LOCK_BUDGET
    outcomes: list[list[str]] = []
    codes: list[list[int | None]] = []
    interp = system_poetry
    while len(outcomes) < NO_LOCK_ROUNDS and time.monotonic() < deadline:
        if outcomes:
            interp = private_clone(template, scratch, "system")
        try:
            install_faults(purelib(interp))
            procs = concurrent_installs(
                interp,
                dirs,
                tmp_path / f"round{len(outcomes)}",
                started,
                extra_env={"POETRY_ENV_AUDIT_LOCK": "false"},
            )
            for proc in procs:  # the plugin ran, without the lock
                assert "shares the environment" in proc.stderr, proc.describe()
                assert WAITING.search(proc.stderr) is None, proc.describe()
                assert WAITING_UNNAMED.search(proc.stderr) is None, proc.describe()
            outcomes.append(corruption(interp.site_packages(), dirs))
            codes.append([p.returncode for p in procs])
        finally:
            if interp is not system_poetry:
                discard(interp)
        if outcomes[-1]:
            break
    # Measured on 2 cores, Poetry 2.5.1: corrupt in 10 of 10 rounds (both
    # processes plan before either installs: two dist-infos of each package,
    # files that match neither RECORD).
    summary = "\n".join(
        f"round {n}: exit codes {c}, {len(o)} problems: {o[:4]}"
        for n, (o, c) in enumerate(zip(outcomes, codes), 1)
    )
    print(summary)
    assert any(outcomes), f"no corruption in {len(outcomes)} rounds\n{summary}"


# ---------------------------------------------------------------- a lock holder


def install(
    interp: Interpreter, project: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = run_poetry(
        interp, ["install", "--no-interaction"], cwd=project, extra_env=extra_env
    )
    assert result.returncode == 0, describe(result)
    return result


def read_holder(lock_path: Path) -> dict[str, object] | None:
    try:
        data = json.loads((lock_path.parent / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def hold_lock(
    interp: Interpreter, projects: Projects, logs: Path, started: list[Proc]
) -> Proc:
    """A real ``poetry install`` that holds the environment lock, asleep in the
    middle of an update (lock-a installed, lock-b's tzdata removed, not yet
    replaced) for HOLD_SECONDS; the caller's ``started`` fixture kills it."""
    install_faults(purelib(interp))
    install(interp, projects.locked("lock-a", interp))
    site = purelib(interp)
    old_tzdata = (
        site / f"tzdata-{lock_versions(projects.root / 'lock-a')['tzdata']}.dist-info"
    )
    assert old_tzdata.is_dir()
    holder = start_poetry(
        interp,
        ["install", "--no-interaction"],
        cwd=projects.locked("lock-b", interp),
        logs=logs,
        name="holder",
        extra_env={
            SWAP: "tzdata",
            SWAP_SECONDS: str(HOLD_SECONDS),
            "POETRY_INSTALLER_PARALLEL": "false",
        },
    )
    started.append(holder)
    deadline = time.monotonic() + 120
    while True:
        record = read_holder(site / LOCK_NAME)
        if record and record.get("pid") == holder.pid and not old_tzdata.exists():
            return holder
        if holder.poll():
            pytest.fail(f"the holder ended early\n{holder.describe()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the holder never took the lock\n{holder.describe()}")
        time.sleep(0.05)


def test_killed_holder_does_not_block_the_next_install(
    system_poetry: Interpreter,
    templates: TemplateStore,
    projects: Projects,
    tmp_path: Path,
    started: list[Proc],
) -> None:
    _skip_without_plugin(system_poetry, templates)
    holder = hold_lock(system_poetry, projects, tmp_path / "logs", started)
    holder.kill()
    assert holder.returncode == -signal.SIGKILL
    lock_path = purelib(system_poetry) / LOCK_NAME
    stale = read_holder(lock_path)
    assert stale is not None and stale["pid"] == holder.pid  # left by the dead holder
    # A lock timeout of 0 tries once: succeeding proves the dead holder's lock
    # (and its stale sidecar) made nobody wait.
    result = install(
        system_poetry,
        projects.root / "lock-b",
        extra_env={"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "0"},
    )
    assert "Waiting for the environment lock" not in result.stderr, describe(result)
    # The holder died between removing tzdata and installing the new one.
    assert re.search(r"Installing tzdata \(", result.stdout), describe(result)
    check_consistent_as(system_poetry.site_packages(), projects.root / "lock-b")
    check_released(system_poetry)


@pytest.mark.smoke
def test_waiter_times_out_with_one_line_and_changes_nothing(
    system_poetry: Interpreter,
    templates: TemplateStore,
    projects: Projects,
    tmp_path: Path,
    started: list[Proc],
) -> None:
    """lock-timeout from the variable, then from the project's table."""
    _skip_without_plugin(system_poetry, templates)
    waiter_project = projects.locked("lock-c", system_poetry)
    holder = hold_lock(system_poetry, projects, tmp_path / "logs", started)
    site = system_poetry.site_packages()
    before = snapshot_site_packages(site)
    lock_path = purelib(system_poetry) / LOCK_NAME
    for variable in (True, False):
        env = {"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "1"} if variable else {}
        if not variable:  # not part of Poetry's content hash: the lock stays fresh
            with (waiter_project / "pyproject.toml").open("a") as stream:
                stream.write("\n[tool.poetry-env-audit]\nlock-timeout = 1\n")
        result = run_poetry(
            system_poetry,
            ["install", "--no-interaction"],
            cwd=waiter_project,
            extra_env=env,
        )
        assert result.returncode != 0, describe(result)
        found = TIMED_OUT.search(result.stderr)
        assert found is not None, describe(result)
        assert found["path"] == str(lock_path), describe(result)
        assert int(found["pid"]) == holder.pid, describe(result)
        line = result.stderr[found.start() :].splitlines()[0]
        assert line.endswith("Set POETRY_ENV_AUDIT_LOCK_TIMEOUT to wait longer.")
        assert len(TIMED_OUT.findall(result.stderr)) == 1, describe(result)
        assert "Package operations" not in result.stdout, describe(result)
        # It waited (one "Waiting" line, before the time-out), not failed at once;
        # the configured 1 s is the one in the time-out line (TIMED_OUT).
        waiting = WAITING.search(result.stderr)
        assert waiting is not None, describe(result)
        assert len(WAITING.findall(result.stderr)) == 1, describe(result)
        assert waiting.start() < found.start(), describe(result)
        assert snapshot_diff(before, snapshot_site_packages(site)) == []
    assert holder.popen.poll() is None, holder.describe()  # still holding


def test_dry_run_does_not_take_the_lock(
    system_poetry: Interpreter,
    templates: TemplateStore,
    projects: Projects,
    tmp_path: Path,
    started: list[Proc],
) -> None:
    _skip_without_plugin(system_poetry, templates)
    project = projects.locked("lock-c", system_poetry)
    holder = hold_lock(system_poetry, projects, tmp_path / "logs", started)
    site = system_poetry.site_packages()
    before = snapshot_site_packages(site)
    result = run_poetry(
        system_poetry,
        ["install", "--dry-run", "--no-interaction"],
        cwd=project,
        extra_env={"POETRY_ENV_AUDIT_LOCK_TIMEOUT": "2"},
    )
    assert result.returncode == 0, describe(result)
    assert "environment lock" not in result.stderr, describe(result)
    assert "Package operations" in result.stdout, describe(result)
    assert snapshot_diff(before, snapshot_site_packages(site)) == []
    assert holder.popen.poll() is None, holder.describe()  # still holding


# ---------------------------------------------------------------- PEP 668

MARKER_ERROR = (
    "This Python belongs to the poetry-env-audit test distribution.\n"
    "  Install into a virtual environment instead."
)
REFUSED = re.compile(
    r"^poetry-env-audit: refusing to install into (?P<path>\S+): it is externally"
    r" managed \(PEP 668\)\. (?P<marker>.*)$",
    re.MULTILINE,
)
WARNED = re.compile(
    r"^poetry-env-audit: (?P<path>\S+) is externally managed \(PEP 668\);"
    r" installing anyway as configured\. (?P<marker>.*)$",
    re.MULTILINE,
)


def stdlib_of(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_path('stdlib'))"
    out = subprocess.run(
        [str(python), "-I", "-c", code], check=True, capture_output=True, text=True
    )
    return Path(os.path.realpath(out.stdout.strip()))


def mark_externally_managed(interp: Interpreter, base_python: Path) -> Path:
    """Write an EXTERNALLY-MANAGED marker into the system clone's own stdlib dir.

    The clone's stdlib is a directory of its own (files hard-linked from the
    base): adding a file there leaves the base interpreter alone. Checked
    before writing; anything else is refused.
    """
    assert interp.kind == "system"
    stdlib = stdlib_of(interp.python)
    base = stdlib_of(base_python)
    prefix = Path(os.path.realpath(interp.prefix))
    if stdlib == base or not stdlib.is_relative_to(prefix) or base == prefix:
        pytest.fail(f"{stdlib} is not the clone's own stdlib dir (base {base})")
    marker = stdlib / "EXTERNALLY-MANAGED"
    with marker.open("x", encoding="utf-8") as stream:
        stream.write(f"[externally-managed]\nError={MARKER_ERROR}\n")
    assert not (base / "EXTERNALLY-MANAGED").exists()
    return marker


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.smoke
def test_externally_managed_interpreter_is_refused(
    system_poetry: Interpreter,
    templates: TemplateStore,
    base_python: Path,
    projects: Projects,
) -> None:
    _skip_without_plugin(system_poetry, templates)
    project = projects.locked("lock-a", system_poetry)
    mark_externally_managed(system_poetry, base_python)
    site = system_poetry.site_packages()
    before = snapshot_site_packages(site)
    result = run_poetry(system_poetry, ["install", "--no-interaction"], cwd=project)
    assert result.returncode != 0, describe(result)
    found = REFUSED.search(result.stderr)
    assert found is not None, describe(result)
    assert found["marker"] == one_line(MARKER_ERROR), describe(result)
    assert Path(found["path"]).resolve() == system_poetry.prefix.resolve()
    assert "POETRY_ENV_AUDIT_EXTERNALLY_MANAGED=warn" in result.stderr
    assert "Package operations" not in result.stdout, describe(result)
    assert snapshot_diff(before, snapshot_site_packages(site)) == []
    assert not (purelib(system_poetry) / LOCK_NAME).exists()


@pytest.mark.parametrize(
    ("setting", "args", "warned", "changed"),
    [
        pytest.param("warn", [], True, True, id="warn"),
        pytest.param("off", [], False, True, id="off"),
        pytest.param(
            None,
            ["--dry-run"],
            True,
            False,
            id="block-dry-run",
        ),
    ],
)
def test_externally_managed_opt_out(
    setting: str | None,
    args: list[str],
    warned: bool,
    changed: bool,
    system_poetry: Interpreter,
    templates: TemplateStore,
    base_python: Path,
    projects: Projects,
) -> None:
    _skip_without_plugin(system_poetry, templates)
    project = projects.locked("lock-a", system_poetry)
    mark_externally_managed(system_poetry, base_python)
    site = system_poetry.site_packages()
    before = snapshot_site_packages(site)
    env = {} if setting is None else {"POETRY_ENV_AUDIT_EXTERNALLY_MANAGED": setting}
    result = run_poetry(
        system_poetry,
        ["install", "--no-interaction", *args],
        cwd=project,
        extra_env=env,
    )
    assert result.returncode == 0, describe(result)
    assert REFUSED.search(result.stderr) is None, describe(result)
    found = WARNED.search(result.stderr)
    assert (found is not None) == warned, describe(result)
    if found is not None:
        assert found["marker"] == one_line(MARKER_ERROR), describe(result)
    if changed:
        check_consistent_as(site, project)
        check_released(system_poetry)
    else:
        assert snapshot_diff(before, snapshot_site_packages(site)) == []


def test_venv_made_from_a_marked_interpreter_is_not_refused(
    system_poetry: Interpreter,
    templates: TemplateStore,
    base_python: Path,
    projects: Projects,
) -> None:
    """PEP 668 applies outside virtual environments only: a project venv made
    from the marked interpreter installs (and, sharing nothing with Poetry,
    gets no lock file: nothing is written where nothing is shared)."""
    _skip_without_plugin(system_poetry, templates)
    project = projects.locked("lock-a", system_poetry)
    mark_externally_managed(system_poetry, base_python)
    site = system_poetry.site_packages()
    before = snapshot_site_packages(site)
    result = install(
        system_poetry,
        project,
        extra_env={
            "POETRY_VIRTUALENVS_CREATE": "true",
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true",
            "POETRY_VIRTUALENVS_PREFER_ACTIVE_PYTHON": "false",
        },
    )
    assert "PEP 668" not in result.stderr, describe(result)
    venv_python = project / ".venv" / "bin" / "python"
    info = python_info(venv_python)
    assert Path(info["base_prefix"]).resolve() == system_poetry.prefix.resolve()
    assert Path(info["prefix"]).resolve() == (project / ".venv").resolve()
    venv_site = [Path(info["purelib"])]
    # virtualenv seeds pip without the byte code its RECORD lists: ours only
    check_consistent_as(venv_site, project, everything=False)
    venv_lock = Path(os.path.realpath(info["purelib"])) / LOCK_NAME
    assert not venv_lock.exists() and not (venv_lock.parent / HOLDER_NAME).exists()
    assert snapshot_diff(before, snapshot_site_packages(site)) == []
