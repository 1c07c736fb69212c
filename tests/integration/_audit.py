from __future__ import annotations

# Helpers of test_env_audit.py: interpreter clones shared by the read-only
# env-audit checks of one module, locked fixture projects reused across tests,
# running `poetry env-audit` and reading its JSON report, file-tree snapshots.
import hashlib
import json
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import pytest

from harness.poetry import describe
from harness.poetry import run_poetry
from harness.session import discard
from harness.session import private_clone

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from collections.abc import Mapping
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.interpreters import Kind
    from harness.session import Projects
    from harness.session import TemplateStore

Report = dict[str, Any]


@dataclass
class ClonePool:
    """One private clone per kind, made on first use and shared by the tests
    of a module: ``poetry env-audit`` changes nothing, so read-only checks
    need no clone of their own."""

    templates: TemplateStore
    poetry_version: str
    scratch: Path
    _clones: dict[str, Interpreter] = field(default_factory=dict)

    def get(self, kind: Kind) -> Interpreter:
        if kind not in self._clones:
            template = self.templates.get(kind, self.poetry_version)
            problem = self.templates.plugin_problem(kind, self.poetry_version)
            if problem or not template.has_plugin:
                pytest.fail(f"the plugin is not installed next to Poetry: {problem}")
            self._clones[kind] = private_clone(template, self.scratch, kind)
        return self._clones[kind]

    def close(self) -> None:
        for interp in self._clones.values():
            discard(interp)
        self._clones.clear()


@dataclass
class ProjectPool:
    """Locked fixture projects, one copy per (fixture, kind), made on first use.

    Each kind gets its own copy: a bug that wrote into a project (an
    in-project ``.venv``, a lock) must not leak from one kind's test into
    another's."""

    projects: Projects
    _made: dict[tuple[str, str], Path] = field(default_factory=dict)

    def get(self, fixture: str, interp: Interpreter) -> Path:
        key = (fixture, interp.kind)
        if key not in self._made:
            name = f"{fixture}-{interp.kind}"
            self._made[key] = self.projects.locked(fixture, interp, name=name)
        return self._made[key]


@dataclass(frozen=True)
class Audit:
    """One run of ``poetry env-audit``."""

    result: subprocess.CompletedProcess[str]

    @property
    def code(self) -> int:
        return self.result.returncode

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr

    def describe(self) -> str:
        return describe(self.result)

    def report(self) -> Report:
        """stdout as the JSON report (the whole of stdout must be the object)."""
        try:
            data = json.loads(self.stdout)
        except ValueError as error:
            pytest.fail(f"stdout is not one JSON object ({error}):\n{self.describe()}")
        assert isinstance(data, dict), self.describe()
        return cast("Report", data)


def run_audit(
    interp: Interpreter,
    project: Path,
    *args: str,
    extra_env: Mapping[str, str] | None = None,
) -> Audit:
    """``poetry env-audit ARGS`` in *project*."""
    return Audit(
        run_poetry(interp, ["env-audit", *args], cwd=project, extra_env=extra_env)
    )


def findings_for(report: Report, package: str) -> list[dict[str, Any]]:
    """The findings of *report* about *package* (names compared normalised)."""
    wanted = normalise(package)
    return [f for f in report["findings"] if normalise(f["package"]) == wanted]


def the_finding(report: Report, package: str) -> dict[str, Any]:
    found = findings_for(report, package)
    assert len(found) == 1, json.dumps(report["findings"], indent=1)
    return found[0]


def requirers(finding: Mapping[str, Any], package: str) -> list[dict[str, Any]]:
    wanted = normalise(package)
    return [r for r in finding["required_by"] if normalise(r["package"]) == wanted]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def snapshot_tree(root: Path) -> dict[str, str]:
    """``{relative path: what}`` of every entry under *root*: a file's sha256,
    ``dir``, or ``-> target`` for a symlink (hidden entries included)."""
    tree: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            tree[rel] = f"-> {path.readlink()}"
        elif path.is_dir():
            tree[rel] = "dir"
        else:
            tree[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def tree_diff(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return [
        f"{key}: {before.get(key)} -> {after.get(key)}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections while the context is open:
    bound (so nothing else takes it) but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def offline_env(port: int) -> dict[str, str]:
    """Proxy variables that send every HTTP(S) request, loopback included, to
    *port* (nothing listens there), so any network access fails."""
    proxy = f"http://127.0.0.1:{port}"
    env = dict.fromkeys(("http_proxy", "https_proxy", "all_proxy"), proxy)
    env.update({name.upper(): proxy for name in env})
    env.update(no_proxy="", NO_PROXY="")
    return env


# Run in a clone: load and activate the plugin as Poetry's PluginManager does
# (entry point, then ``activate(application)``) and print, as JSON, the
# modules loaded before (Poetry's application) and the ones this alone added.
ACTIVATION_PROBE = """\
import json, sys
from importlib.metadata import entry_points
from poetry.console.application import Application

application = Application()
found = entry_points()
group = "poetry.application.plugin"
found = found.select(group=group) if hasattr(found, "select") else found.get(group, ())
ours = [ep for ep in found if ep.value.split(":")[0].startswith("poetry_env_audit.")]
assert len(ours) == 1, ours
before = set(sys.modules)
ours[0].load()().activate(application)
added = set(sys.modules) - before
print(json.dumps({"before": sorted(before), "added": sorted(added)}))
"""

# Run in a clone as ``python -c PROBE OUT poetry ARGS``: Poetry's own entry
# point with ARGS, then the modules loaded at exit written to OUT as JSON.
AT_EXIT_PROBE = """\
import atexit, json, runpy, sys

out = sys.argv[1]
sys.argv = sys.argv[2:]

def dump():
    with open(out, "w") as stream:
        json.dump(sorted(sys.modules), stream)

atexit.register(dump)
runpy.run_module("poetry", run_name="__main__", alter_sys=True)
"""
