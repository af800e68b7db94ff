"""A Select whose option list is built when it is first opened, its current value drawn by one widget."""

from __future__ import annotations

from rich.console import RenderableType
from textual import on
from textual.content import Content
from textual.geometry import Size
from textual.widgets import Select
from textual.widgets._select import NoSelection, SelectCurrent, SelectOverlay, SelectType

ARROW_STYLE = "$foreground 50%"
"""The arrow's colour in `SelectCurrent`'s CSS."""


class CurrentValue(SelectCurrent):
    """`SelectCurrent` as one widget: it draws the label and the arrow itself, as its three child
    widgets would (the label cut with an ellipsis), so a row of five filters is 15 widgets fewer."""

    DEFAULT_CSS = """
    CurrentValue {
        color: $foreground 50%;
        &.-has-value { color: $foreground; }
    }
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield from ()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1  # the label does not wrap (SelectCurrent is a container: its height would be its children's)

    def update(self, label: RenderableType | NoSelection) -> None:
        self.label = label
        self.has_value = label is not Select.NULL
        self.refresh()

    def render(self) -> Content:
        label = self.placeholder if isinstance(self.label, NoSelection) else self.label
        expanded = isinstance(self.parent, Select) and self.parent.expanded
        text = Content(str(label)).truncate(max(self.content_size.width - 2, 0), ellipsis=True, pad=True)
        return Content.assemble(text, " ", ("▲" if expanded else "▼", ARROW_STYLE))


class LazySelect(Select[SelectType]):
    """`Select` without its hidden option list (an OptionList overlay) until first opened, and with
    its current value drawn by one widget (`CurrentValue`).

    A row of filters then costs two widgets per filter in the first frame instead of six. Keys,
    values and `Changed` messages are those of `Select` (textual is pinned: this relies on its
    `_select` internals).
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield CurrentValue(self.prompt)

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
