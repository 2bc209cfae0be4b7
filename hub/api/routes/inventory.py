"""Inventory: levels per location, ATP per channel, delivery promise, adjustments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.clock import now
from hub.errors import InputError
from hub.model import Address
from hub.orders import stock
from hub.store import inventory as inv

router = Router("inventory")

LEVELS = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "locations": {"type": "array", "items": {"type": "object"}},
        "channels": {"type": "array", "items": {"type": "object"}},
        "promise": {"type": ["object", "null"]},
    },
}


@router.get(
    "/api/v1/inventory/{sku}",
    scope="read",
    summary="Stock of one SKU per location and ATP per channel; with postal_code and country, the delivery promise",
    response=LEVELS,
    query={
        "postal_code": "ship-to postal code",
        "country": "ship-to ISO country",
        "quantity": "units to promise (default 1)",
    },
)
async def get_inventory(request: web.Request) -> web.Response:
    from hub.allocation import atp_for_channel

    hub = request.app[HUB_KEY]
    sku = request.match_info["sku"]
    async with hub.store.connect() as conn:
        levels = await inv.levels(conn, [sku])
    doc: dict[str, Any] = {
        "sku": sku,
        "locations": [
            {
                "location": lv.location,
                "on_hand": lv.on_hand,
                "reserved": lv.reserved,
                "safety_stock": lv.safety_stock,
                "available": lv.available,
            }
            for lv in levels
        ],
        "channels": [
            {
                "connection": cid,
                "atp": atp_for_channel(levels, hub.config.locations, cid, hub.config.allocation.channel_buffer),
            }
            for cid in stock.channel_connections(hub)
        ],
    }
    country = request.query.get("country")
    if country:
        from hub.promise import promise_for_address

        try:
            address = Address(country=country, postal_code=request.query.get("postal_code"))
            qty = int(request.query.get("quantity", "1"))
        except ValueError as exc:
            raise InputError(f"invalid promise query: {exc}") from None
        p = promise_for_address(sku, qty, address, levels, hub.config.locations, now())
        doc["promise"] = _promise_json(p)
    return json_response(doc)


def _promise_json(p: Any) -> Any:
    if p is None:
        return None
    if hasattr(p, "to_json"):
        return p.to_json()
    out = {}
    for k, v in vars(p).items():
        out[k] = v.isoformat() if isinstance(v, datetime) else v
    return out


class Adjustment(BaseModel):
    sku: str = Field(min_length=1)
    location: str
    delta: int
    reason: str = Field(min_length=1, description="why: receipt, count, damage, ...")


class Adjustments(BaseModel):
    """One adjustment, or ``{"adjustments": [...]}``."""

    adjustments: list[Adjustment] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single(cls, v: Any) -> Any:
        if isinstance(v, dict) and "adjustments" not in v:
            return {"adjustments": [v]}
        return v


@router.post(
    "/api/v1/inventory/adjustments",
    scope="ops",
    summary="Adjust on_hand through the ledger (never below reserved); re-allocates backorders",
    body=Adjustments,
    response={"type": "object"},
)
async def post_adjustments(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: Adjustments = req_body(request)
    known = {loc.id for loc in hub.config.locations}
    for a in body.adjustments:
        if a.location not in known:
            raise InputError(
                f"unknown location {a.location!r}; configured: {', '.join(sorted(known)) or 'none'}",
                location=a.location,
            )
    results = []
    for a in body.adjustments:
        cause = "receipt" if a.reason.lower().startswith("receipt") else "adjustment"
        lvl = await stock.adjust(hub, a.sku, a.location, a.delta, reason=a.reason, cause=cause, ref=req_actor(request))
        results.append(lvl.model_dump(mode="json"))
    return json_response({"items": results})


class ExpectedReceiptIn(BaseModel):
    sku: str = Field(min_length=1)
    location: str
    quantity: int = Field(gt=0)
    expected_at: datetime


@router.post(
    "/api/v1/inventory/expected-receipts",
    scope="ops",
    summary="Announce incoming stock; backorders of the SKU get promise dates",
    body=ExpectedReceiptIn,
    response={"type": "object"},
    status=201,
)
async def post_expected_receipt(request: web.Request) -> web.Response:
    from hub.orders.backorders import add_expected_receipt

    hub = request.app[HUB_KEY]
    b: ExpectedReceiptIn = req_body(request)
    if b.location not in {loc.id for loc in hub.config.locations}:
        raise InputError(f"unknown location {b.location!r}", location=b.location)
    if b.expected_at.tzinfo is None:
        raise InputError("expected_at needs a timezone (e.g. 2026-12-01T09:00:00Z)")
    rid = await add_expected_receipt(hub, b.sku, b.location, b.quantity, b.expected_at)
    return json_response({"id": rid, **b.model_dump(mode="json")}, status=201)
