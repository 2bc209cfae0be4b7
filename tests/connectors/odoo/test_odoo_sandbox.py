"""The Odoo connector end to end against the repository's simulated Odoo (sandbox/odoo), over real HTTP:
every document posted twice, and the simulator counts no duplicate side effect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer

from connectors.odoo import OdooConnector, OdooSettings
from hub.http import client_for
from hub.model import Money, Refund, RefundLine, new_id
from hub.testing import sample_order
from sandbox.odoo.app import STATE, OdooState, make_app
from sandbox.odoo.app import OdooSettings as SimSettings


@pytest.fixture
async def sim() -> AsyncIterator[tuple[str, OdooState]]:
    app = make_app(SimSettings())
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), app[STATE]
    await server.close()


@pytest.mark.parametrize("api", ["json2", "jsonrpc"])
async def test_order_invoice_and_credit_note_posted_twice_create_each_document_once(
    sim: tuple[str, OdooState], api: str
) -> None:
    url, state = sim
    s = state.settings
    settings = OdooSettings(
        url=url,
        database=s.database,
        username=s.username,
        api_key=s.api_key,  # type: ignore[arg-type]
        api=api,  # type: ignore[arg-type]
        taxes="odoo",
        company_currency="EUR",
    )
    conn = OdooConnector("odoo-sandbox", settings)
    conn.http = client_for(conn)
    order = sample_order(connection="shop", lines=(("SB-0001", 2, "10.00"), ("SB-0002", 1, "5.50")))
    refund = Refund(
        id=new_id("ref"),
        order_id=order.id,
        amount=Money.of("10.00", "EUR"),
        lines=[RefundLine(line_no=1, sku="SB-0001", quantity=1, amount=Money.of("10.00", "EUR"))],
        created_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    try:
        for _ in range(2):
            so = await conn.post_sales_order(order)
            inv = await conn.post_invoice(order)
            note = await conn.post_credit_note(order, refund)
    finally:
        await conn.http.aclose()
    assert state.recorder.duplicate_side_effects == 0
    (sale,) = state.find("sale.order", client_order_ref=order.id)
    assert sale["state"] == "sale" and str(sale["id"]) == so.external_id
    (invoice,) = state.find("account.move", ref=order.id, move_type="out_invoice")
    (credit,) = state.find("account.move", ref=refund.id, move_type="out_refund")
    assert invoice["state"] == credit["state"] == "posted"
    assert credit["reversed_entry_id"] == invoice["id"] == int(inv.external_id or 0)
    assert str(credit["id"]) == note.external_id
    assert len(state.find("res.partner", ref=f"hub:{order.id}")) == 1
