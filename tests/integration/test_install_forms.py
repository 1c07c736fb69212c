from __future__ import annotations

# The installation forms the README shows while the plugin is not on the
# package index yet, each from a throwaway copy of this checkout, offline
# against the local index:
#   poetry self add /path/to/checkout
#   poetry self add git+https://...   (tested with "poetry-env-audit @
#                                      git+file://..." of a throwaway
#                                      repository: no network here)
#   pipx inject poetry /path/to/checkout
import shutil
import subprocess
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from harness.index import build_simple_index
from harness.index import serve
from harness.interpreters import bootstrap_pip
from harness.interpreters import pip_env
from harness.interpreters import pip_install
from harness.poetry import describe
from harness.poetry import prepare_state
from harness.poetry import run_poetry
from harness.poetry import run_python
from harness.projects import REPO_ROOT
from harness.session import discard
from harness.session import private_clone
from harness.wheels import ensure_wheels

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from harness.interpreters import Interpreter
    from harness.session import TemplateStore

#: What a checkout needs to build (the rest is tests, fixtures, tooling).
CHECKOUT_FILES = ("pyproject.toml", "README.md", "LICENSE", "src")
PIPX = "pipx==1.18.4"
#: `poetry self add` locks Poetry's closure for every platform: the index
#: needs the metadata of its macOS- and Windows-only requirements too.
FOREIGN = [
    ("xattr>=1.0.0,<2.0.0", "macosx_11_0_arm64"),
    ("pywin32-ctypes", None),
    ("httpx2-jsfetch", None),  # httpx2's, for Emscripten
]
_GIT_INIT = (
    "import sys\nfrom dulwich import porcelain\n"
    "repo = porcelain.init(sys.argv[1])\n"
    "porcelain.add(repo, paths=None)\n"
    "porcelain.commit(repo, message=b'checkout', author=b'tests <t@example.invalid>',"
    " committer=b'tests <t@example.invalid>')\n"
)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A throwaway copy of this checkout's buildable files."""
    dest = tmp_path / "checkout"
    dest.mkdir()
    for name in CHECKOUT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def self_index(
    find_links: list[Path],
    download_python: str,
    harness_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The local index plus what locking Poetry for every platform needs."""
    extra = [
        ensure_wheels(
            [req],
            python=download_python,
            cache_root=harness_cache,
            no_deps=True,
            platform=platform,
        )
        for req, platform in FOREIGN
    ]
    root = tmp_path_factory.mktemp("self-index")
    build_simple_index([*find_links, *extra], root)
    with serve(root) as server:
        yield server.url


@pytest.fixture
def bare_poetry(
    templates: TemplateStore, poetry_version: str, scratch: Path, self_index: str
) -> Iterator[Interpreter]:
    """A private Poetry in its own venv without the plugin, whose `self`
    project uses the local index as its primary source."""
    template = replace(templates.plain("isolated", poetry_version), has_plugin=False)
    interp = private_clone(template, scratch, "isolated")
    config = prepare_state(interp)["POETRY_CONFIG_DIR"]
    # `poetry self` keeps the sources of an existing system project.
    (config / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "poetry-instance"\nversion = "0"\npackage-mode = false\n\n'
        '[[tool.poetry.source]]\nname = "local"\n'
        f'url = "{self_index}"\npriority = "primary"\n',
        encoding="utf-8",
    )
    yield interp
    discard(interp)


def assert_plugin_added(interp: Interpreter, cwd: Path) -> None:
    shown = run_poetry(interp, ["self", "show", "plugins"], cwd=cwd)
    assert shown.returncode == 0, describe(shown)
    assert "poetry-env-audit" in shown.stdout, describe(shown)
    listed = run_poetry(interp, ["list"], cwd=cwd)
    assert "env-audit" in listed.stdout, describe(listed)


def test_poetry_self_add_path_to_checkout(
    bare_poetry: Interpreter, checkout: Path, tmp_path: Path
) -> None:
    result = run_poetry(bare_poetry, ["self", "add", str(checkout)], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert_plugin_added(bare_poetry, tmp_path)


def test_poetry_self_add_git_url(
    bare_poetry: Interpreter, checkout: Path, tmp_path: Path
) -> None:
    made = run_python(bare_poetry, ["-c", _GIT_INIT, str(checkout)], cwd=tmp_path)
    assert made.returncode == 0, describe(made)
    # Poetry's `add` parses a bare git+https:// or git+ssh:// URL, not a
    # bare git+file:// one; the PEP 508 form takes any git URL.
    url = f"poetry-env-audit @ git+file://{checkout}"
    result = run_poetry(bare_poetry, ["self", "add", url], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert_plugin_added(bare_poetry, tmp_path)


def test_pipx_inject_poetry_path_to_checkout(
    base_python: Path,
    download_python: str,
    harness_cache: Path,
    find_links: list[Path],
    wheelhouse: Path,
    poetry_version: str,
    checkout: Path,
    tmp_path: Path,
) -> None:
    pipx_wheels = ensure_wheels(
        [PIPX], python=download_python, cache_root=harness_cache
    )
    venv = tmp_path / "pipx-venv"
    subprocess.run(
        [str(base_python), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        env=pip_env(),
    )
    bootstrap_pip(venv / "bin" / "python", wheelhouse)
    pip_install(venv / "bin" / "python", [PIPX], [pipx_wheels, *find_links])
    build_simple_index([pipx_wheels, *find_links], tmp_path / "index")
    with serve(tmp_path / "index") as server:
        env = {
            **pip_env(),
            "HOME": str(tmp_path / "home"),
            "PIPX_HOME": str(tmp_path / "pipx-home"),
            "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
            "PIPX_MAN_DIR": str(tmp_path / "pipx-man"),
            "PIPX_DEFAULT_PYTHON": str(base_python),
            "PIP_INDEX_URL": server.url,
            "NO_COLOR": "1",
        }
        pipx = [str(venv / "bin" / "python"), "-m", "pipx"]
        for args in (
            ["install", f"poetry=={poetry_version}"],
            ["inject", "poetry", str(checkout)],
        ):
            result = subprocess.run(
                [*pipx, *args], capture_output=True, text=True, env=env, cwd=tmp_path
            )
            assert result.returncode == 0, describe(result)
        poetry = tmp_path / "pipx-bin" / "poetry"
        env["POETRY_CONFIG_DIR"] = str(tmp_path / "poetry-config")
        shown = subprocess.run(
            [str(poetry), "self", "show", "plugins"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    assert shown.returncode == 0, describe(shown)
    assert "poetry-env-audit" in shown.stdout, describe(shown)
