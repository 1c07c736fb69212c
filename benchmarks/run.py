"""Benchmarks of poetry-env-audit: every figure a ratio measured side by side.

    python3 scripts/dev.py bench [--rounds N] [--only NAME,...] [--markdown]

Each benchmark runs its variants in the same round, alternating their order
from round to round, on private clones of the same throwaway interpreter, so
that drift of the machine hits every variant alike. It prints the median time
of each variant, the median of the per-round ratios (each round's pair ran
back to back; for the "beyond start-up" rows the ratio of the medians of the
differences) and the spread of the per-round ratios (lowest and highest).
Nothing here asserts a time: the targets are printed next to the figures.
``--instructions`` counts each command's instructions under valgrind's
callgrind instead of timing it (about 40 times slower, and the same on every
run: one round compares two versions of the plugin that the wall clock of a
busy 2-core machine cannot tell apart).

- ``activation``: ``poetry --version`` with the plugin / without it.
- ``noop-isolated`` and ``noop-shared``: ``poetry install`` when everything is
  installed already, with / without the plugin, for an isolated Poetry (project
  venv) and a shared one (``virtualenvs.create = false``).
- ``audit-300``: ``poetry env-audit`` / ``poetry install --dry-run`` on a lock
  of 300 packages (synthetic wheels served by the local index), also net of
  Poetry's own start-up (``poetry --version``), which both commands pay.
- ``sync-300``: on the same lock, ``poetry env-audit --sync`` and the guarded
  ``poetry sync --dry-run`` / ``poetry --no-plugins sync --dry-run`` in a
  shared environment (the sync would remove Poetry: every removal is judged
  and its remedy checked).
- ``webapp`` and ``webapp-sync``: the same on fixtures/realworld/webapp, a
  real-world-shaped lock of 262 packages (Django, FastAPI, Celery, boto3,
  pandas and a dev group), against Poetry's own ``--no-plugins`` dry runs.
- ``serialise``: a fresh install of 40 packages, 3 of them Poetry's own changed
  in place, in a shared environment: (a) parallel without the plugin, (b) with
  the plugin serialising Poetry's 3, (c) ``installer.parallel = false``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Callable

# ``tests/`` is on sys.path: scripts/dev.py bench runs this as
# ``python -m benchmarks.run`` with PYTHONPATH=tests.
from harness.interpreters import python_info
from harness.interpreters import resolve_base_python
from harness.poetry import describe
from harness.poetry import run_poetry
from harness.poetry import sync_args
from harness.realworld import copy_project
from harness.session import PYTHON_ENV
from harness.session import Harness
from harness.session import discard
from harness.synthetic import write_wheel
from harness.wheels import default_cache_root
from harness.wheels import ensure_wheels

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind
    from harness.session import Projects

POETRY = os.environ.get("POETRY_ENV_AUDIT_BENCH_POETRY", "2.5.1")
#: What a run's figure is: seconds, or (``--instructions``) billions of
#: instructions that valgrind's callgrind counted.
UNIT = {"name": "s"}
#: What ``--instructions`` runs each command under.
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
#: Poetry's own packages the serialise benchmark changes in place (inside
#: Poetry's specifiers, below the newest that Poetry brings).
POETRY_PINS = ["shellingham==1.5.3", "pkginfo==1.12.0", "tomlkit==0.13.2"]
SYNTHETIC = "bench"
#: Locked packages of fixtures/realworld/webapp.
WEBAPP = 262
#: Real pure-Python projects outside Poetry's closure, for a realistic fresh
#: install (their own dependencies come along); fetched once with pip download.
REAL = [
    "attrs==25.3.0",
    "babel==2.17.0",
    "blinker==1.9.0",
    "click==8.1.8",
    "colorama==0.4.6",
    "docutils==0.21.2",
    "flake8==7.2.0",
    "flask==3.1.1",
    "iniconfig==2.1.0",
    "isort==6.0.1",
    "itsdangerous==2.2.0",
    "jinja2==3.1.6",
    "mypy-extensions==1.1.0",
    "pathspec==0.12.1",
    "pluggy==1.6.0",
    "pygments==2.19.1",
    "pytest==8.4.1",
    "python-dateutil==2.9.0.post0",
    "pytz==2025.2",
    "six==1.17.0",
    "sqlparse==0.5.3",
    "tabulate==0.9.0",
    "toml==0.10.2",
    "tzdata==2025.2",
    "wcwidth==0.2.13",
    "werkzeug==3.1.3",
]


@dataclass
class Result:
    name: str
    variants: list[str]
    times: dict[str, list[float]] = field(default_factory=dict)
    target: str = ""
    note: str = ""

    def median(self, variant: str) -> float:
        return statistics.median(self.times[variant])

    def ratios(self, variant: str, base: str) -> list[float]:
        return [a / b for a, b in zip(self.times[variant], self.times[base])]


class Bench:
    def __init__(self, harness: Harness, rounds: int) -> None:
        self.harness = harness
        self.scratch = harness.scratch
        self.rounds = rounds
        self.count = 0
        #: Environment of every timed Poetry run (``--builtin-uninstall``).
        self.extra_env: dict[str, str] = {}
        #: Count instructions instead of timing (``--instructions``).
        self.instructions = False
        self._projects: Projects | None = None

    @staticmethod
    def wheel_dirs(scratch: Path) -> list[Path]:
        """The benchmarks' own wheels, next to the Harness's: Poetry pins,
        synthetic wheels, real projects (fetched once with pip download)."""
        cache = default_cache_root()
        python = str(resolve_base_python(os.environ.get(PYTHON_ENV)))
        return [
            ensure_wheels(POETRY_PINS, python=python, cache_root=cache, no_deps=True),
            write_synthetic(scratch / "synthetic"),
            ensure_wheels(REAL, python=python, cache_root=cache),
        ]

    # ------------------------------------------------------------ plumbing

    @property
    def projects(self) -> Projects:
        if self._projects is None:
            self._projects = self.harness.projects(self.scratch / "projects")
        return self._projects

    def interpreter(self, kind: Kind, *, plugin: bool) -> Interpreter:
        """A private clone, with the plugin or of the template without it."""
        return self.harness.interpreter(kind, POETRY, plugin=plugin)

    def project(
        self, name: str, dependencies: dict[str, str], *, python: str = ">=3.9"
    ) -> Path:
        self.count += 1
        return self.projects.write(f"p{self.count}-{name}", dependencies, python=python)

    def locked_copy(self, template: Path, interp: Interpreter) -> Path:
        self.count += 1
        dest = self.scratch / f"c{self.count}-{template.name}"
        shutil.copytree(template, dest, ignore=shutil.ignore_patterns(".venv"))
        self.projects.lock(interp, dest)
        return dest

    def timed(
        self,
        interp: Interpreter,
        args: Sequence[str],
        cwd: Path,
        *,
        ok: tuple[int, ...] = (0,),
    ) -> float:
        """Seconds the command takes; with ``--instructions``, the
        instructions (in billions) it executes, by valgrind's callgrind: the
        same on every run, so one round compares versions that the wall clock
        of a shared 2-core machine cannot tell apart."""
        if self.instructions and interp.root is not None:
            raise SystemExit("bench: --instructions runs on the host kinds only")
        wrapper = CALLGRIND if self.instructions else ()
        start = time.perf_counter()
        result = run_poetry(
            interp, list(args), cwd=cwd, extra_env=self.extra_env, wrapper=wrapper
        )
        elapsed = time.perf_counter() - start
        if result.returncode not in ok or "Traceback" in result.stderr:
            raise SystemExit(f"bench: {describe(result)}")
        if not self.instructions:
            return elapsed
        found = re.search(r"Collected : (\d+)", result.stderr)
        if found is None:
            raise SystemExit(f"bench: callgrind printed no count\n{describe(result)}")
        return int(found.group(1)) / 1e9

    def rounds_of(self, result: Result, runs: dict[str, Callable[[], float]]) -> Result:
        names = list(runs)
        for variant in names:
            result.times[variant] = []
        for i in range(self.rounds):
            order = names if i % 2 == 0 else list(reversed(names))
            for variant in order:
                result.times[variant].append(runs[variant]())
        return result

    # ------------------------------------------------------------ benchmarks

    def activation(self) -> Result:
        with_plugin = self.interpreter("system", plugin=True)
        without = self.interpreter("system", plugin=False)
        where = self.scratch
        return self.rounds_of(
            Result(
                "activation: poetry --version", ["plugin", "none"], target="a few ms"
            ),
            {
                "plugin": lambda: self.timed(with_plugin, ["--version"], where),
                "none": lambda: self.timed(without, ["--version"], where),
            },
        )

    def noop(self, kind: Kind) -> Result:
        project = self.project(f"noop-{kind}", {"six": "1.17.0"})
        runs: dict[str, Callable[[], float]] = {}
        for variant, plugin in (("plugin", True), ("none", False)):
            interp = self.interpreter(kind, plugin=plugin)
            copy = self.locked_copy(project, interp)
            self.timed(interp, ["install"], copy)  # now everything is installed

            def run(interp: Interpreter = interp, copy: Path = copy) -> float:
                return self.timed(interp, ["install"], copy)

            runs[variant] = run
        label = "isolated" if kind == "isolated" else "shared"
        return self.rounds_of(
            Result(f"no-op poetry install, {label}", list(runs), target="<= 1.03"), runs
        )

    def audit(self) -> Result:
        deps = {f"{SYNTHETIC}-p{i:03d}": "1.0" for i in range(0, 300, 10)}
        project = self.project("audit-300", deps)
        interp = self.interpreter("system", plugin=True)
        copy = self.locked_copy(project, interp)
        return self.rounds_of(
            Result(
                "env-audit vs install --dry-run, 300 locked packages",
                ["env-audit", "dry-run", "start-up"],
                target="well under 1",
            ),
            {
                "env-audit": lambda: self.timed(interp, ["env-audit"], copy, ok=(0, 1)),
                "dry-run": lambda: self.timed(interp, ["install", "--dry-run"], copy),
                "start-up": lambda: self.timed(interp, ["--version"], copy),
            },
        )

    def sync(self) -> Result:
        deps = {f"{SYNTHETIC}-p{i:03d}": "1.0" for i in range(0, 300, 10)}
        project = self.project("sync-300", deps)
        interp = self.interpreter("system", plugin=True)
        copy = self.locked_copy(project, interp)
        return self.sync_of(interp, copy, "300 locked packages", ["sync", "--dry-run"])

    def webapp(self, interp: Interpreter) -> Path:
        """fixtures/realworld/webapp with the lock this Poetry writes (2.1 on
        2.x, 2.0 on 1.8): planned from, never installed (no index needed)."""
        self.count += 1
        dest = self.scratch / f"c{self.count}-webapp"
        return copy_project("webapp", dest, "2.0" if interp.poetry_major < 2 else "2.1")

    def realworld(self) -> Result:
        interp = self.interpreter("system", plugin=True)
        copy = self.webapp(interp)
        dry = ["--no-plugins", "install", "--dry-run"]
        return self.rounds_of(
            Result(
                f"env-audit vs install --dry-run, web app lock ({WEBAPP} packages)",
                ["env-audit", "dry-run", "start-up"],
                target="<= 0.8 beyond start-up",
            ),
            {
                "env-audit": lambda: self.timed(interp, ["env-audit"], copy, ok=(0, 1)),
                "dry-run": lambda: self.timed(interp, dry, copy),
                "start-up": lambda: self.timed(interp, ["--version"], copy),
            },
        )

    def realworld_sync(self) -> Result:
        interp = self.interpreter("system", plugin=True)
        copy = self.webapp(interp)
        dry = [*sync_args(interp), "--dry-run"]
        return self.sync_of(interp, copy, f"web app lock ({WEBAPP} packages)", dry)

    def sync_of(
        self, interp: Interpreter, copy: Path, lock: str, dry: list[str]
    ) -> Result:
        """``env-audit --sync`` and the guarded ``dry`` (a sync dry run)
        against the unguarded one, on the project at ``copy``."""
        return self.rounds_of(
            Result(
                f"sync: env-audit --sync and guarded sync --dry-run, {lock}",
                ["env-audit --sync", "guarded", "unguarded"],
                target="<= 1.1",
            ),
            {
                "env-audit --sync": lambda: self.timed(
                    interp, ["env-audit", "--sync"], copy, ok=(0, 1)
                ),
                "guarded": lambda: self.timed(interp, dry, copy),
                "unguarded": lambda: self.timed(interp, ["--no-plugins", *dry], copy),
            },
        )

    def serialise(self, *, real: bool = False) -> Result:
        if real:
            deps = dict(pin.split("==") for pin in REAL)
        else:
            deps = {f"{SYNTHETIC}-w{i:02d}": "1.0" for i in range(37)}
        deps.update(dict(pin.split("==") for pin in POETRY_PINS))
        # Real wheels were fetched for the base interpreter: lock for its minor only.
        base = self.harness.base_python
        minor = tuple(int(x) for x in python_info(base)["version"].split(".")[:2])
        only = f">={minor[0]}.{minor[1]},<{minor[0]}.{minor[1] + 1}"
        project = self.project(
            "serialise-real" if real else "serialise-40",
            deps,
            python=only if real else ">=3.9",
        )
        locker = self.interpreter("system", plugin=False)
        locked = self.locked_copy(project, locker)

        def fresh(plugin: bool, parallel: bool) -> float:
            interp = self.interpreter("system", plugin=plugin)
            copy = self.locked_copy(locked, interp)
            if not parallel:
                run_poetry(
                    interp,
                    ["config", "installer.parallel", "false", "--local"],
                    cwd=copy,
                )
            took = self.timed(interp, ["install"], copy)
            discard(interp)
            return took

        return self.rounds_of(
            Result(
                (
                    f"fresh install of {len(REAL)} real projects (+ their dependencies),"
                    " 3 of Poetry's changed, shared"
                )
                if real
                else "fresh install of 40 packages, 3 of Poetry's changed, shared",
                ["parallel", "serialised", "serial"],
                target="serialised/parallel <= 1.15, serial/parallel much larger",
            ),
            {
                "parallel": lambda: fresh(False, True),
                "serialised": lambda: fresh(True, True),
                "serial": lambda: fresh(False, False),
            },
        )


def write_synthetic(dest: Path) -> Path:
    """Pure-Python wheels: 300 tiny ones in chains of ten, and 37 with 40 modules."""
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(300):
        requires = [f"{SYNTHETIC}-p{i + 1:03d}==1.0"] if (i + 1) % 10 else []
        write_wheel(dest, f"{SYNTHETIC}-p{i:03d}", "1.0", modules=1, requires=requires)
    for i in range(37):
        write_wheel(dest, f"{SYNTHETIC}-w{i:02d}", "1.0", modules=40, module_bytes=4096)
    return dest


# ------------------------------------------------------------ report


def rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for result in results:
        base = (
            result.variants[-1]
            if result.name.startswith(("activation", "no-op"))
            else result.variants[0]
        )
        if result.name.startswith("env-audit"):
            base = "dry-run"
        if result.name.startswith("sync"):
            base = "unguarded"
        for variant in result.variants:
            if variant == base:
                continue
            ratios = result.ratios(variant, base)
            out.append(
                (
                    result.name,
                    f"{variant} / {base}",
                    f"{result.median(variant):.3f} {UNIT['name']}",
                    f"{result.median(base):.3f} {UNIT['name']}",
                    f"{statistics.median(ratios):.3f}",
                    f"{min(ratios):.3f} .. {max(ratios):.3f}",
                    result.target if variant != "start-up" else "(Poetry's floor)",
                )
            )
        if "start-up" in result.variants:
            out.append(beyond_start_up(result, "env-audit", base))
    return out


def beyond_start_up(result: Result, variant: str, base: str) -> tuple[str, ...]:
    """Time each command spends after Poetry started (``poetry --version``)."""
    floor = result.times["start-up"]
    mine = [t - f for t, f in zip(result.times[variant], floor)]
    theirs = [t - f for t, f in zip(result.times[base], floor)]
    ratios = [a / b for a, b in zip(mine, theirs)]
    return (
        result.name,
        f"{variant} / {base}, beyond start-up",
        f"{statistics.median(mine):.3f} {UNIT['name']}",
        f"{statistics.median(theirs):.3f} {UNIT['name']}",
        # Differences of two noisy times: their per-round ratios scatter too
        # widely to take a median of; the ratio of the medians is kept.
        f"{statistics.median(mine) / statistics.median(theirs):.3f}",
        f"{min(ratios):.3f} .. {max(ratios):.3f}",
        result.target,
    )


HEADERS = (
    "benchmark",
    "ratio",
    "median",
    "median (base)",
    "median ratio",
    "spread",
    "target",
)


def render(table: list[tuple[str, ...]], *, markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
        lines += ["| " + " | ".join(row) + " |" for row in table]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
    return "\n".join(lines)


def machine() -> str:
    info = python_info(resolve_base_python(os.environ.get(PYTHON_ENV)))
    cores = os.cpu_count() or 0
    return f"{cores} cores, Python {info.get('version', '?')}, Poetry {POETRY}"


ALL = (
    "activation",
    "noop-isolated",
    "noop-shared",
    "audit-300",
    "sync-300",
    "webapp",
    "webapp-sync",
    "serialise",
    "serialise-real",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}"
    )
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay every request to the local index by MS milliseconds (a remote index)",
    )
    parser.add_argument(
        "--builtin-uninstall",
        action="store_true",
        help="every variant with Poetry >= 2.5's installer.builtin-uninstall",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count each command's instructions with valgrind (callgrind) instead"
        " of timing it; one round is enough, the count does not vary",
    )
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on PATH")
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    build_python = Path(sys.executable)  # .venv-dev: it has poetry-core
    with Harness.session(build_python=build_python, poetry_versions=[POETRY]) as h:
        h.extra_dirs = Bench.wheel_dirs(h.scratch)
        if h.plugin.wheel is None:
            raise SystemExit(f"bench: the plugin does not build: {h.plugin.error}")
        bench = Bench(h, args.rounds)
        if args.builtin_uninstall:
            bench.extra_env["POETRY_INSTALLER_BUILTIN_UNINSTALL"] = "true"
        if args.instructions:
            bench.instructions = True
            UNIT["name"] = "G instructions"
        with h.serve(latency=args.latency / 1000):
            steps: dict[str, Callable[[], Result]] = {
                "activation": bench.activation,
                "noop-isolated": lambda: bench.noop("isolated"),
                "noop-shared": lambda: bench.noop("system"),
                "audit-300": bench.audit,
                "sync-300": bench.sync,
                "webapp": bench.realworld,
                "webapp-sync": bench.realworld_sync,
                "serialise": bench.serialise,
                "serialise-real": lambda: bench.serialise(real=True),
            }
            results = []
            for name in chosen:
                print(
                    f"bench: {name} ({args.rounds} rounds)", file=sys.stderr, flush=True
                )
                results.append(steps[name]())
        latency = f", index latency {args.latency:g} ms" if args.latency else ""
        counted = ", instructions counted by callgrind" if args.instructions else ""
        print(
            f"Measured on {machine()}{latency}{counted}, {args.rounds} rounds,"
            " medians and per-round spread."
        )
        print(render(rows(results), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
