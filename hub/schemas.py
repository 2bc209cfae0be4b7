"""JSON Schemas of the canonical model and of every partner event type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub import model as m

#: Canonical objects exported as JSON Schema (name -> class).
CANONICAL: dict[str, type[BaseModel]] = {
    "money": m.Money,
    "address": m.Address,
    "customer": m.Customer,
    "order": m.Order,
    "order_line": m.OrderLine,
    "location": m.Location,
    "inventory_level": m.InventoryLevel,
    "ledger_entry": m.LedgerEntry,
    "allocation": m.Allocation,
    "fulfillment_request": m.FulfillmentRequest,
    "shipment": m.Shipment,
    "tracking_event": m.TrackingEvent,
    "return": m.Return,
    "refund": m.Refund,
    "event": m.Event,
}


def canonical_schema(name: str) -> dict[str, Any]:
    schema = CANONICAL[name].model_json_schema(mode="serialization")
    schema["$id"] = f"https://orderhub.dev/schemas/{name}.json"
    schema.setdefault("title", CANONICAL[name].__name__)
    return schema


def event_schema(event_type: str) -> dict[str, Any]:
    """The schema of the body a partner receives for ``event_type``."""
    data = m.EVENT_TYPES[event_type].model_json_schema(mode="serialization")
    defs = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://orderhub.dev/schemas/events/{event_type}.json",
        "title": event_type,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": event_type},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """Relative file path -> schema, for every canonical object and event type."""
    out = {f"{name}.json": canonical_schema(name) for name in CANONICAL}
    out.update({f"events/{t}.json": event_schema(t) for t in m.EVENT_TYPES})
    return out


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path) -> list[Path]:
    """Write every schema under ``directory``; returns the files written."""
    written = []
    for rel, schema in all_schemas().items():
        p = directory / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(dumps(schema), encoding="utf-8")
        written.append(p)
    return written
