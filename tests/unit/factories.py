"""Builders for the pure modules' records, so tests state only what matters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from poetry_env_audit.plan import Action
from poetry_env_audit.plan import PlannedChange
from poetry_env_audit.plan import classify
from poetry_env_audit.poetry_env import POETRY
from poetry_env_audit.poetry_env import DistInfo
from poetry_env_audit.poetry_env import Installation
from poetry_env_audit.poetry_env import PoetryEnvironment
from poetry_env_audit.poetry_env import resolve_closure
from poetry_env_audit.target import TargetEnvironment
from poetry_env_audit.target import TargetKind
from poetry_env_audit.target import TargetReason

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping

SITE = "/site"
PLUGIN_GROUP = "poetry.application.plugin"

#: A fixed CPython 3.11 on Linux, so marker evaluation does not depend on the
#: interpreter running the tests.
MARKER_ENV: Mapping[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.7",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def dist(
    name: str,
    version: str,
    requires: Iterable[str] = (),
    location: str = SITE,
    plugin: bool = False,
) -> DistInfo:
    """An installed distribution; ``name`` is kept as its display name."""
    return DistInfo(
        name=canonicalize_name(name),
        display_name=name,
        version=version,
        location=location,
        requires=tuple(requires),
        plugin_groups=(PLUGIN_GROUP,) if plugin else (),
    )


def index_of(dists: Iterable[DistInfo]) -> dict[str, DistInfo]:
    """Name -> dist, the first one of a name winning (as on a search path)."""
    out: dict[str, DistInfo] = {}
    for d in dists:
        out.setdefault(d.name, d)
    return out


def installation(
    kind: str = "system",
    *,
    isolated: bool = False,
    externally_managed: str | None = None,
    others: tuple[str, ...] = (),
) -> Installation:
    return Installation(
        kind=kind,
        isolated=isolated,
        externally_managed=externally_managed is not None,
        externally_managed_message=externally_managed,
        others=others,
    )


def poetry_env(
    dists: Iterable[DistInfo],
    *,
    install: Installation | None = None,
    marker_env: Mapping[str, str] | None = None,
    import_paths: tuple[str, ...] = (SITE,),
    python: str = "/usr/bin/python3",
    prefix: str = "/usr",
) -> PoetryEnvironment:
    """Poetry's environment as :func:`inspect_poetry_environment` would build it."""
    index = index_of(dists)
    env = dict(MARKER_ENV if marker_env is None else marker_env)
    plugins = tuple(
        sorted(n for n, d in index.items() if d.plugin_groups and n != POETRY)
    )
    closure = resolve_closure(index, (POETRY, *plugins), env)
    poetry = index.get(POETRY)
    return PoetryEnvironment(
        version=poetry.version if poetry else "unknown",
        python=python,
        prefix=prefix,
        base_prefix=prefix,
        import_paths=import_paths,
        plugins=plugins,
        needed=closure.needed,
        problems=closure.problems,
        vendored=(),
        installation=installation() if install is None else install,
        index=index,
        marker_env=env,
        unverifiable=closure.unverifiable,
    )


def target(
    shared: bool = True,
    *,
    path: str = "/usr",
    kind: str = "system",
    reason: str = "virtualenvs.create = false",
    site_dirs: tuple[str, ...] = (SITE,),
    externally_managed: str | None = None,
    python: str | None = "/usr/bin/python3",
) -> TargetEnvironment:
    """The install target; ``shared`` makes all of its site dirs Poetry's too."""
    return TargetEnvironment(
        path=path,
        python=python,
        kind=TargetKind(kind),
        reason=TargetReason(reason),
        site_dirs=site_dirs,
        shared_dirs=site_dirs if shared else (),
        externally_managed=externally_managed,
    )


def change(
    name: str,
    current: str | None,
    planned: str | None,
    *,
    action: Action | None = None,
    requires: Iterable[str] = (),
) -> PlannedChange:
    """A planned operation; the action follows from the two versions unless given."""
    if action is None:
        if planned is None:
            action = Action.REMOVE
        elif current is None:
            action = Action.INSTALL
        else:
            action = classify("update", current, planned)
    return PlannedChange(
        name=canonicalize_name(name),
        display_name=name,
        action=action,
        current=current,
        planned=planned,
        requires=tuple(requires),
    )
