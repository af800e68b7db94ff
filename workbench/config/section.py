"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: unknown keys are errors, every field documented (by the string under it, read
    on demand by `workbench.config.docs.field_doc`)."""

    model_config = ConfigDict(extra="forbid")
