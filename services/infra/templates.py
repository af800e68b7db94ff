"""The ARM templates in `infra/` validated offline: no credentials, no network (loading is `services.infra.inputs`).

Checks: the template's JSON structure (resource-group scope), every parameter and variable it
references exists, the environment's parameter file against the template's parameters (names,
types, allowed values, lengths, ranges, no secret values in files), the cloud-init files against
the copies embedded in the template's variables, and our policies (`services.infra.policy`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.errors import InfraInvalidError, NextStep
from services.infra.cloud_init import cloud_init_drift
from services.infra.expr import PARAM_REF, VAR_REF, is_expression, references
from services.infra.findings import Finding, ValidationReport
from services.infra.inputs import SSH_KEY_PARAMETER, InfraInputs, declared_parameters, load_inputs, read_json
from services.infra.policy import check_template

TEMPLATE_SCHEMA = "deploymentTemplate.json"

PARAMS_SCHEMA = "deploymentParameters.json"

PARAM_TYPES = {"string", "securestring", "int", "bool", "object", "secureobject", "array"}

SECURE_TYPES = {"securestring", "secureobject"}

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

DEPLOY_TIME = frozenset({SSH_KEY_PARAMETER})

DOCUMENTATION_NETS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def validate_inputs(
    inputs: InfraInputs, *, deploy: bool = False, cloud_init_dir: Path | None = None
) -> ValidationReport:
    """Check the template, the parameter values and the policies; `deploy` makes a missing
    deploy-time value (the SSH key) an error instead of a warning."""
    template_where = str(inputs.template_path)
    findings = [
        *template_findings(inputs.template, template_where),
        *parameter_findings(inputs, deploy=deploy),
    ]
    if cloud_init_dir is not None and cloud_init_dir.is_dir():
        findings += cloud_init_drift(inputs.template, cloud_init_dir, template_where)
    violations = check_template(inputs.template, inputs.values)
    return ValidationReport(inputs.env, tuple(findings), tuple(violations))


def template_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    """Structure of a resource-group-scope template and its parameter/variable references."""
    found = _header_findings(template, where)
    found += _parameter_spec_findings(template, where)
    found += _resource_findings(template, where)
    found += _output_findings(template, where)
    found += _reference_findings(template, where)
    return found


def _header_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    schema = str(template.get("$schema", ""))
    if TEMPLATE_SCHEMA not in schema or "subscriptionDeploymentTemplate" in schema:
        found.append(Finding("error", f"{where}: $schema", f"expected a resource-group {TEMPLATE_SCHEMA} schema"))
    if not isinstance(template.get("contentVersion"), str):
        found.append(Finding("error", f"{where}: contentVersion", 'missing (e.g. "1.0.0.0")'))
    for key in ("parameters", "variables", "outputs"):
        if not isinstance(template.get(key, {}), dict):
            found.append(Finding("error", f"{where}: {key}", "must be an object"))
    return found


def _parameter_spec_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    for name, spec in (template.get("parameters") or {}).items():
        at = f"{where}: parameters.{name}"
        kind = str(spec.get("type", "")).lower() if isinstance(spec, Mapping) else ""
        if kind not in PARAM_TYPES:
            found.append(Finding("error", at, f"type must be one of {', '.join(sorted(PARAM_TYPES))}"))
            continue
        if "defaultValue" in spec and not is_expression(spec["defaultValue"]):
            found += [Finding("error", f"{at}.defaultValue", p) for p in value_problems(spec["defaultValue"], spec)]
    return found


def _resource_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    resources = template.get("resources")
    if not isinstance(resources, list) or not resources:
        return [Finding("error", f"{where}: resources", "must be a non-empty list")]
    found = []
    for index, resource in enumerate(resources):
        at = f"{where}: resources[{index}]"
        if not isinstance(resource, Mapping):
            found.append(Finding("error", at, "must be an object"))
            continue
        kind = resource.get("type")
        if not isinstance(kind, str) or "/" not in kind:
            found.append(Finding("error", f"{at}.type", "must be 'Namespace/type'"))
        if not API_VERSION.match(str(resource.get("apiVersion", ""))):
            found.append(Finding("error", f"{at}.apiVersion", "must be a date like 2024-05-01"))
        if not isinstance(resource.get("name"), str) or not resource.get("name"):
            found.append(Finding("error", f"{at}.name", "missing"))
    return found


def _output_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    found = []
    for name, output in (template.get("outputs") or {}).items():
        if not isinstance(output, Mapping) or "type" not in output or "value" not in output:
            found.append(Finding("error", f"{where}: outputs.{name}", "needs a type and a value"))
    return found


def _reference_findings(template: Mapping[str, Any], where: str) -> list[Finding]:
    params = {name.lower() for name in template.get("parameters") or {}}
    variables = {name.lower() for name in template.get("variables") or {}}
    found = [
        Finding("error", where, f"parameters('{name}') is used but not declared")
        for name in sorted(references(template, PARAM_REF))
        if name.lower() not in params
    ]
    found += [
        Finding("error", where, f"variables('{name}') is used but not declared")
        for name in sorted(references(template, VAR_REF))
        if name.lower() not in variables
    ]
    return found


def parameter_findings(inputs: InfraInputs, *, deploy: bool) -> list[Finding]:
    """The parameter values against the template's declarations."""
    declared = declared_parameters(inputs.template)
    found = _params_header(inputs)
    for name in sorted(set(inputs.values) - set(declared)):
        found.append(Finding("error", _at(inputs, name), "not a parameter of the template"))
    for name, spec in declared.items():
        found += _one_parameter(inputs, name, spec, deploy)
    return found


def _params_header(inputs: InfraInputs) -> list[Finding]:
    data = read_json(inputs.params_path, "parameter file")
    where = str(inputs.params_path)
    found = []
    if PARAMS_SCHEMA not in str(data.get("$schema", "")):
        found.append(Finding("error", f"{where}: $schema", f"expected a {PARAMS_SCHEMA} schema"))
    for name, entry in (data.get("parameters") or {}).items():
        if not isinstance(entry, Mapping) or not ({"value", "reference"} & set(entry)):
            found.append(Finding("error", f"{where}: parameters.{name}", "needs a value (or a Key Vault reference)"))
    return found


def _one_parameter(inputs: InfraInputs, name: str, spec: Mapping[str, Any], deploy: bool) -> list[Finding]:
    at = _at(inputs, name)
    kind = str(spec.get("type", "")).lower()
    if name not in inputs.values:
        return _missing(inputs, name, spec, deploy)
    value = inputs.values[name]
    if kind in SECURE_TYPES and inputs.sources.get(name) == inputs.params_path.name:
        hint = f"use a Key Vault reference or --param {name}=@FILE (a file only you can read)"
        return [Finding("error", at, f"a secure parameter's value is in a file: {hint}")]
    found = [Finding("error", at, problem) for problem in value_problems(value, spec)]
    if kind not in SECURE_TYPES and isinstance(value, str) and _documentation_range(value):
        found.append(Finding("warning", at, f"{value} is a documentation range: set your office or VPN range"))
    return found


def _missing(inputs: InfraInputs, name: str, spec: Mapping[str, Any], deploy: bool) -> list[Finding]:
    if "defaultValue" in spec:
        return []
    at = _at(inputs, name)
    if name in DEPLOY_TIME:
        hint = "set azure.ssh_public_key (or create ~/.ssh/id_ed25519.pub), or pass --param NAME=@FILE"
        return [Finding("error" if deploy else "warning", at, f"no value yet: {hint}")]
    if str(spec.get("type", "")).lower() in SECURE_TYPES:
        return [Finding("error", at, f"required (no default): a Key Vault reference, or --param {name}=@FILE")]
    return [Finding("error", at, "required (no default): give it a value in the parameter file")]


def _at(inputs: InfraInputs, name: str) -> str:
    source = inputs.sources.get(name)
    where = str(inputs.params_path) if source in (None, inputs.params_path.name) else source
    return f"{where}: parameters.{name}"


def value_problems(value: Any, spec: Mapping[str, Any]) -> list[str]:
    """What is wrong with `value` for a parameter declared as `spec` (type, allowed values, bounds);
    a secure parameter's value is never part of the text."""
    kind = str(spec.get("type", "")).lower()
    expected: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "securestring": (str,),
        "int": (int,),
        "bool": (bool,),
        "object": (dict,),
        "secureobject": (dict,),
        "array": (list,),
    }
    types = expected.get(kind, (object,))
    if not isinstance(value, types) or (kind == "int" and isinstance(value, bool)):
        return [f"expected {spec.get('type')}, got {type(value).__name__}"]
    problems = []
    allowed = spec.get("allowedValues")
    if isinstance(allowed, list) and value not in allowed:
        secure = kind in SECURE_TYPES
        problems.append(
            "the value (secure, not shown) is not one of the allowed values"
            if secure
            else f"{value!r} is not one of {allowed}"
        )
    problems += _bounds(value, spec)
    return problems


def _bounds(value: Any, spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if isinstance(value, (str, list)):
        if "minLength" in spec and len(value) < spec["minLength"]:
            problems.append(f"shorter than minLength {spec['minLength']}")
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            problems.append(f"longer than maxLength {spec['maxLength']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minValue" in spec and value < spec["minValue"]:
            problems.append(f"below minValue {spec['minValue']}")
        if "maxValue" in spec and value > spec["maxValue"]:
            problems.append(f"above maxValue {spec['maxValue']}")
    return problems


def _documentation_range(text: str) -> bool:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_NETS)  # type: ignore[arg-type]


def validate_environment(
    *,
    infra_dir: Path,
    env: str,
    params_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    ssh_public_key: Path | None = None,
    deploy: bool = False,
) -> tuple[InfraInputs, ValidationReport]:
    """Load and validate one environment offline: what `workbench infra validate` runs."""
    inputs = load_inputs(
        infra_dir=infra_dir, env=env, params_dir=params_dir, overrides=overrides, ssh_public_key=ssh_public_key
    )
    return inputs, validate_inputs(inputs, deploy=deploy, cloud_init_dir=infra_dir / "cloud-init")


def require_valid(report: ValidationReport) -> None:
    """Raise `InfraInvalidError` naming the first problem unless the report is clean (warnings allowed)."""
    if report.ok:
        return
    problems: list[object] = [*report.violations, *report.errors]
    count = len(problems)
    raise InfraInvalidError(
        f"{report.env}: {count} problem{'s' if count != 1 else ''} in templates or parameters, first: {problems[0]}",
        step=NextStep.of("infra.validate", env=report.env),
    )
