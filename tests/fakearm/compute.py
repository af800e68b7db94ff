"""Compute SKUs and usages: what the quota check reads."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .records import Answer

SKUS: dict[str, tuple[str, int]] = {
    "Standard_NC6s_v3": ("standardNCSv3Family", 6),
    "Standard_NC24ads_A100_v4": ("StandardNCADSA100v4Family", 24),
    "Standard_D2s_v5": ("standardDSv5Family", 2),
    "Standard_D4s_v5": ("standardDSv5Family", 4),
    "Standard_B2s": ("standardBSFamily", 2),
}
FAMILY_NAMES = {
    "standardNCSv3Family": "Standard NCSv3 Family vCPUs",
    "StandardNCADSA100v4Family": "Standard NCADS_A100_v4 Family vCPUs",
    "standardDSv5Family": "Standard DSv5 Family vCPUs",
    "standardBSFamily": "Standard BS Family vCPUs",
    "cores": "Total Regional vCPUs",
}


def skus_page(endpoint: str, sub: str, restricted: Collection[str], *, second_page: bool) -> Answer:
    """One of the two pages of VM sizes (so the client follows `nextLink`); `restricted` sizes are unavailable."""
    skus = [_sku_json(size, family, vcpus, restricted=size in restricted) for size, (family, vcpus) in SKUS.items()]
    half = len(skus) // 2
    next_link = f"{endpoint}/subscriptions/{sub}/providers/Microsoft.Compute/skus?api-version=2021-07-01&page=2"
    if second_page:
        return 200, {}, {"value": skus[half:]}
    return 200, {}, {"value": skus[:half], "nextLink": next_link}


def _sku_json(size: str, family: str, vcpus: int, *, restricted: bool) -> dict[str, Any]:
    return {
        "resourceType": "virtualMachines",
        "name": size,
        "tier": "Standard",
        "size": size.removeprefix("Standard_"),
        "family": family,
        "locations": ["westeurope"],
        "capabilities": [{"name": "vCPUs", "value": str(vcpus)}],
        "restrictions": [{"type": "Location", "values": ["westeurope"], "reasonCode": "NotAvailableForSubscription"}]
        if restricted
        else [],
    }


def usages_list(usages: Mapping[str, tuple[int, int]]) -> Answer:
    """The usages of each family as (used, limit)."""
    values = [
        {
            "name": {"value": family, "localizedValue": FAMILY_NAMES.get(family, family)},
            "currentValue": used,
            "limit": limit,
            "unit": "Count",
        }
        for family, (used, limit) in usages.items()
    ]
    return 200, {}, {"value": values}
