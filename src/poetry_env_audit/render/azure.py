"""``--format azure``: Azure Pipelines logging commands, one per finding.

``##vso[task.logissue type=error;sourcepath=poetry.lock;linenumber=12]message``.
The escaping is the one of azure-pipelines-task-lib (``node/taskcommand.ts``
in github.com/microsoft/azure-pipelines-task-lib, ``escapedata`` and
``escape``, as the agent decodes them since the "Percent Encoding" change,
``docs/design/percentEncoding.md`` in github.com/microsoft/azure-pipelines-agent):

* message: ``%`` -> ``%AZP25``, ``\\r`` -> ``%0D``, ``\\n`` -> ``%0A``;
* property values: the same, and also ``]`` -> ``%5D``, ``;`` -> ``%3B``.

``task.logissue`` knows only ``error`` and ``warning``: a notice has no
logging command here and is shown by the text report alone. Azure has no
title either; the title leads the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poetry_env_audit.render.annotations import Level
from poetry_env_audit.render.annotations import annotations_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from poetry_env_audit.render.annotations import Annotation
    from poetry_env_audit.report import Report

#: ``task.logissue type=`` for each level; a level missing here is not written.
ISSUE_TYPES = {Level.ERROR: "error", Level.WARNING: "warning"}


def escape_data(text: str) -> str:
    """``escapedata`` of the task library: for the message after ``]``."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """``escape`` of the task library: for ``key=value;`` properties."""
    return escape_data(text).replace("]", "%5D").replace(";", "%3B")


def command(
    area_action: str, properties: Mapping[str, str | int | None], message: str
) -> str:
    """``##vso[area.action k=v;k=v;]message``; empty and ``None`` properties are left out."""
    props = "".join(
        f"{key}={escape_property(str(value))};"
        for key, value in properties.items()
        if value is not None and str(value) != ""
    )
    return f"##vso[{area_action}{' ' + props if props else ''}]{escape_data(message)}"


def annotation(note: Annotation) -> str | None:
    kind = ISSUE_TYPES.get(note.level)
    if kind is None:
        return None
    return command(
        "task.logissue",
        {"type": kind, "sourcepath": note.file, "linenumber": note.line},
        f"{note.title}: {note.message}",
    )


def render(
    report: Report, *, lock_path: str | None, lock_lines: Mapping[str, int]
) -> str:
    """One ``task.logissue`` per error or warning finding, one per line."""
    lines = (
        annotation(n)
        for n in annotations_of(report, lock_path=lock_path, lock_lines=lock_lines)
    )
    return "\n".join(line for line in lines if line is not None)
