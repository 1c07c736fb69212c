"""Event listeners. Cheap for every command: they import the guard only for
Poetry's installing commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cleo.events.event import Event
    from cleo.events.event_dispatcher import EventDispatcher


def on_command(event: Event, event_name: str, dispatcher: EventDispatcher) -> None:
    command = getattr(event, "command", None)
    if command is None or not any(
        cls.__name__ == "InstallerCommand" for cls in type(command).__mro__
    ):
        return
    try:
        from poetry_env_audit.guard import attach

        attach(command, event.io)  # type: ignore[attr-defined]
    except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
        event.io.write_error_line(  # type: ignore[attr-defined]
            f"<warning>poetry-env-audit: internal error ({type(error).__name__});"
            " Poetry carries on without the guard.</warning>"
        )
