"""What ``env-audit --assume-shared`` / ``--poetry VERSION`` judge against,
made with Poetry's own objects: its solver for the image's closure, a
``MockEnv`` for the image's Python, an ``InstalledRepository`` of the closure
for the dry run's "what is installed".
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.assumed import Assumed
from poetry_env_audit.assumed import ResolvedClosure
from poetry_env_audit.assumed import ResolvedPackage
from poetry_env_audit.assumed import cache_key
from poetry_env_audit.assumed import cache_path
from poetry_env_audit.assumed import image_environment
from poetry_env_audit.assumed import image_index
from poetry_env_audit.assumed import image_machine
from poetry_env_audit.assumed import image_marker_env
from poetry_env_audit.assumed import image_target
from poetry_env_audit.assumed import parse_python
from poetry_env_audit.assumed import read_cache
from poetry_env_audit.assumed import string_markers
from poetry_env_audit.assumed import write_cache
from poetry_env_audit.errors import AuditError
from poetry_env_audit.seams import one_line
from poetry_env_audit.seams.environment import check_python
from poetry_env_audit.seams.environment import describe_env
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping

    from poetry.poetry import Poetry
    from poetry.utils.env import Env

    from poetry_env_audit.assumed import Assumption
    from poetry_env_audit.assumed import PythonTarget
    from poetry_env_audit.poetry_env import PoetryEnvironment
    from poetry_env_audit.target import TargetEnvironment

#: The name of the repository ``--index-url`` makes (never a user's source name).
INDEX_NAME = "env-audit-index"


@dataclass(frozen=True)
class Basis:
    """What an assumed audit judges against and plans on: the Poetry
    environment, the ``Env`` and installed packages Poetry's dry run sees, the
    target as reports show it."""

    poetry: PoetryEnvironment
    env: Env
    installed: Any
    target: TargetEnvironment
    assumed: Assumed


def assumed_basis(
    poetry: Poetry,
    own: PoetryEnvironment,
    assumption: Assumption,
    *,
    now: float | None = None,
) -> Basis:
    """The :class:`Basis` of ``assumption``.

    ``--assume-shared``: Poetry's own environment (``EnvManager.get_system_env
    (naive=True)``, what ``poetry self`` installs into) is the target, its
    installed packages what the dry run starts from. ``--poetry``: the
    image's Python (a ``MockEnv``) holding the resolved closure.
    """
    from poetry.utils.env import EnvManager

    if assumption.poetry is None:
        env = EnvManager.get_system_env(naive=True)
        check_python(poetry, env, create=False)
        target = describe_env(
            env,
            kind=TargetKind.SYSTEM,
            reason=TargetReason.CREATE_FALSE,
            import_paths=own.import_paths,
        )
        if not target.shared:
            # Poetry imports from elsewhere (a user site): those are its directories.
            where = tuple(dict.fromkeys(d.location for d in own.needed if d.location))
            target = _with_shared(target, where)
        return Basis(
            poetry=own,
            env=env,
            installed=None,
            target=target,
            assumed=Assumed(flags=assumption.flags()),
        )
    python = assumption.python or parse_python(platform.python_version())
    markers = image_marker_env(
        _local_marker_env(),
        python,
        image_machine(platform.machine(), platform.system()),
    )
    env = image_env(python, markers)
    # Refused in Poetry's words before anything is resolved.
    check_python(poetry, env, create=False)
    closure = image_closure(poetry, assumption, python, markers, now=now)
    image = image_environment(closure, string_markers(markers))
    return Basis(
        poetry=image,
        env=env,
        installed=installed_repository(closure.packages),
        target=image_target(closure),
        assumed=Assumed(flags=assumption.flags(), closure=closure),
    )


def _with_shared(target: TargetEnvironment, dirs: tuple[str, ...]) -> TargetEnvironment:
    from dataclasses import replace

    return replace(target, shared_dirs=dirs)


def _local_marker_env() -> dict[str, Any]:
    """This machine's marker environment as Poetry's ``Env`` computes it (in
    process: a ``SystemEnv`` runs nothing)."""
    from poetry.utils.env import NullEnv

    return dict(NullEnv().marker_env)


def image_env(python: PythonTarget, markers: Mapping[str, Any]) -> Env:
    """Poetry's ``MockEnv`` for the image's Python: what the dry run and the
    solver evaluate markers and the project's ``python`` constraint with."""
    from poetry.utils.env import MockEnv

    return MockEnv(
        version_info=python.info,
        python_implementation="CPython",
        platform="linux",
        platform_machine=str(markers["platform_machine"]),
        os_name="posix",
        marker_env=dict(markers),
    )


def installed_repository(packages: Iterable[ResolvedPackage]) -> Any:
    """An ``InstalledRepository`` holding the closure: the image's installed
    packages as Poetry's Installer compares the lock with them."""
    from poetry.core.packages.package import Package
    from poetry.repositories.installed_repository import InstalledRepository

    repo = InstalledRepository()
    for p in packages:
        repo.add_package(Package(p.display_name, p.version))
    return repo


def pool_for(poetry: Poetry, index_url: str | None) -> Any:
    """``--index-url`` as a Poetry legacy repository, else the project's pool."""
    if not index_url:
        return poetry.pool
    from poetry.repositories.legacy_repository import LegacyRepository
    from poetry.repositories.repository_pool import RepositoryPool

    repo = LegacyRepository(
        INDEX_NAME, index_url, config=poetry.config, disable_cache=True
    )
    return RepositoryPool(repositories=[repo])


def pool_sources(pool: Any) -> tuple[str, ...]:
    """The URLs (or names) a pool resolves from, in its order."""
    out: list[str] = []
    for repo in pool.repositories:
        url = getattr(repo, "url", None)
        out.append(str(url) if url else str(repo.name))
    return tuple(out)


def image_closure(
    poetry: Poetry,
    assumption: Assumption,
    python: PythonTarget,
    markers: Mapping[str, Any],
    *,
    now: float | None = None,
) -> ResolvedClosure:
    """The closure, from the cache (younger than 24 hours) or resolved now
    (then cached). Raises :class:`AuditError` when neither works."""
    version = assumption.poetry or ""
    moment = time.time() if now is None else now
    pool = pool_for(poetry, assumption.index_url)
    sources = pool_sources(pool)
    plugins = tuple(p.text for p in assumption.plugins)
    key = cache_key(version, python.text, sources, plugins)
    path = cache_path(str(poetry.config.get("cache-dir")), key)
    cached = read_cache(path, now=moment)
    if cached is not None:
        return cached
    try:
        packages = solve_closure(poetry, pool, assumption, python, markers)
    except Exception as exc:
        raise AuditError(
            f"cannot resolve Poetry {version}'s closure for Python"
            f" {python.text} from {', '.join(sources) or 'no source'}"
            f" ({one_line(exc)}) and no resolution of it is cached from the last"
            f" 24 hours in {path.parent}.",
        ) from exc
    closure = ResolvedClosure(
        poetry=version,
        python=python.text,
        plugins=tuple(p.name for p in assumption.plugins),
        sources=sources,
        resolved_at=moment,
        packages=packages,
    )
    needed = image_index(closure, string_markers(markers))
    closure = ResolvedClosure(
        poetry=closure.poetry,
        python=closure.python,
        plugins=closure.plugins,
        sources=closure.sources,
        resolved_at=closure.resolved_at,
        packages=tuple(p for p in packages if p.name in needed),
    )
    write_cache(path, closure)
    return closure


def solve_closure(
    poetry: Poetry,
    pool: Any,
    assumption: Assumption,
    python: PythonTarget,
    markers: Mapping[str, Any],
) -> tuple[ResolvedPackage, ...]:
    """Poetry's ``Solver`` on a root that depends on ``poetry==VERSION`` and
    the plugins, for the image's environment (``use_environment``: markers
    and the Python as pip on that image would see them)."""
    from cleo.io.null_io import NullIO
    from poetry.core.packages.dependency import Dependency
    from poetry.core.packages.project_package import ProjectPackage
    from poetry.puzzle.solver import Solver

    from poetry_env_audit.seams.plan import requirements_of

    root = ProjectPackage("poetry-env-audit-image", "0")
    root.python_versions = f"~{python.major}.{python.minor}"
    root.add_dependency(Dependency("poetry", f"=={assumption.poetry}"))
    for plugin in assumption.plugins:
        root.add_dependency(
            Dependency(plugin.name, f"=={plugin.version}" if plugin.version else "*")
        )
    solver = Solver(root, pool, [], [], NullIO())
    with solver.use_environment(image_env(python, markers)):
        transaction = solver.solve()
    operations = transaction.calculate_operations(with_uninstalls=False)
    out: dict[str, ResolvedPackage] = {}
    for op in operations:
        package = op.package
        requires, unreadable = requirements_of(package)
        out[str(package.name)] = ResolvedPackage(
            name=str(package.name),
            display_name=str(package.pretty_name),
            version=package.version.text,
            requires=requires + unreadable,
        )
    if "poetry" not in out:
        raise AuditError(f"the solver found no poetry {assumption.poetry}")
    return tuple(out[name] for name in sorted(out))
