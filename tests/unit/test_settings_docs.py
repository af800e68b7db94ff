"""Settings docstrings: read on demand (not while the schema classes are built), the same text pydantic would
read, one on every field, and shown in the hint of a bad value."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic._internal._docs_extraction import extract_docstrings_from_cls

from services.errors import ConfigError
from workbench.config.docs import field_doc
from workbench.config.section import Section
from workbench.settings import Settings, load_settings


def models_in(annotation: object) -> set[type[BaseModel]]:
    """Every pydantic model an annotation names, through `X | None`, `dict[str, X]` and `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation, *(m for f in annotation.model_fields.values() for m in models_in(f.annotation))}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return {m for arg in typing.get_args(annotation) for m in models_in(arg)}
    return set()


SCHEMA = sorted(models_in(Settings), key=lambda model: model.__qualname__)


def test_the_schema_does_not_read_its_source_while_it_is_built() -> None:
    assert not Settings.model_config.get("use_attribute_docstrings")
    assert not Section.model_config.get("use_attribute_docstrings")
    code = "import sys, workbench.settings as s; s.load_settings(); print('workbench.config.docs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("model", SCHEMA, ids=lambda model: model.__qualname__)
def test_every_field_has_the_docstring_pydantic_would_read(model: type[BaseModel]) -> None:
    expected = extract_docstrings_from_cls(model, use_inspect=True)
    for name in model.model_fields:
        assert field_doc(model, name), f"{model.__qualname__}.{name} has no docstring"
        if name in inspect.get_annotations(model):
            assert field_doc(model, name) == expected[name]


def test_a_bad_value_hint_quotes_the_fields_docstring(tmp_path: Path) -> None:
    bad = tmp_path / "workbench.toml"
    bad.write_text('[hub]\ntimeout = "soon"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(project_file=bad, user_file=tmp_path / "none.toml", environ={})
    assert (
        err.value.message
        == f"{bad}: hub.timeout: input should be a valid number, unable to parse string as a number (got 'soon')"
    )
    assert err.value.hint == "expected float: Seconds to wait for the hub before showing it as offline."


def test_an_unknown_field_has_no_docstring() -> None:
    assert field_doc(Settings, "nope") == ""
