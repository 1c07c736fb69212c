from __future__ import annotations

# Developer entry point (standard library only, Python >= 3.9):
#
#   python3 scripts/dev.py test [--fail-fast] [--recreate] [--no-matrix] [-- PYTEST ARGS...]
#   python3 scripts/dev.py demo
#   python3 scripts/dev.py bench [-- BENCH ARGS...]
#
# `test` makes (or reuses) the dev venv .venv-dev, then runs ruff, mypy, the
# whole pytest suite on Poetry 2.5.1, and the smoke subset on every other
# Poetry/Python of the matrix (not when pytest arguments are given); `demo`
# runs `poetry env-audit` on a fixture project in a throwaway system-like
# interpreter; `bench` runs benchmarks/run.py.  .ci/run calls `test`.
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.interpreters import Interpreter

REPO = Path(__file__).resolve().parents[1]
DEV_VENV = REPO / ".venv-dev"
PIP_REQUIREMENTS = REPO / "requirements" / "pip.txt"
DEV_REQUIREMENTS = REPO / "requirements" / "dev.txt"
STAMP = DEV_VENV / ".dev-stamp"
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


#: The full suite runs on this Poetry and Python; the matrix below runs the
#: smoke subset (-m smoke) on the oldest and newest supported Pythons.
FULL = ("2.5.1", "3.11")
MATRIX = (("1.8.5", "3.9"), ("2.0.1", "3.13"), ("2.2.1", "3.9"), ("2.5.1", "3.13"))
POETRY_ENV = "POETRY_ENV_AUDIT_TEST_POETRY"
PYTHON_ENV = "POETRY_ENV_AUDIT_TEST_PYTHON"

Step = tuple[str, list[str], dict[str, str]]


def python_available(minor: str) -> bool:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    return any(root.glob(f"{minor}.*/bin/python{minor}")) or bool(
        shutil.which(f"python{minor}")
    )


def test_steps(python: Path, pytest_args: Sequence[str], *, matrix: bool) -> list[Step]:
    ruff = str(venv_bin("ruff"))
    full = {POETRY_ENV: FULL[0], PYTHON_ENV: FULL[1]}
    steps: list[Step] = [
        ("ruff-check", [ruff, "check", "."], {}),
        ("ruff-format", [ruff, "format", "--check", *FORMAT_CHECK_PATHS], {}),
        ("mypy", [str(venv_bin("mypy"))], {}),
        ("pytest", [str(python), "-m", "pytest", *pytest_args], full),
    ]
    if not matrix:
        return steps
    for poetry, minor in MATRIX:
        name = f"pytest-smoke poetry {poetry} python {minor}"
        if not python_available(minor):
            print(f"dev.py: no Python {minor} here: {name} skipped")
            continue
        command = [
            str(python),
            "-m",
            "pytest",
            "tests/integration",
            "-m",
            "smoke",
            "-q",
        ]
        steps.append((name, command, {POETRY_ENV: poetry, PYTHON_ENV: minor}))
    return steps


def run_step(name: str, command: list[str], env: dict[str, str]) -> str:
    """Run one step; returns "ok" or a short failure note."""
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"\n==> {name}: {shown} {' '.join(command)}", flush=True)
    code = subprocess.run(command, cwd=REPO, env={**os.environ, **env}).returncode
    if name.startswith("pytest") and code == 5:
        print("dev.py: pytest collected no tests: that counts as a failure.")
        return "FAILED (no tests collected)"
    return "ok" if code == 0 else f"FAILED (exit {code})"


def command_test(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    python = ensure_dev_venv(recreate=args.recreate)
    results: list[tuple[str, str]] = []
    matrix = not pytest_args and not args.no_matrix
    for name, command, env in test_steps(python, pytest_args, matrix=matrix):
        status = run_step(name, command, env)
        results.append((name, status))
        if status != "ok" and args.fail_fast:
            break
    summary = ", ".join(f"{name} {status}" for name, status in results)
    print(f"\ndev.py test: {summary}")
    return 0 if all(status == "ok" for _, status in results) else 1


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
        "--no-matrix",
        action="store_true",
        help="skip the smoke runs on the other Poetry and Python versions",
    )
    commands.add_parser(
        "demo",
        help="run `poetry env-audit` on fixtures/downgrade-breaks in a throwaway Python",
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
    if passthrough:
        raise SystemExit("dev.py: only `test` and `bench` take arguments after --")
    return command_demo(args)


if __name__ == "__main__":
    raise SystemExit(main())
