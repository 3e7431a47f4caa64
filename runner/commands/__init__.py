"""One module per command; `register` adds every module's `command` to the group.

A command module defines a click command (or group) named `command`; nothing else needs to
change to add a command, so modules never edit each other.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register(group: click.Group) -> None:
    """Add the `command` of every module in this package to the top-level group."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda item: item.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)
