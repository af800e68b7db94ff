"""Settings, one import away: the schema, the loader and the writer live in `workbench.config`.

Service clients are built from settings in one place only, the composition root `workbench.wiring`.
"""

from workbench.config.loading import (
    Layer,
    drop_secret_routing,
    load_settings,
    load_with_layers,
    parse_toml,
    source_of,
    untrusted_project,
)
from workbench.config.schema import (
    ENV_PREFIX,
    PROJECT_FILE,
    SECRET_ROUTING,
    ArtifactsSettings,
    AzureSettings,
    ChatSettings,
    HubSettings,
    ImagesSettings,
    RagSettings,
    RegistrySettings,
    Settings,
)
from workbench.config.show import effective_rows, ignored_rows, token_source
from workbench.config.targets import TargetSettings, TargetsSettings
from workbench.config.writing import infra_values, save_infra_outputs

__all__ = [
    "ENV_PREFIX",
    "PROJECT_FILE",
    "SECRET_ROUTING",
    "ArtifactsSettings",
    "AzureSettings",
    "ChatSettings",
    "HubSettings",
    "ImagesSettings",
    "Layer",
    "RagSettings",
    "RegistrySettings",
    "Settings",
    "TargetSettings",
    "TargetsSettings",
    "drop_secret_routing",
    "effective_rows",
    "ignored_rows",
    "infra_values",
    "load_settings",
    "load_with_layers",
    "parse_toml",
    "save_infra_outputs",
    "source_of",
    "token_source",
    "untrusted_project",
]
