"""Runtime values of deployed resources, as `reference()` in template outputs sees them.

Made-up but stable: addresses and principal ids are derived from the resource id.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from .evaluator import EvalError
from .records import Deployment


def runtime_value(record: Deployment, rid: str, full: bool) -> Any:
    """The properties (or with `full`, the whole body) of resource `rid` once `record` has deployed it."""
    found = next((p for p in record.planned if p.id.lower() == rid.lower()), None)
    if found is None:
        raise EvalError(f"reference to {rid}, which this deployment does not create")
    seed = int(hashlib.sha256(found.id.lower().encode()).hexdigest(), 16)
    props = dict(found.body.get("properties") or {})
    kind = found.type.lower()
    if kind.endswith("/publicipaddresses"):
        label = (props.get("dnsSettings") or {}).get("domainNameLabel", found.name)
        props["ipAddress"] = f"20.{seed % 250}.{seed // 250 % 250}.{seed // 62500 % 250 + 1}"
        props["dnsSettings"] = {
            "domainNameLabel": label,
            "fqdn": f"{label}.{record.scope.location}.cloudapp.azure.com",
        }
    elif kind.endswith("/networkinterfaces"):
        index = [p.id for p in record.planned if p.type.lower() == kind].index(found.id)
        props["ipConfigurations"] = [{"properties": {"privateIPAddress": f"10.20.1.{4 + index}"}}]
    elif kind.endswith("/registries"):
        props["loginServer"] = f"{found.name}.azurecr.io"
    elif kind.endswith("/storageaccounts"):
        props["primaryEndpoints"] = {"blob": f"https://{found.name}.blob.core.windows.net/"}
    if not full:
        return props
    identity = {**(found.body.get("identity") or {}), "principalId": str(uuid.UUID(int=seed % 2**128))}
    return {**found.body, "properties": props, "identity": identity}
