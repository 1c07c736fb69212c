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
import tempfile
import time
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
DIST_DIR = REPO / "dist"
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
#: the matrix below runs the smoke subset (-m smoke) on the oldest and newest
#: supported Pythons, and the full suite again on Debian's python3.14.
FULL = ("2.5.1", "3.11")
SMOKE = "smoke"
MATRIX: tuple[tuple[str, str, str], ...] = (
    ("1.8.5", "3.9", SMOKE),
    ("2.0.1", "3.13", SMOKE),
    ("2.2.1", "3.9", SMOKE),
    ("2.5.1", "3.13", SMOKE),
    ("2.5.1", "3.14", "full"),
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
            [str(venv_bin("zizmor")), "--offline", "--no-progress", *workflows],
            {},
        ),
        (
            "build",
            [str(venv_bin("python")), str(REPO / "scripts" / "dev.py"), "dist"],
            {},
        ),
    ]


def test_steps(python: Path, pytest_args: Sequence[str], *, matrix: bool) -> list[Step]:
    full = {POETRY_ENV: FULL[0], PYTHON_ENV: FULL[1]}
    steps = lint_steps()
    steps.append(("pytest", [str(python), "-m", "pytest", *pytest_args], full))
    if not matrix:
        return steps
    for poetry, minor, subset in MATRIX:
        what = "pytest" if subset == "full" else "pytest-smoke"
        name = f"{what} poetry {poetry} python {minor}"
        args = [] if subset == "full" else ["tests/integration", "-m", SMOKE, "-q"]
        if minor in DEBIAN_MINORS:
            leg = [str(python), str(REPO / "scripts" / "dev.py"), "debian-leg"]
            leg += ["--python", minor, "--poetry", poetry, "--", *args]
            steps.append((name, leg, {}))
            continue
        base = pyenv_python(minor)
        if base is None:
            # A matrix that shrinks silently is no matrix: this leg fails.
            steps.append((name, [], {"missing": f"no Python {minor} on this machine"}))
            continue
        command = [str(python), "-m", "pytest", *args]
        steps.append((name, command, {POETRY_ENV: poetry, PYTHON_ENV: str(base)}))
    return steps


def run_step(name: str, command: list[str], env: dict[str, str]) -> str:
    """Run one step; returns "ok" or a short failure note."""
    if not command:
        print(f"\n==> {name}: FAILED: {env['missing']}", flush=True)
        return f"FAILED ({env['missing']})"
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"\n==> {name}: {shown} {' '.join(command)}", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO, env={**os.environ, **env}).returncode
    took = f"{time.monotonic() - started:.0f} s"
    if name.startswith("pytest") and code == 5:
        print("dev.py: pytest collected no tests: that counts as a failure.")
        return f"FAILED (no tests collected, {took})"
    return f"ok ({took})" if code == 0 else f"FAILED (exit {code}, {took})"


def command_test(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    python = ensure_dev_venv(recreate=args.recreate)
    results: list[tuple[str, str]] = []
    matrix = not pytest_args and not args.no_matrix
    for name, command, env in test_steps(python, pytest_args, matrix=matrix):
        status = run_step(name, command, env)
        results.append((name, status))
        if not status.startswith("ok") and args.fail_fast:
            break
    summary = ", ".join(f"{name} {status}" for name, status in results)
    print(f"\ndev.py test: {summary}")
    return 0 if all(status.startswith("ok") for _, status in results) else 1


# --- the Debian legs ----------------------------------------------------------------


def chroot_dev_venv_key(minor: str, root_key: str) -> str:
    digest = hashlib.sha256(f"{DEV_VENV_FORMAT}:{minor}:{root_key}".encode())
    for path in (PIP_REQUIREMENTS, DEV_REQUIREMENTS, REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def command_debian_leg(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    """pytest inside a throwaway overlay of the cached Debian unstable root,
    with Debian's python3.X as the base Python and a dev venv made from it
    (kept in the harness cache, one per requirements)."""
    harness_path()
    from harness import chroot
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
    python = f"/usr/bin/python{minor}"
    if not (root / python.lstrip("/")).exists():
        print(f"dev.py: FAILED: the Debian root {root} has no {python}")
        return 1
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
            if not ensure_chroot_dev_venv(merged, python, venv, key, env):
                return 1
            dev_python = f"{chroot.DEV_VENV_MOUNT}/bin/python"
            pytest = [dev_python, "-m", "pytest", "-p", "no:cacheprovider"]
            command = chroot.chroot_command(
                merged, [*pytest, *pytest_args], env, cwd=chroot.REPO_MOUNT
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
    return command_demo(args)


if __name__ == "__main__":
    raise SystemExit(main())
