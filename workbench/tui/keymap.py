"""Textual bindings made from the action registry (`workbench.actions`)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from workbench.actions import Action, actions_for


def binding_of(action: Action) -> Binding:
    """The Textual binding of one action, with its id so that `[ui] keys` can remap it."""
    return Binding(action.keys, action.action, action.title, show=action.show, priority=action.priority, id=action.id)


def bindings_for(screen: str) -> list[BindingType]:
    """The `BINDINGS` of the class named `screen`: its rows of `workbench.actions.ACTIONS`, in order."""
    return [binding_of(action) for action in actions_for(screen)]
