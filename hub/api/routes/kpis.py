"""Fulfilment KPIs over a period (definitions in :mod:`hub.kpis`; facts from :mod:`hub.kpis_store`)."""

from __future__ import annotations

from aiohttp import web

from hub import kpis
from hub.api._routing import HUB_KEY, Router, json_response
from hub.clock import now
from hub.kpis_store import load_facts, parse_period

router = Router("kpis")

KPIS = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "orders": {"type": "integer"},
        "perfect_order_rate": {"type": ["string", "null"]},
        "otif": {"type": ["string", "null"]},
        "promise_accuracy": {"type": ["string", "null"]},
        "ship_by_accuracy": {"type": ["string", "null"]},
        "exception_rate": {"type": ["string", "null"]},
        "order_cycle_time": {"type": "object"},
        "refund_cycle_time": {"type": "object"},
        "cost_to_serve_per_order": {"type": ["string", "null"]},
    },
}


@router.get(
    "/api/v1/kpis",
    scope="read",
    summary="Perfect order rate, OTIF, cycle times, promise accuracy, exception rate, cost to serve",
    response=KPIS,
    query={
        "from": "start (date or ISO-8601 time, inclusive); default: 30 days before 'to'",
        "to": "end (ISO-8601 time exclusive, or a date: that whole day included); default: now",
    },
)
async def get_kpis(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    start, end = parse_period(request.query.get("from"), request.query.get("to"), now())
    async with hub.store.connect() as conn:
        facts = await load_facts(conn, start, end)
    return json_response({"from": start.isoformat(), "to": end.isoformat(), **kpis.summary(facts)})
