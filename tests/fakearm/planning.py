"""Planning a deployment: parameter values, the template's scope, and the resources it would create."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .evaluator import EvalError, Scope, evaluate, resource_id, try_evaluate
from .records import ArmResponseError, Group, Planned

BODY_KEYS = ("location", "sku", "kind", "identity", "tags", "properties")


def deployment_inputs(sub: str, group: Group, body: Any) -> tuple[dict[str, Any], Scope, list[Planned]]:
    """The template of a deployment request to `group`, its evaluation scope and its planned resources."""
    props = body.get("properties") or {}
    template = props.get("template") or {}
    values = {k: v.get("value") for k, v in (props.get("parameters") or {}).items()}
    unknown = sorted(set(values) - set(template.get("parameters") or {}))
    if unknown:
        raise ArmResponseError(
            400,
            "InvalidTemplate",
            f"Deployment template validation failed: 'The template parameters '{', '.join(unknown)}' in the "
            "parameters file are not valid; they are not present in the original template.'.",
        )
    scope = _scope(sub, group, template, values)
    return template, scope, _plan(scope, template)


def _scope(sub: str, group: Group, template: Mapping[str, Any], values: Mapping[str, Any]) -> Scope:
    scope = Scope(sub, group.name, group.location, {}, template.get("variables") or {})
    for name, spec in (template.get("parameters") or {}).items():
        if name in values:
            scope.parameters[name] = values[name]
        elif "defaultValue" in spec:
            scope.parameters[name] = evaluate(spec["defaultValue"], scope)
        else:
            raise ArmResponseError(
                400,
                "InvalidTemplate",
                f"Deployment template validation failed: 'The value for the template parameter '{name}' "
                "at line '1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file "
                "for usage details.'.",
            )
    return scope


def _plan(scope: Scope, template: Mapping[str, Any]) -> list[Planned]:
    planned = []
    try:
        for raw in template.get("resources") or []:
            if evaluate(raw.get("condition", True), scope) is False:
                continue
            kind, name = raw["type"], evaluate(raw["name"], scope)
            ident = _resource_id(scope, raw, kind, name)
            body = {key: try_evaluate(raw[key], scope) for key in BODY_KEYS if key in raw}
            planned.append(Planned(ident, kind, name, {"type": kind, "name": name, **body}))
    except EvalError as exc:
        raise ArmResponseError(400, "InvalidTemplate", f"Deployment template validation failed: '{exc}'.") from None
    return planned


def _resource_id(scope: Scope, raw: Mapping[str, Any], kind: str, name: str) -> str:
    if "scope" not in raw:
        return resource_id(scope, kind, *name.split("/"))
    parent = str(evaluate(raw["scope"], scope)).split("/")
    parent_id = resource_id(scope, "/".join([parent[0], *parent[1::2]]), *parent[2::2])
    return f"{parent_id}/providers/{kind}/{name}"
