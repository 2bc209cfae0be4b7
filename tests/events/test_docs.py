"""The verification sample of docs/partner-webhooks.md, run against real deliveries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from webhook_helpers import MiniHub, Partner, add_endpoint, drain, emit, inventory

from hub import events
from hub.model import EVENT_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "partner-webhooks.md"


def sample() -> dict[str, Any]:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    ns: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), ns)
    return ns


def test_docs_list_every_event_type() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [t for t in EVENT_TYPES if f"`{t}`" not in text] == []


@pytest.mark.postgres
async def test_documented_receiver_verifies_and_deduplicates_deliveries(hub: MiniHub, partner: Partner) -> None:
    doc = sample()
    ep = await add_endpoint(hub, partner.url())
    applied: list[dict[str, Any]] = []

    async def receiver(request: web.Request) -> web.Response:
        status, event = doc["receive"](ep.secret, dict(request.headers), await request.read())
        if event is not None:
            applied.append(event)
        return web.Response(status=status)

    partner.on("/hook", receiver, receiver)
    await emit(hub, "inventory.changed", inventory(), object_id="A")
    await drain(hub)
    assert [e["type"] for e in applied] == ["inventory.changed"]

    rows = (await events.list_deliveries(hub))[0]
    await events.replay_delivery(hub, rows[0].id)
    await drain(hub)
    assert len(partner.requests()) == 2 and len(applied) == 1, "the replay is recognised by its webhook-id"

    status, _ = doc["receive"]("whsec_" + "A" * 44, partner.requests()[0].headers, partner.requests()[0].body)
    assert status == 401
