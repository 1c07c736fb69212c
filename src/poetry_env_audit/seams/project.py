"""The project Poetry loaded: its directory, our table, the selected groups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from poetry_env_audit.errors import AuditError
from poetry_env_audit.seams import one_line

if TYPE_CHECKING:
    from poetry.poetry import Poetry


def project_dir(poetry: Poetry) -> Path:
    return Path(poetry.pyproject_path).parent


def project_table(poetry: Poetry) -> object:
    """``[tool.poetry-env-audit]`` of the project, or ``None``."""
    data = _pyproject_data(poetry)
    tool = data.get("tool") if isinstance(data, dict) else None
    return tool.get("poetry-env-audit") if isinstance(tool, dict) else None


def _pyproject_data(poetry: Poetry) -> object:
    """The project's ``pyproject.toml``, parsed.

    Read with ``tomllib`` (``tomli`` before Python 3.11, which Poetry itself
    requires there): ``poetry.pyproject.data`` is a tomlkit document that
    Poetry parses only when a command edits the file, and parsing it costs
    about five times as much (8 ms on a 100-line file). Poetry's document when
    the file cannot be read that way.
    """
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib
        with Path(poetry.pyproject_path).open("rb") as file:
            return tomllib.load(file)
    except Exception:  # noqa: BLE001 - Poetry's own reader decides, and words any error
        return poetry.pyproject.data


def load_poetry(command: Any) -> Poetry:
    """``command.poetry``; a project that cannot be loaded is an AuditError that
    says which it is: no ``pyproject.toml`` at all, or one Poetry rejects."""
    try:
        return command.poetry  # type: ignore[no-any-return]
    except Exception as exc:
        found = _pyproject_of(command)
        if found is None:
            raise AuditError(f"not a Poetry project: {one_line(exc)}.") from exc
        raise AuditError(
            f"Poetry cannot load the project {found}: {one_line(exc)}."
        ) from exc


def _pyproject_of(command: Any) -> Path | None:
    """The ``pyproject.toml`` Poetry would load (``-C``/``--directory`` on 2.x,
    else the working directory, and their parents), or ``None``."""
    application = getattr(command, "application", None)
    start = Path(getattr(application, "project_directory", None) or Path.cwd())
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def activated_groups(command: Any) -> frozenset[str]:
    """The groups ``--with/--without/--only/--all-groups`` select, as Poetry computes them."""
    try:
        groups = set(command.activated_groups)
        if command.option("all-groups") and not command.option("only"):
            groups |= set(
                command.poetry.package.dependency_group_names(include_optional=True)
            )
    except Exception as exc:
        raise AuditError(one_line(exc) + ".") from exc
    return frozenset(groups)
