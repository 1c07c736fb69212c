"""The plugin: a switchboard that registers the command and the listeners.

Activation imports nothing beyond what Poetry has already loaded: a command's
module is imported only when that command (``poetry env-audit``, ``poetry self
isolate``) runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cleo.events.console_events import COMMAND
from cleo.events.console_events import TERMINATE
from poetry.plugins.application_plugin import ApplicationPlugin

from poetry_env_audit.hooks import on_command
from poetry_env_audit.hooks import on_terminate

if TYPE_CHECKING:
    from poetry.console.application import Application
    from poetry.console.commands.command import Command


def _env_audit_command() -> Command:
    from poetry_env_audit.command import EnvAuditCommand

    return EnvAuditCommand()


def _self_isolate_command() -> Command:
    from poetry_env_audit.isolate_command import SelfIsolateCommand

    return SelfIsolateCommand()


class EnvAuditPlugin(ApplicationPlugin):
    def activate(self, application: Application) -> None:
        super().activate(application)
        application.command_loader.register_factory("env-audit", _env_audit_command)
        # cleo takes a name with a space: the command joins Poetry's `self` namespace.
        application.command_loader.register_factory(
            "self isolate", _self_isolate_command
        )
        dispatcher = application.event_dispatcher
        if dispatcher is not None:
            # Priority 0 runs after Poetry's own listeners: the installer is set.
            dispatcher.add_listener(COMMAND, on_command, priority=0)
            dispatcher.add_listener(TERMINATE, on_terminate)
