"""The modes of the app: one per area, in the order of their number keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """A top-level area of the app."""

    id: str
    """Textual mode name; its key binding id is `mode.<id>`."""
    title: str
    key: str
    """Default key that switches to the mode (remappable through `ui.keys`)."""
    summary: str
    """What the mode is for, in one sentence."""

    @property
    def binding_id(self) -> str:
        return f"mode.{self.id}"


MODES: tuple[Mode, ...] = (
    Mode(
        "models",
        "Models",
        "1",
        "Browse the Hugging Face Hub and the local HF cache; check licence, access, size and fit; download and delete.",
    ),
    Mode(
        "finetune",
        "Fine-tune",
        "2",
        "Configure, preflight, launch and watch PEFT fine-tunes (LoRA, QLoRA with bitsandbytes); "
        "jobs keep running when the app closes.",
    ),
    Mode(
        "playground",
        "Playground",
        "3",
        "Chat with base and fine-tuned models, build and inspect RAG collections, run prompt test suites.",
    ),
    Mode(
        "artifacts",
        "Artifacts",
        "4",
        "Adapters, merged models, datasets and collections: versions with lineage and labels, pushed to "
        "and pulled from Azure Blob Storage.",
    ),
    Mode("images", "Images", "5", "Build the team's LLM apps into Docker images and push them to a registry."),
    Mode(
        "deploy",
        "Deploy",
        "6",
        "Deploy an app version to a target over SSH: health-gated, zero-downtime switch, one-key rollback, history.",
    ),
    Mode("infra", "Infra", "7", "Validate, preview, deploy and tear down the ARM templates in infra/."),
)

MODE_BY_ID = {mode.id: mode for mode in MODES}
