"""A Select whose option list is built when it is first opened."""

from __future__ import annotations

from textual import on
from textual.widgets import Select
from textual.widgets._select import NoSelection, SelectCurrent, SelectOverlay, SelectType


class LazySelect(Select[SelectType]):
    """`Select` without its hidden option list (an OptionList overlay) until first opened.

    A row of filters then costs one widget tree per filter in the first frame instead of two. Keys,
    values and `Changed` messages are those of `Select` (textual is pinned: this relies on its
    `_select` internals).
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield SelectCurrent(self.prompt)

    @property
    def _overlay_built(self) -> bool:
        return bool(self.query(SelectOverlay))

    def _setup_options_renderables(self) -> None:
        if self._overlay_built:
            super()._setup_options_renderables()

    def _watch_value(self, value: SelectType | NoSelection) -> None:
        if self._overlay_built:
            super()._watch_value(value)
            return
        self._value = value
        current = self.query(SelectCurrent)
        if not current:
            return
        prompt = next((p for p, v in self._options if v == value), self.NULL) if value != self.NULL else self.NULL
        current.first().update(prompt)
        self.post_message(self.Changed(self, value))

    async def _build_overlay(self) -> None:
        """Mount the option list (once), filled and on the current value, as `Select` composes it."""
        if self._overlay_built:
            return
        overlay = SelectOverlay(type_to_search=self._type_to_search)
        overlay.compact = self.compact
        await self.mount(overlay)
        super()._setup_options_renderables()
        index = next((i for i, (_, v) in enumerate(self._options) if v == self.value), None)
        if self.value != self.NULL and index is not None:
            overlay.highlighted = index

    @on(SelectCurrent.Toggle)
    async def _toggle_after_build(self, event: SelectCurrent.Toggle) -> None:
        await self._build_overlay()  # then Select's own handler opens it

    async def action_show_overlay(self) -> None:  # type: ignore[override]  # Textual awaits async actions
        await self._build_overlay()
        super().action_show_overlay()
