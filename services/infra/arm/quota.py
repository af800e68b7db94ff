"""The compute quota before a deployment: VM sizes the region offers and free vCPUs per family and in total.

Two GET requests sent through the resource client's own pipeline (`send_request`: same credential,
retries and endpoint), instead of adding azure-mgmt-compute (14 MB) for two calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from services.infra.arm.errors import arm_errors
from services.infra.arm.session import Session, subscription_of

SKUS_API = "2021-07-01"

USAGES_API = "2024-07-01"


@dataclass(frozen=True)
class QuotaRow:
    """vCPUs a deployment needs from one quota (a VM family, or the regional total) and what is free."""

    quota: str
    label: str
    needed: int
    used: int
    limit: int

    @property
    def free(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def ok(self) -> bool:
        return self.needed <= self.free


@dataclass(frozen=True)
class QuotaReport:
    """The quota check before a deployment: one row per family plus the regional total."""

    location: str
    rows: tuple[QuotaRow, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_quota(session: Session, sizes: list[str]) -> QuotaReport:
    """vCPU quota for `sizes` in the target's region: per VM family and the regional total.

    Sizes that the region does not offer to this subscription are problems too.
    """
    location = session.target.location
    with arm_errors(f"reading VM sizes and quota in {location}"):
        skus = {s["name"]: s for s in _vm_skus(session, location) if s.get("name") in set(sizes)}
        usages = {u["name"]["value"].lower(): u for u in _usages(session, location)}
    problems = [f"VM size {size} is not offered in {location}" for size in sizes if size not in skus]
    problems += [_restriction(size, skus[size], location) for size in sizes if size in skus and _restricted(skus[size])]
    rows = _quota_rows(sizes, skus, usages)
    problems += [
        f"{row.label}: needs {row.needed} vCPUs, {row.free} of {row.limit} free in {location}"
        for row in rows
        if not row.ok
    ]
    return QuotaReport(location, tuple(rows), tuple(problems))


def _vm_skus(session: Session, location: str) -> list[dict[str, Any]]:
    path = f"/subscriptions/{subscription_of(session.target)}/providers/Microsoft.Compute/skus"
    params = {"api-version": SKUS_API, "$filter": f"location eq '{location}'"}
    return [s for s in _paged_get(session, path, params) if s.get("resourceType") == "virtualMachines"]


def _usages(session: Session, location: str) -> list[dict[str, Any]]:
    path = f"/subscriptions/{subscription_of(session.target)}/providers/Microsoft.Compute/locations/{location}/usages"
    return [u for u in _paged_get(session, path, {"api-version": USAGES_API}) if isinstance(u.get("name"), dict)]


def _paged_get(session: Session, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    request: HttpRequest | None = HttpRequest("GET", path, params=params)
    while request is not None:
        response = session.resources.send_request(request)
        if response.status_code != 200:
            raise HttpResponseError(response=response)
        page = response.json()
        yield from page.get("value") or []
        next_link = page.get("nextLink")
        request = HttpRequest("GET", next_link) if next_link else None


def _restricted(sku: Mapping[str, Any]) -> bool:
    return any(r.get("reasonCode") == "NotAvailableForSubscription" for r in sku.get("restrictions") or [])


def _restriction(size: str, sku: Mapping[str, Any], location: str) -> str:
    return f"VM size {size} is not available to this subscription in {location} (restricted)"


def _vcpus(sku: Mapping[str, Any]) -> int:
    caps = {c.get("name"): c.get("value") for c in sku.get("capabilities") or []}
    return int(caps.get("vCPUs") or 0)


def _quota_rows(sizes: list[str], skus: Mapping[str, Any], usages: Mapping[str, Any]) -> list[QuotaRow]:
    needed: dict[str, int] = {}
    for size in sizes:
        if size in skus:
            family = str(skus[size].get("family", ""))
            needed[family] = needed.get(family, 0) + _vcpus(skus[size])
    needed["cores"] = sum(needed.values())
    rows = []
    for quota, count in needed.items():
        usage = usages.get(quota.lower())
        if usage is None:
            continue
        label = str(usage["name"].get("localizedValue") or quota)
        rows.append(QuotaRow(quota, label, count, int(usage.get("currentValue", 0)), int(usage.get("limit", 0))))
    return rows
