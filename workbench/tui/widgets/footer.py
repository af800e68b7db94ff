"""The key footer of the workbench's screens: Textual's `Footer`, rebuilt only when its keys change."""

from __future__ import annotations

from collections.abc import Hashable

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """A `Footer` that rebuilds at most once per refresh, and only when the keys it would show changed.

    Textual's footer rebuilds after every bindings update, and a screen updates them several times
    while it starts (focus set, screen resumed, focus settled): about 10 ms each. Focus moving between
    widgets with the same keys then costs nothing.
    """

    _rebuild_queued = False
    _shown: Hashable = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._rebuild_queued:
            self._rebuild_queued = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_queued = False
        if not self.is_attached:  # removed with its screen meanwhile
            return
        shown = self._keys_shown()
        if shown != self._shown:
            self._shown = shown
            await self.recompose()

    def _keys_shown(self) -> Hashable:
        """What `compose` reads: the shown bindings and the palette's, their state and key display."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return tuple(
            (key, binding, enabled, tooltip, self.app.get_key_display(binding))
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette
        )
