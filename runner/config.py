"""Where entra-bulk keeps its files, and (later) profiles, clouds and settings."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "entra-bulk"


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    base = Path(value) if value else Path.home() / fallback
    return base / APP_DIR_NAME


def user_config_dir() -> Path:
    """The user's config folder (`$XDG_CONFIG_HOME/entra-bulk`)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def user_data_dir() -> Path:
    """The user's data folder (`$XDG_DATA_HOME/entra-bulk`): the local emulated tenant."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def user_state_dir() -> Path:
    """The user's state folder (`$XDG_STATE_HOME/entra-bulk`): crash logs outside a run."""
    return _xdg("XDG_STATE_HOME", ".local/state")
