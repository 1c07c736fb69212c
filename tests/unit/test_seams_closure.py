"""seams.closure in process, on the dev venv's Poetry: the solver on a small
repository (no network), the cache around it, and both bases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import pytest
from poetry.core.packages.dependency import Dependency
from poetry.core.packages.package import Package
from poetry.core.packages.project_package import ProjectPackage
from poetry.repositories.repository import Repository
from poetry.repositories.repository_pool import RepositoryPool

from poetry_env_audit.assumed import CACHE_TTL
from poetry_env_audit.assumed import IMAGE_SITE
from poetry_env_audit.assumed import Assumption
from poetry_env_audit.assumed import PluginSpec
from poetry_env_audit.assumed import PythonTarget
from poetry_env_audit.assumed import image_marker_env
from poetry_env_audit.errors import AuditError
from poetry_env_audit.poetry_env import inspect_poetry_environment
from poetry_env_audit.seams import closure as seams
from poetry_env_audit.target import TargetKind
from unit.factories import MARKER_ENV

if TYPE_CHECKING:
    from pathlib import Path

NOW = 1_800_000_000.0


def package(name: str, version: str, *requires: tuple[str, str, str]) -> Package:
    pkg = Package(name, version)
    for dep_name, constraint, marker in requires:
        dep = Dependency(dep_name, constraint)
        if marker:
            from poetry.core.version.markers import parse_marker

            dep.marker = parse_marker(marker)
        pkg.add_dependency(dep)
    return pkg


def repository() -> Repository:
    repo = Repository("fake")
    for pkg in (
        package(
            "poetry",
            "1.8.5",
            ("packaging", ">=23.1", ""),
            ("xattr", ">=1.0", 'sys_platform == "darwin"'),
            ("tomli", ">=2", 'python_version < "3.11"'),
        ),
        package("poetry", "2.5.1", ("packaging", ">=24.2", "")),
        package("packaging", "23.0"),
        package("packaging", "24.2"),
        package("xattr", "1.1.0"),
        package("tomli", "2.0.1"),
        package("poetry-plugin-x", "1.0", ("packaging", "<25", "")),
        package("poetry-plugin-x", "2.0", ("packaging", ">=25", "")),
    ):
        repo.add_package(pkg)
    return repo


@dataclass
class FakeConfig:
    cache_dir: Path

    def get(self, name: str, default: Any = None) -> Any:
        return str(self.cache_dir) if name == "cache-dir" else default


@dataclass
class FakePoetry:
    """What the closure seam reads of a loaded project."""

    cache_dir: Path
    pool: Any = field(
        default_factory=lambda: RepositoryPool(repositories=[repository()])
    )
    python: str = ">=3.9"

    @property
    def config(self) -> FakeConfig:
        return FakeConfig(self.cache_dir)

    @property
    def package(self) -> ProjectPackage:
        root = ProjectPackage("project", "1.0")
        root.python_versions = self.python
        return root


def markers(python: PythonTarget) -> dict[str, Any]:
    return image_marker_env({**MARKER_ENV}, python, "x86_64")


def test_solve_closure_resolves_for_the_image_python() -> None:
    for python, has_tomli in ((PythonTarget(3, 11), False), (PythonTarget(3, 9), True)):
        solved = seams.solve_closure(
            None,  # type: ignore[arg-type]
            RepositoryPool(repositories=[repository()]),
            Assumption(poetry="1.8.5", python=python),
            python,
            markers(python),
        )
        names = {p.name: p.version for p in solved}
        assert names["poetry"] == "1.8.5"
        assert names["packaging"] == "24.2"  # the newest the requirement allows
        assert "xattr" not in names  # macOS only; the image is Linux
        assert ("tomli" in names) is has_tomli
        poetry = next(p for p in solved if p.name == "poetry")
        assert "packaging>=23.1" in poetry.requires


def test_solve_closure_with_a_plugin_pinned() -> None:
    python = PythonTarget(3, 11)
    solved = seams.solve_closure(
        None,  # type: ignore[arg-type]
        RepositoryPool(repositories=[repository()]),
        Assumption(
            poetry="1.8.5",
            python=python,
            plugins=(PluginSpec("poetry-plugin-x", "1.0"),),
        ),
        python,
        markers(python),
    )
    assert {p.name: p.version for p in solved}["poetry-plugin-x"] == "1.0"


def test_solve_closure_fails_for_a_poetry_the_index_lacks() -> None:
    python = PythonTarget(3, 11)
    from poetry.puzzle.exceptions import SolverProblemError

    with pytest.raises(SolverProblemError):
        seams.solve_closure(
            None,  # type: ignore[arg-type]
            RepositoryPool(repositories=[repository()]),
            Assumption(poetry="9.9.9", python=python),
            python,
            markers(python),
        )


def test_image_closure_caches_then_reuses_then_expires(tmp_path: Path) -> None:
    fake = FakePoetry(tmp_path / "cache")
    python = PythonTarget(3, 11)
    assumption = Assumption(poetry="1.8.5", python=python)
    first = seams.image_closure(fake, assumption, python, markers(python), now=NOW)  # type: ignore[arg-type]
    assert not first.cached
    assert first.sources == ("fake",)
    # Only what the image installs is kept (xattr and tomli are not).
    assert [p.name for p in first.packages] == ["packaging", "poetry"]
    (cached_file,) = (tmp_path / "cache" / "env-audit" / "closures").glob("*.json")
    assert json.loads(cached_file.read_text())["poetry"] == "1.8.5"

    # Within 24 hours the index is not asked: an empty pool still gives it.
    fake.pool = RepositoryPool(repositories=[Repository("fake")])
    again = seams.image_closure(
        fake,  # type: ignore[arg-type]
        assumption,
        python,
        markers(python),
        now=NOW + CACHE_TTL - 1,
    )
    assert again.cached
    assert again.packages == first.packages

    with pytest.raises(AuditError) as raised:
        seams.image_closure(
            fake,  # type: ignore[arg-type]
            assumption,
            python,
            markers(python),
            now=NOW + CACHE_TTL,
        )
    message = str(raised.value)
    assert message.startswith(
        "cannot resolve Poetry 1.8.5's closure for Python 3.11 from fake ("
    )
    assert "no resolution of it is cached from the last 24 hours" in message
    assert "\n" not in message


def test_image_closure_without_a_source(tmp_path: Path) -> None:
    fake = FakePoetry(tmp_path / "cache", pool=RepositoryPool(repositories=[]))
    python = PythonTarget(3, 11)
    with pytest.raises(AuditError, match="from no source"):
        seams.image_closure(
            fake,  # type: ignore[arg-type]
            Assumption(poetry="1.8.5", python=python),
            python,
            markers(python),
            now=NOW,
        )


def test_pool_for_an_index_url(tmp_path: Path) -> None:
    from poetry.config.config import Config

    @dataclass
    class WithConfig:
        config: Any
        pool: Any = None

    pool = seams.pool_for(WithConfig(Config()), "http://127.0.0.1:9/simple/")  # type: ignore[arg-type]
    assert seams.pool_sources(pool) == ("http://127.0.0.1:9/simple",)
    assert [r.name for r in pool.repositories] == [seams.INDEX_NAME]
    fake = FakePoetry(tmp_path)
    assert seams.pool_for(fake, None) is fake.pool  # type: ignore[arg-type]


def test_installed_repository_and_image_env() -> None:
    from poetry_env_audit.assumed import ResolvedPackage

    repo = seams.installed_repository(
        [
            ResolvedPackage("packaging", "packaging", "24.2"),
            ResolvedPackage("cachecontrol", "CacheControl", "0.14.3"),
        ]
    )
    assert sorted((p.name, p.version.text) for p in repo.packages) == [
        ("cachecontrol", "0.14.3"),
        ("packaging", "24.2"),
    ]
    python = PythonTarget(3, 12, 4)
    env = seams.image_env(python, markers(python))
    assert env.marker_env["python_full_version"] == "3.12.4"
    assert env.marker_env["sys_platform"] == "linux"
    assert tuple(env.version_info[:3]) == (3, 12, 4)


def test_basis_of_assume_shared_is_poetrys_own_environment(tmp_path: Path) -> None:
    own = inspect_poetry_environment()
    basis = seams.assumed_basis(FakePoetry(tmp_path), own, Assumption())  # type: ignore[arg-type]
    assert basis.poetry is own
    assert basis.installed is None
    assert basis.target.kind is TargetKind.SYSTEM
    assert basis.target.shared
    assert basis.assumed.closure is None
    assert basis.assumed.flags == "--assume-shared"


def test_basis_of_an_image(tmp_path: Path) -> None:
    own = inspect_poetry_environment()
    assumption = Assumption(poetry="1.8.5", python=PythonTarget(3, 11))
    basis = seams.assumed_basis(FakePoetry(tmp_path), own, assumption, now=NOW)  # type: ignore[arg-type]
    assert basis.poetry.version == "1.8.5"
    assert basis.poetry.import_paths == (IMAGE_SITE,)
    assert basis.target.shared_dirs == (IMAGE_SITE,)
    assert sorted(p.name for p in basis.installed.packages) == ["packaging", "poetry"]
    assert basis.assumed.closure is not None
    assert basis.env.marker_env["python_version"] == "3.11"


def test_basis_of_an_image_the_project_excludes(tmp_path: Path) -> None:
    own = inspect_poetry_environment()
    assumption = Assumption(poetry="1.8.5", python=PythonTarget(3, 11))
    with pytest.raises(
        AuditError, match=r"Current Python version \(3\.11\.99\) is not allowed"
    ):
        seams.assumed_basis(
            FakePoetry(tmp_path, python="<3.11"),  # type: ignore[arg-type]
            own,
            assumption,
            now=NOW,
        )
    # Refused before resolving: nothing was cached.
    assert not (tmp_path / "env-audit").exists()


def test_basis_of_an_image_defaults_to_this_python(tmp_path: Path) -> None:
    import platform

    own = inspect_poetry_environment()
    basis = seams.assumed_basis(
        FakePoetry(tmp_path),  # type: ignore[arg-type]
        own,
        Assumption(poetry="1.8.5"),
        now=NOW,
    )
    assert basis.poetry.python == platform.python_version()
