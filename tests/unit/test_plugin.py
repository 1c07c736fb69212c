"""The plugin class: a switchboard of two commands and two listeners."""

from __future__ import annotations

from cleo.events.console_events import COMMAND
from cleo.events.console_events import TERMINATE
from cleo.events.event_dispatcher import EventDispatcher

from poetry_env_audit import hooks
from poetry_env_audit.plugin import EnvAuditPlugin


class _Loader:
    def __init__(self) -> None:
        self.factories: dict[str, object] = {}

    def register_factory(self, name: str, factory: object) -> None:
        self.factories[name] = factory


class _Application:
    def __init__(self) -> None:
        self.command_loader = _Loader()
        self.event_dispatcher = EventDispatcher()


def test_activate_registers_the_commands_lazily_and_the_listeners() -> None:
    app = _Application()
    EnvAuditPlugin().activate(app)  # type: ignore[arg-type]
    factories = app.command_loader.factories
    assert sorted(factories) == ["env-audit", "self isolate"]
    assert [f().name for f in factories.values()] == ["env-audit", "self isolate"]  # type: ignore[operator]
    assert app.event_dispatcher.get_listeners(COMMAND) == [hooks.on_command]
    assert app.event_dispatcher.get_listeners(TERMINATE) == [hooks.on_terminate]


def test_activate_without_a_dispatcher_registers_the_commands() -> None:
    app = _Application()
    app.event_dispatcher = None  # type: ignore[assignment]
    EnvAuditPlugin().activate(app)  # type: ignore[arg-type]
    assert sorted(app.command_loader.factories) == ["env-audit", "self isolate"]
