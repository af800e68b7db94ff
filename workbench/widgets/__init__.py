"""Reusable widgets of the workbench (each styles itself with DEFAULT_CSS)."""

from workbench.widgets.confirm import ConfirmScreen
from workbench.widgets.keys import KeysScreen
from workbench.widgets.mode_bar import ModeBar
from workbench.widgets.status_bar import StatusBar, StatusInfo, short_path
from workbench.widgets.transfer import TransferBar

__all__ = ["ConfirmScreen", "KeysScreen", "ModeBar", "StatusBar", "StatusInfo", "TransferBar", "short_path"]
