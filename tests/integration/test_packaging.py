from __future__ import annotations

# The built wheel installs into a plain venv of the leg's Python (3.14 and
# 3.15 included, in the Debian legs), with nothing but the local wheelhouse,
# and its metadata says what pyproject.toml says.
import json
import zipfile
from email.parser import HeaderParser
from typing import TYPE_CHECKING

import pytest

from harness.interpreters import bootstrap_pip
from harness.interpreters import pip_env
from harness.interpreters import pip_install

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.smoke

_PROBE = (
    "import importlib.metadata as m, json, sys\n"
    "import poetry_env_audit.plugin\n"
    "d = m.distribution('poetry-env-audit')\n"
    "eps = [e.name for e in d.entry_points if e.group == 'poetry.application.plugin']\n"
    "print(json.dumps({'version': d.version, 'eps': eps,\n"
    "    'python': '%d.%d' % sys.version_info[:2]}))\n"
)


def test_wheel_metadata_has_no_python_cap_and_names_the_license(
    plugin_wheel: Path,
) -> None:
    with zipfile.ZipFile(plugin_wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(metadata).decode())
    assert headers["Requires-Python"] == ">=3.9"
    assert headers["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    classifiers = headers.get_all("Classifier") or []
    for minor in range(9, 16):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert headers.get_all("Project-URL"), "no project URLs"


def test_built_wheel_installs_into_a_venv_of_this_python(
    plugin_wheel: Path,
    base_python: Path,
    find_links: list[Path],
    wheelhouse: Path,
    tmp_path: Path,
) -> None:
    import subprocess

    venv = tmp_path / "venv"
    subprocess.run(
        [str(base_python), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        env=pip_env(),
    )
    python = venv / "bin" / "python"
    bootstrap_pip(python, wheelhouse)
    pip_install(python, [str(plugin_wheel)], find_links)
    out = subprocess.run(
        [str(python), "-I", "-c", _PROBE],
        check=True,
        capture_output=True,
        text=True,
        env=pip_env(),
    )
    found = json.loads(out.stdout)
    expected = subprocess.run(
        [
            str(base_python),
            "-I",
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert found["python"] == expected
    assert found["eps"] == ["env-audit"]
    assert plugin_wheel.name.startswith(f"poetry_env_audit-{found['version']}-")
