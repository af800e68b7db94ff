"""Reusable widgets of the workbench (each styles itself with DEFAULT_CSS)."""

from workbench.tui.widgets.confirm import ConfirmScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.keys import KeysScreen
from workbench.tui.widgets.mode_bar import ModeBar
from workbench.tui.widgets.status_bar import StatusBar, StatusInfo, short_path
from workbench.tui.widgets.transfer import TransferBar

__all__ = [
    "ConfirmScreen",
    "KeyFooter",
    "KeysScreen",
    "ModeBar",
    "StatusBar",
    "StatusInfo",
    "TransferBar",
    "short_path",
]
