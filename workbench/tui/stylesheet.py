"""The app's stylesheet: Textual's, parsing its sources again only when the CSS variables change."""

from __future__ import annotations

from textual.css.stylesheet import Stylesheet


class VariablesStylesheet(Stylesheet):
    """Textual's stylesheet parses every style source again whenever the app refreshes its CSS, also
    with the variables it was parsed with, and empties its cache doing so: the first frame parsed
    everything three times (each mode's first screen refreshes the CSS). This one parses again only
    when the variables changed; a source added meanwhile is parsed alone, as Textual does on demand.

    Textual is pinned: this relies on its `_variables` and `_require_parse`.
    """

    variables_changed = False

    def set_variables(self, variables: dict[str, str]) -> None:
        if variables != self._variables:
            super().set_variables(variables)
            self.variables_changed = True

    def reparse(self) -> None:
        if self.variables_changed:
            self.variables_changed = False
            super().reparse()
        elif self._require_parse:
            self.parse()
