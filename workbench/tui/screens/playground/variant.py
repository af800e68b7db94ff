"""The settings of one chat variant in the Playground's side bar: backend, model, prompts, RAG, generation."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, TextArea
from textual.widgets.select import InvalidSelectValueError

from services.errors import UsageError
from services.finetune.adapters import Adapter

BACKENDS = [("local model", "local"), ("OpenAI-compatible endpoint", "openai")]


def _row(label: str, widget: Any, classes: str = "") -> Horizontal:
    return Horizontal(Label(label, classes="variant-label"), widget, classes=f"variant-row {classes}".strip())


def _number(text: str, what: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, not '{text}'") from None


class VariantForm(Vertical):
    """One variant; `values()` returns the keyword arguments of a `services.chat.variant.Variant`."""

    def __init__(self, letter: str, *, template: str, id: str | None = None) -> None:
        super().__init__(id=id, classes="-local")
        self.letter = letter
        self.template = template

    def _wid(self, name: str) -> str:
        return f"{self.letter}-{name}"

    def compose(self) -> ComposeResult:
        yield _row("backend", Select(BACKENDS, value="local", allow_blank=False, compact=True, id=self._wid("backend")))
        yield _row("model", Select([], prompt="no cached model", compact=True, id=self._wid("model")), "-only-local")
        yield _row("adapter", Select([], prompt="no adapter", compact=True, id=self._wid("adapter")), "-only-local")
        yield _row(
            "endpoint",
            Input(placeholder="[chat.endpoints] name, or a URL", compact=True, id=self._wid("endpoint")),
            "-only-openai",
        )
        yield _row(
            "model name",
            Input(placeholder="served model name", compact=True, id=self._wid("remote-model")),
            "-only-openai",
        )
        yield _row(
            "key env",
            Input(placeholder="from the named endpoint", compact=True, id=self._wid("key-env")),
            "-only-openai",
        )
        yield _row("system", Input(placeholder="system prompt", compact=True, id=self._wid("system")))
        yield Label("template ({context}, {question})", classes="variant-caption")
        yield TextArea(
            self.template, id=self._wid("template"), classes="variant-template", compact=True, soft_wrap=True
        )
        yield _row("RAG", Checkbox("", compact=True, id=self._wid("rag")))
        yield _row("collection", Input(placeholder="collection name", compact=True, id=self._wid("collection")))
        yield _row("k", Input("4", type="integer", compact=True, id=self._wid("k")))
        yield _row("max tokens", Input("64", type="integer", compact=True, id=self._wid("max-tokens")))
        yield _row("temperature", Input("0.0", type="number", compact=True, id=self._wid("temperature")))

    def set_models(self, models: list[str], adapters: list[Adapter]) -> None:
        """Fill the model and adapter choices (the first model is chosen when none is)."""
        model = self.query_one(f"#{self._wid('model')}", Select)
        chosen = model.value
        model.set_options([(m, m) for m in models])
        if chosen in models:
            model.value = chosen
        elif models:
            model.value = models[0]
        adapter = self.query_one(f"#{self._wid('adapter')}", Select)
        kept = adapter.value
        adapter.set_options([(a.version, str(a.path)) for a in adapters])
        if kept in {str(a.path) for a in adapters}:
            adapter.value = kept

    def choose(self, model: str, adapter: str | None) -> None:
        """Select `model` and `adapter` (None: no adapter) where the choices offer them."""
        for name, value in (("model", model), ("adapter", adapter)):
            select = self.query_one(f"#{self._wid(name)}", Select)
            with suppress(InvalidSelectValueError):  # not offered (any more): keep what is selected
                select.value = Select.NULL if value is None else value

    def set_field(self, name: str, value: Any) -> None:
        """Set one field by its short name ("model", "adapter", "rag", "collection", ...)."""
        widget = self.query_one(f"#{self._wid(name)}")
        if isinstance(widget, TextArea):
            widget.text = str(value)
        else:
            widget.value = value  # type: ignore[attr-defined]

    @on(Select.Changed)
    def _backend_changed(self, event: Select.Changed) -> None:
        if event.select.id == self._wid("backend"):
            self.set_class(event.value == "openai", "-openai")
            self.set_class(event.value != "openai", "-local")

    def _text(self, name: str) -> str:
        return self.query_one(f"#{self._wid(name)}", Input).value.strip()

    def _select(self, name: str) -> str | None:
        value = self.query_one(f"#{self._wid(name)}", Select).value
        return None if value is Select.NULL else str(value)

    def values(self, name: str) -> dict[str, Any]:
        """The variant as typed, named `name`; UsageError for fields that are not numbers."""
        backend = self._select("backend") or "local"
        local = backend == "local"
        values: dict[str, Any] = {
            "name": name,
            "backend": backend,
            "model": self._select("model") if local else self._text("remote-model") or None,
            "adapter": self._select("adapter") if local else None,
            "endpoint": None if local else self._text("endpoint") or None,
            "api_key_env": None if local else self._text("key-env") or None,
            "system_prompt": self._text("system"),
            "template": self.query_one(f"#{self._wid('template')}", TextArea).text,
            "params": {
                "max_new_tokens": _number(self._text("max-tokens") or "64", "max tokens", int),
                "temperature": _number(self._text("temperature") or "0", "temperature", float),
            },
        }
        if self.query_one(f"#{self._wid('rag')}", Checkbox).value:
            values["rag"] = {"collection": self._text("collection"), "k": _number(self._text("k") or "4", "k", int)}
        return values

    def describe(self) -> str:
        """A short title for the transcript column, e.g. "tiny-llama + demo-run · RAG"."""
        backend = self._select("backend")
        if backend == "openai":
            what = f"{self._text('remote-model') or 'model'} @ {self._text('endpoint') or 'endpoint'}"
        else:
            what = (self._select("model") or "no model").rsplit("/", 1)[-1]
            adapter = self._select("adapter")
            what += f" + {adapter.rstrip('/').split('/')[-2]}" if adapter else ""
        rag = self.query_one(f"#{self._wid('rag')}", Checkbox).value
        return f"{self.letter.upper()}: {what}" + (f" · RAG {self._text('collection')}" if rag else "")
