"""Check the composite GitHub Action (action.yml) with actionlint and zizmor.

actionlint reads workflows only, not an action's metadata file, so its
composite steps are checked the way a workflow would run them: this writes a
workflow (in a temporary copy of the repository's layout) whose
``workflow_call`` inputs are the action's inputs and whose first job's steps
are the action's steps (expressions, step keys, the pinned actions and their
inputs, scripts through shellcheck when it is installed), and whose second job
uses the action as ``uses: ./`` (actionlint then checks the ``with:`` against
the action's metadata: required inputs, unknown ones). zizmor reads
action.yml itself (``--persona=pedantic``).

Run with the dev venv's Python (PyYAML comes with pre-commit):
``.venv-dev/bin/python scripts/check_action.py [action.yml]``; exit 0 when
both pass. ``scripts/dev.py lint`` runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wrapper_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """The workflow that runs ``action``'s composite steps as a job's."""
    inputs = {
        name: {
            "type": "string",
            "required": bool(spec.get("required", False)),
            **({"default": str(spec["default"])} if "default" in spec else {}),
        }
        for name, spec in (action.get("inputs") or {}).items()
    }
    required = {name: "x" for name, spec in inputs.items() if spec["required"]}
    return {
        "name": "action.yml checked as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {
            "steps": {
                "runs-on": "ubuntu-24.04",
                "steps": action["runs"]["steps"],
            },
            "uses": {
                "runs-on": "ubuntu-24.04",
                "steps": [{"uses": "./", **({"with": required} if required else {})}],
            },
        },
    }


def check(action_file: Path) -> int:
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; only safe_load is used

    action = yaml.safe_load(action_file.read_text(encoding="utf-8"))
    if action.get("runs", {}).get("using") != "composite":
        print(f"{action_file}: not a composite action")
        return 1
    with tempfile.TemporaryDirectory(prefix="check-action-") as work:
        root = Path(work)
        shutil.copy(action_file, root / "action.yml")
        workflows = root / ".github" / "workflows"
        workflows.mkdir(parents=True)
        wrapper = workflows / "action-steps.yml"
        # JSON is YAML: actionlint reads it as the workflow file it is.
        wrapper.write_text(json.dumps(wrapper_workflow(action), indent=1) + "\n")
        lint = subprocess.run(
            [str(BIN / "actionlint"), str(wrapper)], cwd=root, check=False
        )
    zizmor = subprocess.run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--no-progress",
            "--persona=pedantic",
            str(action_file),
        ],
        check=False,
    )
    return 1 if lint.returncode or zizmor.returncode else 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "action.yml"
    raise SystemExit(check(target))
