"""The key footer of the workbench's screens: the keys Textual's `Footer` shows, drawn as one line."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget

KEY_STYLE = "bold $footer-key-foreground on $footer-key-background"
DESCRIPTION_STYLE = "$footer-description-foreground on $footer-description-background"
ITEM_STYLE = "on $footer-item-background"
HOVER_STYLE = "$footer-key-foreground on $block-hover-background"
PALETTE_EDGE = ("▏", "$foreground 20%")
"""The left edge of the command palette's key (Textual's `border-left: vkey $foreground 20%`)."""


@dataclass(frozen=True)
class FooterItem:
    """One key the footer shows: the key it presses, how it is shown, what it does."""

    key: str
    display: str
    description: str
    enabled: bool
    tooltip: str


@dataclass(frozen=True)
class Shown:
    """Everything the footer draws: the screen's keys, then the command palette's at the right."""

    items: tuple[FooterItem, ...] = ()
    palette: FooterItem | None = None


class KeyFooter(Widget, can_focus=False):
    """The keys of the screen's active bindings, drawn as Textual's `Footer` draws them.

    Textual's footer is a container with a widget per key and builds them again after each bindings
    update (a screen updates them several times while it starts): this one widget draws one line,
    again only when the keys it shows change. A click on a key presses it (a disabled one rings the
    bell); a key under the mouse is highlighted and shows its tooltip. Keys that do not fit are left
    out (`?` lists them all); the command palette's key stays at the right.
    """

    ALLOW_SELECT = False
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    """

    shown: reactive[Shown] = reactive(Shown)
    hovered: reactive[FooterItem | None] = reactive(None)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.shown = self.keys_of(screen)  # a reactive: redrawn only when it changed

    def keys_of(self, screen: Screen[object]) -> Shown:
        """The keys `Footer` would show: the first binding of each action with `show`, and the palette's."""
        app, items, actions = self.app, [], set()
        for _, binding, enabled, tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                items.append(
                    FooterItem(binding.key, app.get_key_display(binding), binding.description, enabled, tooltip)
                )
        palette = None
        if app.ENABLE_COMMAND_PALETTE and (active := screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)):
            _, binding, enabled, tooltip = active
            help_text = binding.tooltip or binding.description
            palette = FooterItem(binding.key, app.get_key_display(binding), binding.description, enabled, help_text)
        return Shown(tuple(items), palette)

    def spans(self) -> list[tuple[int, int, FooterItem, Content]]:
        """Where each key is drawn in a line as wide as the footer: (start, end, key, its text)."""
        width, shown, spans, x = self.size.width, self.shown, [], 0
        right = self._palette_text(shown.palette) if shown.palette else Content("")
        for item in shown.items:
            text = self._text(item)
            if x + text.cell_length > width - right.cell_length:
                break
            spans.append((x, x + text.cell_length, item, text))
            x += text.cell_length
        if shown.palette is not None:
            spans.append((width - right.cell_length, width, shown.palette, right))
        return spans

    def render(self) -> Content:
        parts: list[str | Content] = []
        x = 0
        for start, end, _, text in self.spans():
            parts += [" " * (start - x), text]
            x = end
        return Content.assemble(*parts)

    def _text(self, item: FooterItem) -> Content:
        if not item.description:
            return self._styled(item, Content.styled(item.display, KEY_STYLE))
        return self._styled(
            item, Content.assemble((f" {item.display} ", KEY_STYLE), (f"{item.description} ", DESCRIPTION_STYLE))
        )

    def _palette_text(self, item: FooterItem) -> Content:
        """Compact, after an edge, with a blank at the right (Textual's `FooterKey.-command-palette`)."""
        text = Content.assemble(
            PALETTE_EDGE, (item.display, KEY_STYLE), (f" {item.description}", DESCRIPTION_STYLE), " "
        )
        return self._styled(item, text)

    def _styled(self, item: FooterItem, text: Content) -> Content:
        text = text.stylize_before(HOVER_STYLE if item == self.hovered else ITEM_STYLE)
        return text if item.enabled else text.stylize("dim")

    def _item_at(self, x: int) -> FooterItem | None:
        return next((item for start, end, item, _ in self.spans() if start <= x < end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self.hovered = self._item_at(event.x)
        self.tooltip = self.hovered.tooltip if self.hovered and self.hovered.tooltip else None

    def on_leave(self) -> None:
        self.hovered = None

    def on_mouse_down(self, event: events.MouseDown) -> None:
        item = self._item_at(event.x)
        if item is not None and not item.enabled:
            self.app.bell()
        elif item is not None:
            self.app.simulate_key(item.key)
