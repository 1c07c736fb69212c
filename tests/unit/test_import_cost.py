"""What importing the plugin costs: kept small where it is paid on every
guarded install in a shared environment."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "poetry_env_audit"


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "dataclass":
            return True
    return False


def test_every_dataclass_has_a_docstring() -> None:
    """On Python < 3.13 ``@dataclass`` computes ``inspect.signature`` of a
    class without a docstring to write one (0.27 of 0.72 ms per frozen class,
    at import time); a written docstring is also the better one."""
    missing = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name}"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and _is_dataclass(node)
        and ast.get_docstring(node) is None
    ]
    assert len(list(SRC.rglob("*.py"))) > 30
    assert missing == []


def test_the_isolate_remedy_does_not_import_the_isolate_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offering ``poetry self isolate`` is decided without the command's
    module (six dataclasses built at import, on every guarded sync)."""
    from poetry_env_audit.remedies import isolate_in_place
    from unit.factories import dist
    from unit.factories import poetry_env
    from unit.factories import target

    monkeypatch.setitem(sys.modules, "poetry_env_audit.isolate", None)  # import fails
    remedy = isolate_in_place(poetry_env([dist("poetry", "2.5.1")]), target())
    assert remedy is not None
    assert remedy.command == "poetry self isolate"
