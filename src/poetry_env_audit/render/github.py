"""``--format github``: GitHub Actions workflow commands, one per finding.

``::error file=poetry.lock,line=12,title=...::message`` (``warning``,
``notice`` alike). The escaping is the one of ``@actions/core``
(``packages/core/src/command.ts`` in github.com/actions/toolkit,
``escapeData`` and ``escapeProperty``), which the runner undoes
(``ActionCommand.cs`` in github.com/actions/runner):

* message: ``%`` -> ``%25``, ``\\r`` -> ``%0D``, ``\\n`` -> ``%0A``;
* property values: the same, and also ``:`` -> ``%3A``, ``,`` -> ``%2C``.

``%`` goes first, so a ``%0A`` in the data arrives as the text ``%0A``. After
escaping no value holds a line break, and no property holds ``::`` or ``,``,
so nothing from a path, a name or a requirement can end the command or start
another one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poetry_env_audit.render.annotations import annotations_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from poetry_env_audit.render.annotations import Annotation
    from poetry_env_audit.report import Report


def escape_data(text: str) -> str:
    """``escapeData`` of ``@actions/core``: for the message after ``::``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """``escapeProperty`` of ``@actions/core``: for ``key=value`` properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, properties: Mapping[str, str | int | None], message: str) -> str:
    """``::name k=v,k=v::message``; empty and ``None`` properties are left out."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and str(value) != ""
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(note: Annotation) -> str:
    return command(
        note.level.value,
        {"file": note.file, "line": note.line, "title": note.title},
        note.message,
    )


def render(
    report: Report, *, lock_path: str | None, lock_lines: Mapping[str, int]
) -> str:
    """One workflow command per finding that deserves one, one per line."""
    return "\n".join(
        annotation(n)
        for n in annotations_of(report, lock_path=lock_path, lock_lines=lock_lines)
    )


def new_token() -> str:
    """An unguessable token for ``::stop-commands::``."""
    import secrets

    return secrets.token_hex(16)


def stop_commands(token: str) -> str:
    """Until ``::TOKEN::`` the runner runs no command: the report cannot start one."""
    return f"::stop-commands::{escape_data(token)}"


def resume_commands(token: str) -> str:
    return f"::{escape_property(token)}::"
