"""Poetry's environment objects (``poetry.utils.env``): where an install writes.

Every function takes an ``Env`` Poetry made and returns plain values or a
:class:`~poetry_env_audit.target.TargetEnvironment`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_env_audit.errors import AuditError
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason
from poetry_env_audit.target import overlap
from poetry_env_audit.target import real_dirs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cleo.io.io import IO
    from poetry.poetry import Poetry
    from poetry.utils.env import Env

    from poetry_env_audit.seams import Fallbacks


def _same(a: str | os.PathLike[str] | None, b: str | os.PathLike[str] | None) -> bool:
    if not a or not b:
        return False
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def env_site_dirs(env: Env) -> tuple[str, ...]:
    return real_dirs(env.site_packages.candidates)


def describe_env(
    env: Env,
    *,
    kind: TargetKind,
    reason: TargetReason,
    import_paths: Iterable[str],
) -> TargetEnvironment:
    """A :class:`TargetEnvironment` for an environment object Poetry handed us."""
    site_dirs = env_site_dirs(env)
    managed: str | None = None
    if kind is TargetKind.SYSTEM:
        from poetry_env_audit.poetry_env import externally_managed_message

        try:
            managed = externally_managed_message(env.paths["stdlib"])
        except (KeyError, OSError):
            managed = None
    python: str | None
    try:
        python = str(env.python)
    except Exception:  # noqa: BLE001 - a broken env still has a path to report
        python = None
    return TargetEnvironment(
        path=str(env.path),
        python=python,
        kind=kind,
        reason=reason,
        site_dirs=site_dirs,
        shared_dirs=overlap(site_dirs, import_paths),
        externally_managed=managed,
    )


def describe_project_env(
    poetry: Poetry, env: Env, import_paths: Iterable[str]
) -> TargetEnvironment:
    """Kind and reason of the environment a project command installs into."""
    if not env.is_venv():
        return describe_env(
            env,
            kind=TargetKind.SYSTEM,
            reason=TargetReason.CREATE_FALSE,
            import_paths=import_paths,
        )
    from poetry.utils.env import EnvManager

    if _same(env.path, os.environ.get("VIRTUAL_ENV")):
        reason = TargetReason.VIRTUAL_ENV
    elif _same(env.path, os.environ.get("CONDA_PREFIX")):
        reason = TargetReason.CONDA_PREFIX
    elif _same(env.path, EnvManager(poetry).in_project_venv):
        reason = TargetReason.IN_PROJECT
    else:
        reason = TargetReason.MANAGED
    conda = (Path(env.path) / "conda-meta").is_dir()
    kind = TargetKind.CONDA if conda else TargetKind.VENV
    return describe_env(env, kind=kind, reason=reason, import_paths=import_paths)


def describe_own_env(env: Env, import_paths: Iterable[str]) -> TargetEnvironment:
    """``poetry self`` installs into Poetry's own environment."""
    return describe_env(
        env, kind=TargetKind.POETRY, reason=TargetReason.SELF, import_paths=import_paths
    )


def find_target(
    poetry: Poetry, io: IO, import_paths: Iterable[str]
) -> tuple[Env | None, TargetEnvironment]:
    """The environment ``poetry install`` would use, found as Poetry finds it.

    Mirrors ``EnvManager.create_venv`` without creating anything: an existing
    venv (``VIRTUAL_ENV``, ``CONDA_PREFIX``, in-project ``.venv``, managed), the
    system interpreter when ``virtualenvs.create`` is false, otherwise a new
    virtualenv that cannot overlap Poetry's environment.
    """
    from poetry.utils.env import EnvManager

    manager = EnvManager(poetry, io=io)
    env = manager.get()
    create = bool(poetry.config.get("virtualenvs.create", True))
    if env.is_venv() or not create:
        check_python(poetry, env, create=create)
        return env, describe_project_env(poetry, env, import_paths)
    where = (
        manager.in_project_venv
        if manager.use_in_project_venv()
        else Path(poetry.config.virtualenvs_path)
    )
    return None, TargetEnvironment(
        path=str(where),
        python=None,
        kind=TargetKind.NEW_VENV,
        reason=TargetReason.NEW_VENV,
        site_dirs=(),
        shared_dirs=(),
    )


def check_python(poetry: Poetry, env: Env, *, create: bool) -> None:
    """Raise :class:`AuditError` with Poetry's own words when the project's
    ``python`` constraint excludes the target's interpreter, as Poetry's
    ``EnvManager.create_venv`` (and so its dry run) refuses it."""
    from poetry.core.constraints.version import Version

    given = ".".join(str(part) for part in env.version_info[:3])
    if poetry.package.python_constraint.allows(Version.parse(given)):
        return
    note = (
        'Please change python executable via the "env use" command.'
        if create
        else "Poetry cannot switch to a compatible Python version because"
        " virtualenv creation is disabled."
    )
    raise AuditError(
        f"Current Python version ({given}) is not allowed by the project"
        f" ({poetry.package.python_versions}). {note}"
    )


def env_purelib(env: Env) -> Path:
    """The directory the environment lock lives in: the target's purelib."""
    return Path(os.path.realpath(env.paths["purelib"]))


def env_stdlib(env: Env) -> str | None:
    try:
        return str(env.paths["stdlib"])
    except (KeyError, OSError):
        return None


def warm_env(env: Env, fallbacks: Fallbacks) -> None:
    """Compute what Poetry caches lazily about ``env`` while every file is in place.

    Poetry 1.8 loads ``packaging/tags.py`` by path to compute supported tags of
    an environment; doing it now means no later step reads a half-swapped
    package.
    """
    for attribute in (
        "marker_env",
        "supported_tags",
        "paths",
        "sys_path",
        "site_packages",
    ):
        # hasattr evaluates the (cached) property; a missing one is reported.
        if not hasattr(env, attribute):
            fallbacks.note(f"Env.{attribute}", "not computed before the swap")
