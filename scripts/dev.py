from __future__ import annotations

# Developer entry point (standard library only, Python >= 3.9):
#
#   python3 scripts/dev.py test [--fail-fast] [--recreate] [--no-matrix] [--streams 1|2]
#                               [-- PYTEST ARGS...]
#   python3 scripts/dev.py demo
#   python3 scripts/dev.py bench [-- BENCH ARGS...]
#
# `test` makes (or reuses) the dev venv .venv-dev, then runs ruff, mypy, the
# whole pytest suite on Poetry 2.5.1 under coverage (the branch coverage of
# src/ printed, and checked against its floor), and a subset on every other
# Poetry/Python of the matrix (not when pytest arguments are given; the Debian
# legs run beside the host steps unless --streams 1); `demo`
# runs `poetry env-audit` on a fixture project in a throwaway system-like
# interpreter; `bench` runs benchmarks/run.py.  .ci/run calls `test`.
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.interpreters import Interpreter

REPO = Path(__file__).resolve().parents[1]
DEV_VENV = REPO / ".venv-dev"
PIP_REQUIREMENTS = REPO / "requirements" / "pip.txt"
DEV_REQUIREMENTS = REPO / "requirements" / "dev.txt"
STAMP = DEV_VENV / ".dev-stamp"
DIST_DIR = REPO / "dist"
CONSTRAINTS_DIR = REPO / "requirements" / "constraints"
KEEP_ENV = "POETRY_ENV_AUDIT_TEST_KEEP"
# Bump to force every .venv-dev to be rebuilt.
DEV_VENV_FORMAT = "1"
# The whole repository: src/ was ruff-formatted when this step was added.
FORMAT_CHECK_PATHS = ["."]
DEMO_POETRY = "2.5.1"
DEMO_FIXTURE = "downgrade-breaks"


# --- the dev venv --------------------------------------------------------------


def base_interpreter() -> str:
    """The interpreter running this script, or its base when that is a venv
    (a venv cannot make .venv-dev from inside .venv-dev)."""
    if sys.prefix == sys.base_prefix:
        return sys.executable
    return str(getattr(sys, "_base_executable", sys.executable))


def dev_venv_key() -> str:
    digest = hashlib.sha256(DEV_VENV_FORMAT.encode())
    for path in (PIP_REQUIREMENTS, DEV_REQUIREMENTS, REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def venv_bin(name: str) -> Path:
    return DEV_VENV / "bin" / name


def ensure_dev_venv(*, recreate: bool) -> Path:
    """.venv-dev with requirements/dev.txt and the project (editable); rebuilt
    when the requirements, pyproject.toml or the Python version change."""
    key = dev_venv_key()
    python = venv_bin("python")
    fresh = STAMP.is_file() and STAMP.read_text().strip() == key
    if fresh and python.exists() and not recreate:
        return python
    print(f"dev.py: building {DEV_VENV.name} with {base_interpreter()}", flush=True)
    shutil.rmtree(DEV_VENV, ignore_errors=True)
    check([base_interpreter(), "-m", "venv", str(DEV_VENV)])
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    check([*pip, "install", "--quiet", "-r", str(PIP_REQUIREMENTS)])
    check([*pip, "install", "--quiet", "-r", str(DEV_REQUIREMENTS)])
    editable = ["install", "--quiet", "--no-deps", "--no-build-isolation", "-e"]
    check([*pip, *editable, str(REPO)])
    STAMP.write_text(key + "\n")
    return python


def check(command: Sequence[str]) -> None:
    result = subprocess.run(list(command), cwd=REPO)
    if result.returncode != 0:
        joined = " ".join(command)
        raise SystemExit(f"dev.py: failed ({result.returncode}): {joined}")


# --- test ------------------------------------------------------------------------


#: The full suite runs on this Poetry and Python (the host's pyenv 3.11);
#: the matrix below runs a subset on the oldest and newest supported Pythons,
#: and the full suite again on Debian's python3.14.
FULL = ("2.5.1", "3.11")
SMOKE = "smoke"
#: Subsets of a leg: the pytest arguments each runs.  The 60 interrupted-swap
#: moments (marker ``moments``, about 10 s each) run on the full host leg and
#: on the oldest Poetry (whose swaps go another way); the Debian full leg runs
#: their smoke sample only.
SUBSETS: dict[str, list[str]] = {
    "full": [],
    SMOKE: ["tests/integration", "-m", SMOKE, "-q"],
    "smoke-moments": ["tests/integration", "-m", "smoke or moments", "-q"],
    "full-sampled": ["-m", "not moments", "-q"],
}
MATRIX: tuple[tuple[str, str, str], ...] = (
    ("1.8.5", "3.9", "smoke-moments"),
    ("2.0.1", "3.13", SMOKE),
    ("2.2.1", "3.9", SMOKE),
    ("2.5.1", "3.13", SMOKE),
    ("2.5.1", "3.14", "full-sampled"),
    ("2.5.1", "3.15", SMOKE),
)
#: Pythons that come from Debian unstable's packages, inside the cached
#: debootstrap root (harness.chroot): the host's C library is too old.
DEBIAN_MINORS = ("3.14", "3.15")
POETRY_ENV = "POETRY_ENV_AUDIT_TEST_POETRY"
PYTHON_ENV = "POETRY_ENV_AUDIT_TEST_PYTHON"
#: Set inside the Debian legs: the Debian system-Python tests must run there.
DEBIAN_ENV = "POETRY_ENV_AUDIT_TEST_DEBIAN"

#: (name, command, environment) of a host step, or (name, leg) of a step in
#: the Debian root.
Step = tuple[str, list[str], dict[str, str]]


def pyenv_python(minor: str) -> Path | None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{minor}.*/bin/python{minor}"))
    if found:
        return found[-1]
    which = shutil.which(f"python{minor}")
    return Path(which) if which else None


def lint_steps() -> list[Step]:
    ruff = str(venv_bin("ruff"))
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    return [
        ("ruff-check", [ruff, "check", "."], {}),
        ("ruff-format", [ruff, "format", "--check", *FORMAT_CHECK_PATHS], {}),
        ("mypy", [str(venv_bin("mypy"))], {}),
        ("actionlint", [str(venv_bin("actionlint")), *workflows], {}),
        (
            "zizmor",
            [
                str(venv_bin("zizmor")),
                "--offline",
                "--no-progress",
                "--persona=pedantic",
                *workflows,
            ],
            {},
        ),
        # action.yml: actionlint on its steps as a workflow, zizmor on the file.
        (
            "action",
            [str(venv_bin("python")), str(REPO / "scripts" / "check_action.py")],
            {},
        ),
        (
            "build",
            [str(venv_bin("python")), str(REPO / "scripts" / "dev.py"), "dist"],
            {},
        ),
    ]


def leg_step(python: Path, poetry: str, where: str, subset: str) -> Step:
    """One matrix leg: *where* is a Python minor (pyenv, or Debian's inside
    the cached root for 3.14 and 3.15) or the path of an interpreter."""
    what = "pytest" if subset == "full" else f"pytest-{subset}"
    name = f"{what} poetry {poetry} python {where}"
    args = list(SUBSETS[subset])
    pins = CONSTRAINTS_DIR / f"poetry-{poetry}-py{where}.txt"
    if "/" not in where and not pins.is_file():
        why = f"no {pins.relative_to(REPO)}: run python3 scripts/dev.py pin"
        return (name, [], {"missing": why})
    if "/" in where:
        base: Path | None = Path(where)
    elif where in DEBIAN_MINORS and pyenv_python(where) is None:
        leg = [str(python), str(REPO / "scripts" / "dev.py"), "debian-leg"]
        return (name, [*leg, "--python", where, "--poetry", poetry, "--", *args], {})
    else:
        base = pyenv_python(where)
    if base is None or not base.exists():
        # A matrix that shrinks silently is no matrix: this leg fails.
        return (name, [], {"missing": f"no Python {where} on this machine"})
    command = [str(python), "-m", "pytest", *args]
    return (name, command, {POETRY_ENV: poetry, PYTHON_ENV: str(base)})


def test_steps(python: Path, pytest_args: Sequence[str], *, matrix: bool) -> list[Step]:
    full = {POETRY_ENV: FULL[0], PYTHON_ENV: FULL[1]}
    steps = lint_steps()
    coverage_run = [str(python), "-m", "coverage", "run", "-m", "pytest"]
    steps.append(("pytest", [*coverage_run, *pytest_args], full))
    if not pytest_args:
        # Branch coverage of src/, printed; under the floor in pyproject.toml fails.
        steps.append(("coverage", [str(python), "-m", "coverage", "report"], {}))
    if not matrix:
        return steps
    steps += [leg_step(python, *leg) for leg in MATRIX]
    return steps


def run_steps(
    steps: list[Step], *, fail_fast: bool, what: str, streams: int = 1
) -> int:
    """Run *steps*; with ``streams=2`` the Debian legs (chroot, their own
    interpreter) run beside the host steps, their output kept in a log file
    each and printed, whole and in order, once the host steps are done."""
    debian = [s for s in steps if streams > 1 and is_debian_step(s)]
    host = [s for s in steps if s not in debian]
    results: dict[str, str] = {}
    logs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="dev-py-logs-") as scratch:

        def beside() -> None:
            for index, (name, command, env) in enumerate(debian):
                logs[name] = Path(scratch) / f"{index}.log"
                with logs[name].open("w") as log:
                    results[name] = run_step(name, command, env, log=log)

        thread = threading.Thread(target=beside, daemon=True)
        if debian:
            names = ", ".join(name for name, _, _ in debian)
            print(f"dev.py: running beside the host steps: {names}", flush=True)
            thread.start()
        for name, command, env in host:
            results[name] = run_step(name, command, env)
            if not results[name].startswith("ok") and fail_fast:
                break
        if debian:
            thread.join()
        for name, path in logs.items():
            print(f"\n==> output of {name}", flush=True)
            sys.stdout.write(path.read_text(errors="replace"))
            sys.stdout.flush()
    ordered = [(name, results[name]) for name, _, _ in steps if name in results]
    summary = ", ".join(f"{name} {status}" for name, status in ordered)
    print(f"\ndev.py {what}: {summary}")
    passed = all(status.startswith("ok") for _, status in ordered)
    return 0 if passed and len(ordered) == len(steps) else 1


def is_debian_step(step: Step) -> bool:
    return "debian-leg" in step[1]


def run_step(
    name: str, command: list[str], env: dict[str, str], *, log: IO[str] | None = None
) -> str:
    """Run one step (its output to *log* when given); returns "ok" or a
    short failure note."""
    out = log if log is not None else sys.stdout
    if not command:
        print(f"\n==> {name}: FAILED: {env['missing']}", file=out, flush=True)
        return f"FAILED ({env['missing']})"
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"\n==> {name}: {shown} {' '.join(command)}", file=out, flush=True)
    started = time.monotonic()
    code = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        stdin=subprocess.DEVNULL,
    ).returncode
    took = f"{time.monotonic() - started:.0f} s"
    if log is not None:
        print(f"dev.py: {name} finished ({took})", flush=True)
    if name.startswith("pytest") and code == 5:
        print("dev.py: pytest collected no tests: that counts as a failure.", file=out)
        return f"FAILED (no tests collected, {took})"
    return f"ok ({took})" if code == 0 else f"FAILED (exit {code}, {took})"


def command_test(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    python = ensure_dev_venv(recreate=args.recreate)
    matrix = not pytest_args and not args.no_matrix
    steps = test_steps(python, pytest_args, matrix=matrix)
    return run_steps(steps, fail_fast=args.fail_fast, what="test", streams=args.streams)


def command_lint(args: argparse.Namespace) -> int:
    ensure_dev_venv(recreate=False)
    return run_steps(lint_steps(), fail_fast=False, what="lint")


def command_leg(args: argparse.Namespace) -> int:
    """One leg of the matrix (the GitHub workflow runs one per job)."""
    python = ensure_dev_venv(recreate=False)
    step = leg_step(python, args.poetry, args.python, args.subset)
    return run_steps([step], fail_fast=False, what="leg")


# --- the Debian legs ----------------------------------------------------------------


def chroot_dev_venv_key(minor: str, root_key: str) -> str:
    digest = hashlib.sha256(f"{DEV_VENV_FORMAT}:{minor}:{root_key}".encode())
    for path in (PIP_REQUIREMENTS, DEV_REQUIREMENTS, REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def command_debian_leg(
    args: argparse.Namespace,
    pytest_args: Sequence[str],
    *,
    argv: Sequence[str] = ("-m", "pytest", "-p", "no:cacheprovider"),
) -> int:
    """pytest (or the dev venv's python with *argv*) inside a throwaway
    overlay of the cached Debian unstable root, with Debian's python3.X as
    the base Python and a dev venv made from it (kept in the harness cache,
    one per requirements)."""
    harness_path()
    from harness import chroot
    from harness.interpreters import exclusive
    from harness.wheels import CACHE_ENV
    from harness.wheels import default_cache_root

    minor = args.python
    cache = default_cache_root()
    try:
        root = chroot.ensure_root(cache)
    except (chroot.ChrootError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"dev.py: FAILED: cannot build the Debian root for Python {minor}: {first}"
        )
        return 1
    debian_python = f"/usr/bin/python{minor}"
    if not (root / debian_python.lstrip("/")).exists():
        print(f"dev.py: FAILED: the Debian root {root} has no {debian_python}")
        return 1
    # The base of the throwaway interpreters: Debian's build of CPython
    # copied into a prefix of its own (what the "system" kind is everywhere),
    # so tests that write into their base's stdlib copy or rely on their own
    # sitecustomize behave as on pyenv's; the "debian" kind
    # (test_debian_python) uses the real /usr/bin/python3.X.
    prefix = chroot.BASE_PREFIX.format(minor=minor)
    python = f"{prefix}/bin/python{minor}"
    key = chroot_dev_venv_key(minor, chroot.root_key())
    venv = cache / "chroot" / "dev-venvs" / f"py{minor}-{key}"
    scratch = Path(tempfile.mkdtemp(prefix="poetry-env-audit-debian-"))
    env = {
        "HOME": "/tmp/home",  # noqa: S108 - the root's /tmp is this run's private dir
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        CACHE_ENV: chroot.CACHE_MOUNT,
        POETRY_ENV: args.poetry,
        PYTHON_ENV: python,
        DEBIAN_ENV: "1",
        **{k: v for k, v in os.environ.items() if k in ("CI", KEEP_ENV)},
    }
    try:
        with chroot.session_root(
            root, scratch, repo=REPO, cache_root=cache, dev_venv=venv
        ) as merged:
            with exclusive(venv.with_name(venv.name + ".lock")):
                ready = ensure_chroot_dev_venv(merged, debian_python, venv, key, env)
            if not ready or not make_chroot_base(merged, debian_python, prefix, env):
                return 1
            dev_python = f"{chroot.DEV_VENV_MOUNT}/bin/python"
            command = chroot.chroot_command(
                merged, [dev_python, *argv, *pytest_args], env, cwd=chroot.REPO_MOUNT
            )
            return subprocess.run(command, check=False).returncode
    finally:
        if not chroot.mounts_under(scratch):
            shutil.rmtree(scratch, ignore_errors=True)


def ensure_chroot_dev_venv(
    merged: Path, python: str, venv: Path, key: str, env: dict[str, str]
) -> bool:
    """requirements/dev.txt and the project (editable) in a venv made from
    Debian's *python* inside the root; built once per key."""
    from harness import chroot

    stamp = venv / ".dev-stamp"
    if stamp.is_file() and stamp.read_text().strip() == key:
        return True
    print(f"dev.py: building the dev venv of {python} in the Debian root", flush=True)
    inner = chroot.DEV_VENV_MOUNT
    pip = [f"{inner}/bin/python", "-m", "pip", "--disable-pip-version-check"]
    editable = ["install", "--quiet", "--no-deps", "--no-build-isolation", "-e"]
    steps = [
        [python, "-m", "venv", "--clear", inner],
        [*pip, "install", "--quiet", "-r", f"{chroot.REPO_MOUNT}/requirements/pip.txt"],
        [*pip, "install", "--quiet", "-r", f"{chroot.REPO_MOUNT}/requirements/dev.txt"],
        [*pip, *editable, chroot.REPO_MOUNT],
    ]
    for step in steps:
        command = chroot.chroot_command(merged, step, env, cwd=chroot.REPO_MOUNT)
        if subprocess.run(command, check=False).returncode != 0:
            print(f"dev.py: FAILED: {' '.join(step)} in the Debian root")
            return False
    stamp.write_text(key + "\n")
    return True


# --- pin and drift -----------------------------------------------------------------


#: Pinned closures no leg runs Poetry on: the image `env-audit --poetry 1.8.5
#: --python 3.11` is compared with (tests/integration/test_pull_request.py).
IMAGES: tuple[tuple[str, str], ...] = (("1.8.5", "3.11"),)


def all_legs() -> list[tuple[str, str]]:
    """(Poetry, Python minor) of every leg of `test`, and of the images the
    tests build besides."""
    legs = [FULL, *((p, m) for p, m, _ in MATRIX), *IMAGES]
    return list(dict.fromkeys(legs))


def command_pin(_: argparse.Namespace) -> int:
    """Resolve every leg's Poetry closure at today's releases and write
    requirements/constraints/poetry-<version>-py<minor>.txt."""
    python = ensure_dev_venv(recreate=False)
    failed = 0
    for poetry, minor in all_legs():
        if minor in DEBIAN_MINORS:
            leg = argparse.Namespace(python=minor, poetry=poetry)
            code = command_debian_leg(leg, [], argv=["scripts/dev.py", "pin-here"])
        else:
            base = pyenv_python(minor)
            if base is None:
                print(f"dev.py pin: FAILED: no Python {minor} on this machine")
                failed += 1
                continue
            env = {**os.environ, PYTHON_ENV: str(base), POETRY_ENV: poetry}
            here = [str(python), str(REPO / "scripts" / "dev.py"), "pin-here"]
            code = subprocess.run(here, cwd=REPO, env=env, check=False).returncode
        failed += code != 0
    return 1 if failed else 0


def command_pin_here(_: argparse.Namespace) -> int:
    """One leg of `pin`: $POETRY_ENV_AUDIT_TEST_POETRY on
    $POETRY_ENV_AUDIT_TEST_PYTHON, with the running interpreter building the
    plugin wheel (for its requirements)."""
    harness_path()
    from harness.interpreters import resolve_base_python
    from harness.pins import write_constraints
    from harness.session import build_repo_wheel

    base = resolve_base_python(os.environ.get(PYTHON_ENV))
    with tempfile.TemporaryDirectory() as work:
        plugin = build_repo_wheel(Path(sys.executable), Path(work))
        if plugin.wheel is None:
            print(f"dev.py pin: {plugin.error}")
            return 1
        for poetry in os.environ.get(POETRY_ENV, FULL[0]).split(","):
            path = write_constraints(poetry, str(base), plugin)
            print(f"dev.py pin: wrote {path.relative_to(REPO)}")
    return 0


def command_drift(_: argparse.Namespace) -> int:
    """How env-audit's verdicts on the fixtures move between the committed
    constraints and today's newest releases (a report, never a failure)."""
    python = ensure_dev_venv(recreate=False)
    env = {**os.environ, PYTHON_ENV: FULL[1]}
    code = "from harness.pins import main_drift; raise SystemExit(main_drift())"
    run = [str(python), "-c", code]
    env["PYTHONPATH"] = str(REPO / "tests")
    return subprocess.run(run, cwd=REPO, env=env, check=False).returncode


def command_realworld_lock(_: argparse.Namespace) -> int:
    """Rewrite the committed locks of fixtures/realworld/ (both formats),
    locked against a local index holding exactly fixtures/realworld/pins.txt."""
    python = ensure_dev_venv(recreate=False)
    harness_path()
    from harness.realworld import regenerate
    from harness.session import Harness

    versions = ["2.5.1", "1.8.5"]
    with Harness.session(build_python=python, poetry_versions=versions) as harness:
        for path in regenerate(harness):
            print(f"dev.py realworld-lock: wrote {path.relative_to(REPO)}")
    return 0


def make_chroot_base(
    merged: Path, debian_python: str, prefix: str, env: dict[str, str]
) -> bool:
    from harness import chroot

    minor = debian_python.rsplit("python", 1)[1]
    # Debian's ensurepip refuses outside a venv: pip comes from the pip wheel
    # Debian ships for venvs (python3.X-venv).
    code = (
        "import sys; sys.path.insert(0, '/repo/tests')\n"
        "from pathlib import Path\n"
        "from harness.interpreters import make_system_python\n"
        f"make_system_python(Path('/usr'), Path({prefix!r}), minor={minor!r},"
        " wheelhouse=Path('/usr/share/python-wheels'))\n"
    )
    argv = [debian_python, "-I", "-c", code]
    command = chroot.chroot_command(merged, argv, env, cwd=chroot.REPO_MOUNT)
    if subprocess.run(command, check=False).returncode != 0:
        print(f"dev.py: FAILED: copying {debian_python} to {prefix} in the Debian root")
        return False
    return True


# --- dist ------------------------------------------------------------------------


def command_dist(args: argparse.Namespace) -> int:
    """``python -m build`` (sdist and wheel) into DIST_DIR, then ``twine check
    --strict`` of both."""
    python = str(venv_bin("python")) if DEV_VENV.exists() else sys.executable
    shutil.rmtree(DIST_DIR, ignore_errors=True)
    build = [python, "-m", "build", "--outdir", str(DIST_DIR), str(REPO)]
    if subprocess.run(build, cwd=REPO, check=False).returncode != 0:
        print("dev.py dist: python -m build failed")
        return 1
    artifacts = sorted(str(p) for p in DIST_DIR.iterdir())
    kinds = {a.rsplit(".", 1)[-1] for a in artifacts}
    if not {"whl", "gz"} <= kinds:
        print(f"dev.py dist: expected an sdist and a wheel, got {artifacts}")
        return 1
    twine = [python, "-m", "twine", "check", "--strict", *artifacts]
    return subprocess.run(twine, cwd=REPO, check=False).returncode


# --- demo ------------------------------------------------------------------------


def harness_path() -> None:
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def command_demo(_: argparse.Namespace) -> int:
    """The same Harness the tests use: a private clone of the cached
    system-like template with this checkout's plugin (built with .venv-dev,
    which has poetry-core), a local index, the fixture project."""
    python = ensure_dev_venv(recreate=False)
    harness_path()
    from harness.session import Harness

    with (
        Harness.session(build_python=python, poetry_versions=[DEMO_POETRY]) as harness,
        harness.serve(),
    ):
        if harness.plugin.wheel is None:
            print(f"dev.py demo: {harness.plugin.error}")
            return 1
        interp = harness.interpreter("system")
        projects = harness.projects(harness.work / "projects")
        return run_demo(interp, projects.locked(DEMO_FIXTURE, interp))


def run_demo(interp: Interpreter, project: Path) -> int:
    from harness.poetry import describe
    from harness.poetry import run_poetry

    configure = ["config", "virtualenvs.create", "false", "--local"]
    configured = run_poetry(interp, configure, cwd=project)
    if configured.returncode != 0:
        print(describe(configured))
        return 1
    print(f"$ cd {project}  # fixtures/{DEMO_FIXTURE}, locked: packaging 23.0")
    print(f"$ {interp.python} -m poetry env-audit")
    result = run_poetry(interp, ["env-audit"], cwd=project)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    print(f"[exit code {result.returncode}]")
    print(
        "Shown: Poetry pip-installed into a system-like Python with "
        "virtualenvs.create = false, so `poetry install` here would downgrade "
        "the packaging Poetry itself runs on (needs >= 24.2) to 23.0; "
        "env-audit should report that before anything is installed."
    )
    return 0


# --- command line -------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="scripts/dev.py",
        description="Developer tasks of poetry-env-audit (standard library only).",
        epilog="Arguments after `--` go to pytest: dev.py test -- tests/unit -x",
    )
    commands = main.add_subparsers(dest="command", required=True)
    test = commands.add_parser(
        "test", help="make/reuse .venv-dev, run ruff, mypy and pytest"
    )
    test.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failing step"
    )
    test.add_argument("--recreate", action="store_true", help="rebuild .venv-dev first")
    test.add_argument(
        "--streams",
        type=int,
        choices=(1, 2),
        default=2,
        help="2 (default): the Debian legs run beside the host steps; 1: one by one",
    )
    test.add_argument(
        "--no-matrix",
        action="store_true",
        help="skip the smoke runs on the other Poetry and Python versions",
    )
    commands.add_parser(
        "demo",
        help="run `poetry env-audit` on fixtures/downgrade-breaks in a throwaway Python",
    )
    leg = commands.add_parser(
        "debian-leg",
        help="pytest inside the cached Debian unstable root (a step of `test`)",
    )
    leg.add_argument("--python", required=True, choices=DEBIAN_MINORS)
    leg.add_argument("--poetry", default=FULL[0])
    commands.add_parser(
        "lint", help="ruff, mypy, actionlint, zizmor, build + twine check (no tests)"
    )
    one = commands.add_parser("leg", help="one leg of the test matrix")
    one.add_argument("--poetry", required=True)
    one.add_argument("--python", required=True, help="3.X or an interpreter's path")
    one.add_argument("--subset", choices=tuple(SUBSETS), default=SMOKE)
    commands.add_parser(
        "pin",
        help="resolve each leg's Poetry closure today and write requirements/constraints/",
    )
    commands.add_parser("pin-here", help="one leg of `pin` (set by `pin`)")
    commands.add_parser(
        "drift",
        help="report how env-audit verdicts move at the newest releases (never fails)",
    )
    commands.add_parser(
        "realworld-lock",
        help="re-lock fixtures/realworld/ (formats 2.1 and 2.0) against its pins",
    )
    commands.add_parser(
        "dist", help="python -m build into dist/, then twine check (a step of `test`)"
    )
    commands.add_parser(
        "bench",
        help="run benchmarks/run.py in .venv-dev (arguments after -- go to it)",
    )
    return main


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in arguments:
        cut = arguments.index("--")
        arguments, passthrough = arguments[:cut], arguments[cut + 1 :]
    args = parser().parse_args(arguments)
    if args.command == "test":
        return command_test(args, passthrough)
    if args.command == "bench":
        python = ensure_dev_venv(recreate=False)
        bench = [str(python), "-m", "benchmarks.run", *passthrough]
        env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
        return subprocess.run(bench, cwd=REPO, env=env, check=False).returncode
    if args.command == "debian-leg":
        return command_debian_leg(args, passthrough)
    if passthrough:
        raise SystemExit(
            "dev.py: only `test`, `debian-leg` and `bench` take arguments after --"
        )
    if args.command == "dist":
        return command_dist(args)
    if args.command == "lint":
        return command_lint(args)
    if args.command == "leg":
        return command_leg(args)
    if args.command == "pin":
        return command_pin(args)
    if args.command == "pin-here":
        return command_pin_here(args)
    if args.command == "drift":
        return command_drift(args)
    if args.command == "realworld-lock":
        return command_realworld_lock(args)
    return command_demo(args)


if __name__ == "__main__":
    raise SystemExit(main())
