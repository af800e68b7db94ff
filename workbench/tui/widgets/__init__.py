"""Reusable widgets of the workbench (each styles itself with DEFAULT_CSS).

The `?` screen (`keys.KeysScreen`) is imported where it opens: not on the start path."""

from workbench.tui.widgets.confirm import ConfirmScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.mode_bar import ModeBar
from workbench.tui.widgets.status_bar import StatusBar, StatusInfo, short_path
from workbench.tui.widgets.transfer import TransferBar

__all__ = [
    "ConfirmScreen",
    "KeyFooter",
    "ModeBar",
    "StatusBar",
    "StatusInfo",
    "TransferBar",
    "short_path",
]
