"""Event listeners. Cheap for every command: they import the guard only for
Poetry's installing commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cleo.events.event import Event
    from cleo.events.event_dispatcher import EventDispatcher

    from poetry_env_audit.guard import InstallGuard


_GUARDS: dict[int, InstallGuard] = {}


def on_terminate(event: Event, event_name: str, dispatcher: EventDispatcher) -> None:
    command = getattr(event, "command", None)
    guard = _GUARDS.pop(id(command), None)
    if guard is None:
        return
    try:
        guard.finish()
    finally:
        if guard.refused:
            event.set_exit_code(1)  # type: ignore[attr-defined]


def on_command(event: Event, event_name: str, dispatcher: EventDispatcher) -> None:
    from poetry_env_audit.seams.command import is_installer_command

    command = getattr(event, "command", None)
    if command is None or not is_installer_command(command):
        return
    try:
        from poetry_env_audit.guard import attach

        guard = attach(command, event.io)  # type: ignore[attr-defined]
        if guard is not None:
            _GUARDS[id(command)] = guard
            if guard.refused:
                event.disable_command()  # type: ignore[attr-defined]
    except Exception as error:  # noqa: BLE001 - the plugin must never brick Poetry
        event.io.write_error_line(  # type: ignore[attr-defined]
            f"<warning>poetry-env-audit: internal error ({type(error).__name__});"
            " Poetry carries on without the guard.</warning>"
        )
