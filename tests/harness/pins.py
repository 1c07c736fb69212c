from __future__ import annotations

# Deterministic test inputs: the committed constraints each matrix Poetry's
# wheelhouse resolves against (``scripts/dev.py pin`` writes them), and the
# drift report (``scripts/dev.py drift``): how env-audit's verdicts on the
# fixtures move when Poetry's closure is resolved at today's newest releases.
import contextlib
import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.poetry import describe
from harness.poetry import run_poetry
from harness.projects import fixture_names
from harness.session import UNLOCKED_PREFIXES
from harness.session import UNPINNED_ENV
from harness.session import Harness
from harness.session import PluginBuild
from harness.session import constraints_file
from harness.session import poetry_wheelhouse
from harness.wheels import distribution_files
from harness.wheels import normalize
from harness.wheels import python_minor

if TYPE_CHECKING:
    from collections.abc import Iterator

Verdicts = dict[str, str]


def wheel_pins(directory: Path) -> list[str]:
    """``name==version`` of every wheel in *directory*, sorted by name."""
    pins = []
    for path in distribution_files(directory):
        name, version = path.name.split("-")[:2]
        pins.append(f"{normalize(name)}=={version}")
    return sorted(set(pins))


def write_constraints(poetry_version: str, python: str, plugin: PluginBuild) -> Path:
    """Resolve Poetry *poetry_version*'s closure for *python* at today's
    releases (in a fresh cache: nothing stale) and commit it as pins."""
    minor = python_minor(python)
    with tempfile.TemporaryDirectory(prefix="poetry-env-audit-pin-") as fresh:
        wheelhouse = poetry_wheelhouse(
            poetry_version, python=python, cache_root=Path(fresh), plugin=plugin
        )
        pins = wheel_pins(wheelhouse)
    path = constraints_file(poetry_version, minor)
    path.parent.mkdir(parents=True, exist_ok=True)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    header = [
        f"# Poetry {poetry_version}'s closure on Python {minor}, with pip, setuptools,",
        f"# wheel and the plugin's requirements, as resolved on {today}. Written by",
        "# `python3 scripts/dev.py pin`; the test wheelhouses resolve against it.",
    ]
    path.write_text("\n".join([*header, *pins]) + "\n", encoding="utf-8")
    return path


def closure_versions(harness: Harness) -> dict[str, str]:
    return dict(
        pin.split("==", 1)
        for wheelhouse in harness.wheelhouses.values()
        for pin in wheel_pins(wheelhouse)
    )


def audit_fixtures(harness: Harness) -> dict[str, Verdicts]:
    """fixture -> {"verdict": ..., package: verdict of its finding} from
    ``poetry env-audit --format json`` in a system-like interpreter
    (``virtualenvs.create = false``: Poetry shares the target)."""
    results: dict[str, Verdicts] = {}
    interp = harness.interpreter("system")
    projects = harness.projects(harness.work / "projects")
    for fixture in fixture_names():
        if fixture.startswith(UNLOCKED_PREFIXES):
            continue
        project = projects.locked(fixture, interp)
        result = run_poetry(interp, ["env-audit", "--format", "json"], cwd=project)
        try:
            report = json.loads(result.stdout)
        except ValueError:
            results[fixture] = {"verdict": f"error: {describe(result)[-300:]}"}
            continue
        found = {f["package"]: f["verdict"] for f in report.get("findings", [])}
        results[fixture] = {"verdict": str(report.get("verdict")), **found}
    return results


@contextlib.contextmanager
def unpinned(on: bool) -> Iterator[None]:
    """``$POETRY_ENV_AUDIT_TEST_UNPINNED`` set (*on*) or unset, restored after."""
    old = os.environ.get(UNPINNED_ENV)
    if on:
        os.environ[UNPINNED_ENV] = "1"
    else:
        os.environ.pop(UNPINNED_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(UNPINNED_ENV, None)
        else:
            os.environ[UNPINNED_ENV] = old


def drift_report(*, build_python: Path, poetry_version: str) -> str:
    """The closure's versions and env-audit's verdicts per fixture, at the
    committed constraints and at today's newest releases, side by side."""
    runs: dict[str, tuple[dict[str, str], dict[str, Verdicts]]] = {}
    for mode in ("pinned", "newest"):
        with contextlib.ExitStack() as stack:
            stack.enter_context(unpinned(mode == "newest"))
            fresh = None
            if mode == "newest":
                fresh = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            harness = stack.enter_context(
                Harness.session(
                    build_python=build_python,
                    poetry_versions=[poetry_version],
                    cache_root=fresh,
                )
            )
            stack.enter_context(harness.serve())
            runs[mode] = (closure_versions(harness), audit_fixtures(harness))
    return render_drift(poetry_version, runs)


def render_drift(
    poetry_version: str,
    runs: dict[str, tuple[dict[str, str], dict[str, Verdicts]]],
) -> str:
    (pinned_versions, pinned), (newest_versions, newest) = (
        runs["pinned"],
        runs["newest"],
    )
    lines = [f"Poetry {poetry_version}: closure at the constraints vs today's newest"]
    moved = [
        f"  {name}: {pinned_versions.get(name, '-')} -> {newest_versions.get(name, '-')}"
        for name in sorted(set(pinned_versions) | set(newest_versions))
        if pinned_versions.get(name) != newest_versions.get(name)
    ]
    lines += moved or ["  (no version moved)"]
    lines.append("env-audit verdicts (shared system-like Poetry), pinned -> newest:")
    changed = 0
    for fixture in sorted(set(pinned) | set(newest)):
        before, after = pinned.get(fixture, {}), newest.get(fixture, {})
        mark = "" if before == after else "  <- moved"
        changed += bool(mark)
        lines.append(f"  {fixture}: {_show(before)} -> {_show(after)}{mark}")
    lines.append(f"{changed} fixture(s) moved.")
    return "\n".join(lines)


def _show(verdicts: Verdicts) -> str:
    if not verdicts:
        return "-"
    rest = ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()) if k != "verdict")
    return f"{verdicts.get('verdict')}" + (f" ({rest})" if rest else "")


def main_drift() -> int:
    """``scripts/dev.py drift``: the report on stdout; exit 0 whatever moved
    (drift is information, not a failure of this repository)."""
    import sys

    poetry = os.environ.get("POETRY_ENV_AUDIT_TEST_POETRY", "2.5.1")
    print(drift_report(build_python=Path(sys.executable), poetry_version=poetry))
    return 0
