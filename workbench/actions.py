"""The one registry of the app's actions: key bindings, command palette entries and the `?` screen.

Every binding in the app is a row of `ACTIONS`; screens take their `BINDINGS` from it
(`workbench.tui.keymap.bindings_for`), the command palette lists the rows that have a `palette` verb
(`workbench.tui.palette`), and the `?` screen names rows by their title and id. `[ui] keys` in the
settings remaps rows by id; `validate_keymap` refuses an id that is not here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from services.errors import ConfigError
from workbench.modes import MODES


@dataclass(frozen=True)
class Action:
    """One thing a user can do, with its default keys and where it is bound."""

    id: str
    """Binding id, the name `[ui] keys` remaps it by: `<area>.<verb>`, e.g. `models.download`."""
    keys: str
    """Default keys, comma-separated Textual key names (`"delete,x"`)."""
    title: str
    """Short label in the footer and on the `?` screen."""
    area: str
    """The mode it belongs to (`workbench.modes.MODES`), or `app` for the shell and shared dialogs."""
    screen: str
    """Class name of the screen, pane or app whose `BINDINGS` hold it."""
    action: str
    """Textual action run on that class, e.g. `download` or `show_tab('hub')`."""
    description: str
    """What it does, in one sentence (the palette's help line)."""
    show: bool = True
    """Shown in the footer."""
    priority: bool = False
    """Checked before the focused widget's own bindings."""
    palette: str | None = None
    """Verb of its command palette entry, titled `"<area>: <palette>"`; None: not in the palette."""
    palette_action: str | None = None
    """Action the palette runs on the area's mode screen (or the app), when it is not `action`."""

    @property
    def palette_title(self) -> str:
        return f"{self.area}: {self.palette}"

    @property
    def command(self) -> str:
        """The action string the command palette runs on the app."""
        action = self.palette_action or self.action
        return action if self.area == "app" else f"in_mode({self.area!r}, {action!r})"


APP_ACTIONS: tuple[Action, ...] = (
    *(
        Action(
            mode.binding_id,
            mode.key,
            mode.title,
            "app",
            "WorkbenchApp",
            f"switch_mode('{mode.id}')",
            mode.summary,
            show=False,
            palette=f"Switch to {mode.title}",
        )
        for mode in MODES
    ),
    *(
        Action(
            f"{mode.binding_id}-anywhere",
            f"alt+{mode.key}",
            f"{mode.title}, from a text box too",
            "app",
            "WorkbenchApp",
            f"switch_mode('{mode.id}')",
            f"Switch to {mode.title} even while a text box has the focus",
            show=False,
            priority=True,  # a terminal sends alt+1 as a printable "1" too: the box must not get it
        )
        for mode in MODES
    ),
    Action(
        "app.keys", "question_mark", "Keys", "app", "WorkbenchApp", "keys", "List every key of the current screen",
        palette="Show keys",
    ),
    Action("keys.close", "escape,q,question_mark", "Close", "app", "KeysScreen", "dismiss", "Close the list of keys"),
    Action("confirm.yes", "y", "Confirm", "app", "ConfirmScreen", "confirm", "Answer yes to the question"),
    Action("confirm.no", "n,escape", "Cancel", "app", "ConfirmScreen", "cancel", "Answer no to the question"),
    Action("prompt.cancel", "escape", "Cancel", "app", "PromptScreen", "cancel", "Close the question unanswered"),
    Action(
        "typed-confirm.cancel", "escape", "Cancel", "app", "TypedConfirmScreen", "cancel",
        "Close the question without deleting",
    ),
    Action(
        "tabs.previous", "left", "Previous tab", "app", "TabStrip", "previous_tab", "Show the tab before this one",
        show=False,
    ),
    Action("tabs.next", "right", "Next tab", "app", "TabStrip", "next_tab", "Show the tab after this one", show=False),
)  # fmt: skip

MODELS_ACTIONS: tuple[Action, ...] = (
    Action(
        "models.search", "slash", "Search", "models", "ModelsScreen", "search", "Search the Hugging Face Hub",
        palette="Search",
    ),
    Action(
        "models.leave-input", "escape", "Back to the list", "models", "ModelsScreen", "leave_input",
        "Leave a text box for the list of the current tab", show=False,
    ),
    Action(
        "models.hub", "h", "Hub", "models", "ModelsScreen", "show_tab('hub')", "Show the Hub tab",
        palette="Show hub",
    ),
    Action(
        "models.local", "l", "Local", "models", "ModelsScreen", "show_tab('local')",
        "Show the models in the HF cache", palette="Show local",
    ),
    Action(
        "models.download", "d", "Download", "models", "HubPane", "download",
        "Download the highlighted hub model into the HF cache", palette="Download",
    ),
    Action(
        "models.cancel", "c,escape", "Cancel download", "models", "HubPane", "cancel_download",
        "Stop the running download", show=False,
    ),
    Action(
        "models.delete", "delete,x", "Delete", "models", "LocalPane", "delete",
        "Delete the selected repo or revision from the HF cache", palette="Delete",
    ),
    Action("models.refresh", "r", "Refresh", "models", "LocalPane", "reload", "Read the HF cache again"),
)  # fmt: skip

FINETUNE_ACTIONS: tuple[Action, ...] = (
    Action(
        "finetune.new", "n", "New job", "finetune", "FinetuneScreen", "new_job",
        "Configure a fine-tune job, preflight it and launch it", palette="New job",
    ),
    Action(
        "finetune.open", "enter", "Open", "finetune", "FinetuneScreen", "open_detail",
        "Show the highlighted job on the whole screen", priority=True,
    ),
    Action(
        "finetune.close", "escape", "Back to jobs", "finetune", "FinetuneScreen", "close_detail",
        "Go back from a job's detail to the list of jobs",
    ),
    Action(
        "finetune.cancel", "c", "Cancel job", "finetune", "FinetuneScreen", "cancel_job",
        "Stop the highlighted fine-tune job (it saves a checkpoint)", palette="Cancel job",
    ),
    Action(
        "finetune.resume", "r", "Resume", "finetune", "FinetuneScreen", "resume_job",
        "Continue a cancelled or failed job from its checkpoint", palette="Resume job",
    ),
    Action(
        "finetune.merge", "m", "Merge adapter", "finetune", "FinetuneScreen", "merge_job",
        "Fold the highlighted job's adapter into its base model", palette="Merge adapter",
    ),
    Action(
        "finetune.playground", "p", "Open in Playground", "finetune", "FinetuneScreen", "open_in_playground",
        "Compare the highlighted job's base model with base + its adapter", palette="Open in Playground",
    ),
    Action(
        "finetune-form.preflight", "ctrl+n", "Preflight", "finetune", "NewJobScreen", "preflight",
        "Check the form, then show the plan page and make the plan", priority=True,
    ),
    Action(
        "finetune-form.launch", "l", "Launch", "finetune", "NewJobScreen", "launch",
        "Launch the job from the preflight page when the plan fits",
    ),
    Action(
        "finetune-form.back", "escape", "Back", "finetune", "NewJobScreen", "back",
        "From the plan back to the form; from the form, close without launching",
    ),
)  # fmt: skip

PLAYGROUND_ACTIONS: tuple[Action, ...] = (
    Action(
        "playground.ask", "i", "Ask", "playground", "PlaygroundScreen", "ask",
        "Ask the chat variant(s) a question", palette="Ask",
    ),
    Action("playground.chat", "f2", "Chat", "playground", "PlaygroundScreen", "show_tab('chat')", "Show the Chat tab"),
    Action(
        "playground.collections", "f3", "Collections", "playground", "PlaygroundScreen", "show_tab('collections')",
        "Show the Collections tab",
    ),
    Action(
        "playground.suites", "f4", "Suites", "playground", "PlaygroundScreen", "show_tab('suites')",
        "Show the Suites tab",
    ),
    Action(
        "playground.leave-input", "escape", "Leave the text box", "playground", "PlaygroundScreen", "leave_input",
        "Leave a text box for the rest of the tab", show=False,
    ),
    Action(
        "playground.cancel", "escape", "Stop answer", "playground", "ChatPane", "cancel",
        "Stop the answer being generated (the text so far stays)",
    ),
    Action(
        "playground.compare", "ctrl+b", "Compare", "playground", "ChatPane", "compare",
        "Show or hide variant B beside variant A", palette="Compare",
    ),
    Action(
        "playground.context", "ctrl+o", "Context sent", "playground", "ChatPane", "show_context",
        "Show the prompt each variant sent and the chunks retrieved for it",
    ),
    Action(
        "playground.save-case", "ctrl+s", "Save as case", "playground", "ChatPane", "save_case",
        "Append the last chat exchange to a suite file as a case", palette="Save as case",
    ),
    Action("playground.clear", "ctrl+l", "Clear", "playground", "ChatPane", "clear", "Forget the conversation"),
    Action(
        "playground.ingest", "ctrl+g", "Ingest", "playground", "CollectionsPane", "ingest",
        "Ingest the path in the Collections form into its collection", palette="Ingest",
    ),
    Action(
        "playground.ingest-cancel", "escape", "Stop ingest", "playground", "CollectionsPane", "cancel_ingest",
        "Stop the running ingest",
    ),
    Action(
        "playground.delete-collection", "delete", "Delete collection", "playground", "CollectionsPane",
        "delete_collection", "Delete the selected collection",
    ),
    Action(
        "playground.run-suite", "ctrl+r", "Run suite", "playground", "SuitesPane", "run",
        "Run the prompt suite in the Suites tab", palette="Run suite", palette_action="run_suite",
    ),
    Action(
        "playground.run-cancel", "escape", "Stop run", "playground", "SuitesPane", "cancel_run",
        "Stop the running suite",
    ),
    Action(
        "playground.context-close", "escape,q", "Close", "playground", "ContextScreen", "close",
        "Close the context view",
    ),
    Action(
        "playground.save-cancel", "escape", "Cancel", "playground", "SaveCaseScreen", "cancel",
        "Close without saving the case",
    ),
)  # fmt: skip

ARTIFACTS_ACTIONS: tuple[Action, ...] = (
    Action(
        "artifacts.workspace", "l", "Workspace", "artifacts", "ArtifactsScreen", "show('workspace')",
        "List the versions in the workspace",
    ),
    Action(
        "artifacts.remote", "r", "Remote", "artifacts", "ArtifactsScreen", "show('remote')",
        "List the versions in remote storage", palette="Show remote",
    ),
    Action(
        "artifacts.push", "p", "Push", "artifacts", "ArtifactsScreen", "push",
        "Publish the highlighted workspace version to remote storage", palette="Push",
    ),
    Action(
        "artifacts.pull", "u", "Pull", "artifacts", "ArtifactsScreen", "pull",
        "Fetch the highlighted remote version into the workspace", palette="Pull",
    ),
    Action(
        "artifacts.label", "t", "Label", "artifacts", "ArtifactsScreen", "label",
        "Point a label at the highlighted version", palette="Label",
    ),
    Action(
        "artifacts.undo-label", "z", "Undo label", "artifacts", "ArtifactsScreen", "undo_label",
        "Move a label of the highlighted version back to where its last move took it from",
    ),
    Action(
        "artifacts.delete", "x", "Delete", "artifacts", "ArtifactsScreen", "delete",
        "Delete the highlighted version, after asking",
    ),
    Action(
        "artifacts.refresh", "ctrl+r", "Refresh", "artifacts", "ArtifactsScreen", "refresh", "List the versions again",
    ),
    Action(
        "artifacts.cancel", "escape", "Cancel transfer", "artifacts", "ArtifactsScreen", "cancel",
        "Stop the running push or pull", show=False,
    ),
)  # fmt: skip

IMAGES_ACTIONS: tuple[Action, ...] = (
    Action(
        "images.build", "b", "Build", "images", "ImagesScreen", "build",
        "Build the highlighted app into a Docker image", palette="Build",
    ),
    Action(
        "images.push", "p", "Push", "images", "ImagesScreen", "push",
        "Push the highlighted app's image to the registry", palette="Push",
    ),
    Action("images.refresh", "r", "Refresh", "images", "ImagesScreen", "refresh", "List the apps and images again"),
    Action(
        "images.cancel", "escape", "Cancel", "images", "ImagesScreen", "cancel", "Stop the running build or push",
        show=False,
    ),
)  # fmt: skip

DEPLOY_ACTIONS: tuple[Action, ...] = (
    Action(
        "deploy.deploy", "d", "Deploy", "deploy", "DeployScreen", "deploy",
        "Deploy a version of the selected app to the target, after asking",
    ),
    Action(
        "deploy.rollback", "b", "Roll back", "deploy", "DeployScreen", "rollback",
        "Serve the previous release of the selected app on the target again, after asking",
    ),
    Action(
        "deploy.refresh", "ctrl+r", "Refresh", "deploy", "DeployScreen", "refresh", "Read the target's status again",
    ),
)  # fmt: skip

INFRA_ACTIONS: tuple[Action, ...] = (
    Action(
        "infra.validate", "v", "Validate", "infra", "InfraScreen", "validate", "Validate the environment's template",
    ),
    Action(
        "infra.what-if", "w", "What-if", "infra", "InfraScreen", "what_if",
        "Ask Azure what deploying the environment would change",
    ),
    Action("infra.up", "u", "Up", "infra", "InfraScreen", "up", "Deploy the environment, after asking"),
    Action("infra.outputs", "o", "Outputs", "infra", "InfraScreen", "outputs", "Show the deployment's outputs"),
    Action(
        "infra.down", "D", "Down", "infra", "InfraScreen", "down",
        "Delete the environment's resource group and everything in it, after typing its name",
    ),
    Action(
        "infra.cancel", "escape", "Cancel deploy", "infra", "InfraScreen", "cancel", "Stop the running deployment",
        show=False,
    ),
)  # fmt: skip

ACTIONS: tuple[Action, ...] = (
    *MODELS_ACTIONS,
    *FINETUNE_ACTIONS,
    *PLAYGROUND_ACTIONS,
    *ARTIFACTS_ACTIONS,
    *IMAGES_ACTIONS,
    *DEPLOY_ACTIONS,
    *INFRA_ACTIONS,
    *APP_ACTIONS,
)
"""Every action of the app. Within one screen in the order of its footer; the palette lists them in this order."""

ACTION_BY_ID: dict[str, Action] = {action.id: action for action in ACTIONS}


def actions_for(screen: str) -> tuple[Action, ...]:
    """The actions bound on the class named `screen`, in footer order."""
    return tuple(action for action in ACTIONS if action.screen == screen)


def palette_actions() -> tuple[Action, ...]:
    """The actions listed in the command palette."""
    return tuple(action for action in ACTIONS if action.palette is not None)


def validate_keymap(keys: Mapping[str, str], *, origin: str | None = None) -> None:
    """Refuse a `[ui] keys` table that names a binding id not in `ACTIONS`: a `ConfigError` (exit 2)
    naming every unknown id and the known ids nearest to each. `origin`: the settings file or
    "environment" it came from, put first in the message as for every other setting."""
    unknown = sorted(set(keys) - set(ACTION_BY_ID))
    if not unknown:
        return
    names = ", ".join(repr(binding_id) for binding_id in unknown)
    plural = "s" if len(unknown) > 1 else ""
    where = f"{origin}: " if origin else ""
    raise ConfigError(f"{where}ui.keys: unknown binding id{plural} {names}", hint=_keymap_hint(unknown))


def _keymap_hint(unknown: list[str]) -> str:
    guesses = [f"{name} → {', '.join(near)}" for name in unknown if (near := nearest_ids(name))]
    nearest = f"nearest known ids: {'; '.join(guesses)}. " if guesses else ""
    return f"{nearest}Press ? in the app to list every binding id."


def nearest_ids(name: str, limit: int = 3) -> list[str]:
    """The known binding ids closest to `name`, best first."""
    return difflib.get_close_matches(name, ACTION_BY_ID, n=limit, cutoff=0.6)
