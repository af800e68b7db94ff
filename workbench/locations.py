"""XDG locations of the workbench's files."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP_NAME = "llm-workbench"


def data_dir() -> Path:
    """Default workspace folder (`$XDG_DATA_HOME/llm-workbench`)."""
    return user_data_path(APP_NAME, appauthor=False)


def user_config_file() -> Path:
    """The user's settings file (`$XDG_CONFIG_HOME/llm-workbench/workbench.toml`)."""
    return user_config_path(APP_NAME, appauthor=False) / "workbench.toml"
