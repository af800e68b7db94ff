"""Command palette commands, titled "area: verb"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from screens.catalog import MODES


@dataclass(frozen=True)
class Command:
    """A command palette entry: `action` runs on the app."""

    title: str
    help: str
    action: str


COMMANDS: tuple[Command, ...] = (
    Command("models: Search", "Search the Hugging Face Hub", "in_mode('models', 'search')"),
    Command(
        "models: Download", "Download the highlighted hub model into the HF cache", "in_mode('models', 'download')"
    ),
    Command("models: Delete", "Delete the selected repo or revision from the HF cache", "in_mode('models', 'delete')"),
    Command("models: Show hub", "Show the Hub tab", "in_mode('models', \"show_tab('hub')\")"),
    Command("models: Show local", "Show the models in the HF cache", "in_mode('models', \"show_tab('local')\")"),
    Command(
        "finetune: New job", "Configure a fine-tune job, preflight it and launch it", "in_mode('finetune', 'new_job')"
    ),
    Command(
        "finetune: Cancel job",
        "Stop the highlighted fine-tune job (it saves a checkpoint)",
        "in_mode('finetune', 'cancel_job')",
    ),
    Command(
        "finetune: Resume job",
        "Continue a cancelled or failed job from its checkpoint",
        "in_mode('finetune', 'resume_job')",
    ),
    Command(
        "finetune: Merge adapter",
        "Fold the highlighted job's adapter into its base model",
        "in_mode('finetune', 'merge_job')",
    ),
    Command(
        "finetune: Open in Playground",
        "Compare the highlighted job's base model with base + its adapter",
        "in_mode('finetune', 'open_in_playground')",
    ),
    Command(
        "artifacts: Push", "Publish the highlighted workspace version to remote storage", "in_mode('artifacts', 'push')"
    ),
    Command(
        "artifacts: Pull", "Fetch the highlighted remote version into the workspace", "in_mode('artifacts', 'pull')"
    ),
    Command("artifacts: Label", "Point a label at the highlighted version", "in_mode('artifacts', 'label')"),
    Command(
        "artifacts: Show remote", "List the versions in remote storage", "in_mode('artifacts', \"show('remote')\")"
    ),
    Command("playground: Ask", "Ask the chat variant(s) a question", "in_mode('playground', 'ask')"),
    Command("playground: Compare", "Show or hide variant B beside variant A", "in_mode('playground', 'compare')"),
    Command(
        "playground: Ingest",
        "Ingest the path in the Collections form into its collection",
        "in_mode('playground', 'ingest')",
    ),
    Command("playground: Run suite", "Run the prompt suite in the Suites tab", "in_mode('playground', 'run_suite')"),
    Command(
        "playground: Save as case",
        "Append the last chat exchange to a suite file as a case",
        "in_mode('playground', 'save_case')",
    ),
    Command("images: Build", "Build the highlighted app into a Docker image", "in_mode('images', 'build')"),
    Command("images: Push", "Push the highlighted app's image to the registry", "in_mode('images', 'push')"),
    Command("app: Show keys", "List every key of the current screen", "keys"),
    *(Command(f"app: Switch to {mode.title}", mode.summary, f"switch_mode('{mode.id}')") for mode in MODES),
)


class WorkbenchCommands(Provider):
    """The workbench's own commands (Textual's system commands stay alongside)."""

    def _runner(self, command: Command) -> Callable[[], object]:
        return partial(self.app.run_action, command.action)

    async def discover(self) -> Hits:
        for command in COMMANDS:
            yield DiscoveryHit(command.title, self._runner(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), self._runner(command), help=command.help)
