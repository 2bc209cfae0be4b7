"""The Odoo connector against the documented JSON-2 and JSON-RPC shapes (fake Odoo in conftest.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx
from odoo_fake import DB, KEY, URL, FakeOdoo, make_connector, make_order
from pydantic import ValidationError

from connectors.odoo import OdooConnector, OdooSettings
from hub.errors import FatalError, RetriableError
from hub.http import HubClient, RetryPolicy
from hub.model import Money, Order, Refund, RefundLine, new_id
from hub.plugins import Capability, load

FAST_RETRY = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)


def _refund(order: Order) -> Refund:
    # one T-shirt back: 25.00 - 2.50 discount share = 22.50 incl. VAT 3.75, plus shipping 4.90 (VAT 0.82)
    return Refund(
        id=new_id("ref"),
        order_id=order.id,
        amount=Money.of("27.40", "EUR"),
        lines=[
            RefundLine(
                line_no=1, sku="TSHIRT-M", quantity=1, amount=Money.of("22.50", "EUR"), tax=Money.of("3.75", "EUR")
            )
        ],
        shipping=Money.of("4.90", "EUR"),
        tax=Money.of("4.57", "EUR"),
        created_at=datetime(2026, 3, 10, tzinfo=UTC),
    )


async def test_json2_sales_order_is_created_with_lines_taxes_and_confirmed(
    odoo: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    result = await odoo.post_sales_order(order)
    create = next(r for r in fake.requests if r.url.path == "/json/2/sale.order/create")
    assert create.headers["authorization"] == f"bearer {KEY}"
    assert create.headers["x-odoo-database"] == DB
    assert create.headers["content-type"].startswith("application/json")
    body = json.loads(create.content, parse_float=Decimal)
    (vals,) = body["vals_list"]
    assert vals["client_order_ref"] == order.id and vals["origin"] == "#1042"
    assert "currency_id" not in vals  # a sales order takes its currency from its pricelist
    assert vals["order_line"] == [
        [
            0,
            0,
            {
                "product_id": 11,
                "product_uom_qty": 2,
                "price_unit": Decimal("25.00"),
                "tax_ids": [[6, 0, [7]]],
                "discount": Decimal("10.000000"),
            },
        ],
        [0, 0, {"product_id": 12, "product_uom_qty": 1, "price_unit": Decimal("12.00"), "tax_ids": [[6, 0, [7]]]}],
        [
            0,
            0,
            {
                "name": "Colissimo",
                "product_uom_qty": 1,
                "price_unit": Decimal("4.90"),
                "tax_ids": [[6, 0, [7]]],
                "product_id": 13,
            },
        ],
    ]
    assert b'"price_unit":25.00' in create.content  # exact decimal numbers on the wire, no float rounding
    # a new customer: a partner created with email and address (country looked up)
    (partner,) = fake.created("res.partner")
    assert partner["vals_list"][0] | {} == {
        "name": "Claire Martin",
        "email": "claire@example.fr",
        "ref": "shop:cust-9",
        "street": "3 rue de la Paix",
        "city": "Paris",
        "zip": "75002",
        "country_id": 75,
    }
    so_id = int(result.external_id or 0)
    assert ("sale.order", "action_confirm", {}, [so_id]) in fake.calls
    assert fake.records["sale.order"][0]["state"] == "sale"
    assert result.detail["created"] is True


async def test_reposting_an_order_never_creates_a_second_sales_order(
    odoo: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    first = await odoo.post_sales_order(order)
    second = await odoo.post_sales_order(order)
    assert second.external_id == first.external_id and second.detail["created"] is False
    assert len(fake.created("sale.order")) == 1
    assert [c[1] for c in fake.calls if c[0] == "sale.order"].count("action_confirm") == 1


async def test_a_created_but_unconfirmed_order_is_confirmed_on_replay(
    odoo: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    fake.records["sale.order"] = [{"id": 77, "client_order_ref": order.id, "state": "draft", "name": "S00077"}]
    result = await odoo.post_sales_order(order)
    assert result.external_id == "77" and fake.created("sale.order") == []
    assert fake.records["sale.order"][0]["state"] == "sale"


async def test_known_customer_is_found_by_email(http: httpx.AsyncClient, fake: FakeOdoo) -> None:
    await make_connector(http).post_sales_order(make_order(email="KNOWN@example.com"))
    assert fake.created("res.partner") == []
    assert fake.created("sale.order")[0]["vals_list"][0]["partner_id"] == 50


async def test_jsonrpc_authenticates_once_and_sends_execute_kw(
    odoo_rpc: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    await odoo_rpc.post_sales_order(order)
    await odoo_rpc.post_sales_order(order)
    assert fake.auth_calls == 1
    rpc = [json.loads(r.content, parse_float=Decimal) for r in fake.requests]
    assert all(r.url.path == "/jsonrpc" for r in fake.requests)
    assert "authorization" not in fake.requests[0].headers
    assert rpc[0]["params"] == {
        "service": "common",
        "method": "authenticate",
        "args": [DB, "bot@acme.example", KEY, {}],
    }
    create = next(
        d
        for d in rpc
        if d["params"].get("args", [None] * 5)[4:5] == ["create"] and d["params"]["args"][3] == "sale.order"
    )
    db, uid, _key, model, _method, args, kwargs = create["params"]["args"]
    assert (db, uid, model, args) == (DB, 2, "sale.order", [])
    assert kwargs["vals_list"][0]["order_line"][0][2]["tax_id"] == [[6, 0, [7]]]  # Odoo 17-18 field name
    confirm = next(d for d in rpc if d["params"].get("args", [None] * 5)[4:5] == ["action_confirm"])
    assert confirm["params"]["args"][5] == [[int(fake.records["sale.order"][0]["id"])]]
    assert len(fake.created("sale.order")) == 1


async def test_invoice_is_posted_once_with_tax_ids(odoo: OdooConnector, fake: FakeOdoo, order: Order) -> None:
    first = await odoo.post_invoice(order)
    again = await odoo.post_invoice(order)
    assert first.external_id == again.external_id and len(fake.created("account.move")) == 1
    vals = fake.created("account.move")[0]["vals_list"][0]
    assert (vals["move_type"], vals["ref"], vals["partner_id"]) == ("out_invoice", order.id, 101)
    lines = [c[2] for c in vals["invoice_line_ids"]]
    assert [(ln.get("product_id"), ln["quantity"], ln["price_unit"], ln["tax_ids"]) for ln in lines] == [
        (11, 2, Decimal("25.00"), [[6, 0, [7]]]),
        (12, 1, Decimal("12.00"), [[6, 0, [7]]]),
        (None, 1, Decimal("4.90"), [[6, 0, [7]]]),
    ]
    assert fake.records["account.move"][0]["state"] == "posted"


async def test_credit_note_reverses_the_posted_invoice_and_is_idempotent(
    odoo: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    invoice = await odoo.post_invoice(order)
    refund = _refund(order)
    first = await odoo.post_credit_note(order, refund)
    again = await odoo.post_credit_note(order, refund)
    assert first.external_id == again.external_id
    notes = [c["vals_list"][0] for c in fake.created("account.move") if c["vals_list"][0]["move_type"] == "out_refund"]
    assert len(notes) == 1
    note = notes[0]
    assert note["ref"] == refund.id and note["reversed_entry_id"] == int(invoice.external_id or 0)
    lines = [c[2] for c in note["invoice_line_ids"]]
    # VAT included: price_unit is the gross unit price refunded; shipping 4.90 gross
    assert [(ln.get("product_id"), ln["quantity"], ln["price_unit"]) for ln in lines] == [
        (11, 1, Decimal("22.50")),
        (None, 1, Decimal("4.90")),
    ]


async def test_missing_product_is_a_fatal_error_naming_the_sku(odoo: OdooConnector, fake: FakeOdoo) -> None:
    fake.records["product.product"] = [r for r in fake.records["product.product"] if r["default_code"] != "MUG"]
    with pytest.raises(FatalError, match=r"no product with internal reference \(default_code\) MUG"):
        await odoo.post_sales_order(make_order())
    assert fake.created("sale.order") == []


async def test_invalid_api_key_is_fatal_and_never_shown(http: httpx.AsyncClient, order: Order) -> None:
    bad = make_connector(http, api_key="0" * 40)
    with pytest.raises(FatalError, match=r"Invalid apikey.*Preferences > Account Security") as exc:
        await bad.post_sales_order(order)
    err = exc.value
    assert "0" * 40 not in str(err) + json.dumps(err.request) + json.dumps(err.response)
    assert err.response is not None and err.response["status"] == 401


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (422, "odoo.exceptions.ValidationError", FatalError),
        (403, "odoo.exceptions.AccessError", FatalError),
        (500, "odoo.exceptions.UserError", FatalError),
        (503, "werkzeug.exceptions.ServiceUnavailable", RetriableError),
        (500, "psycopg2.errors.SerializationFailure", RetriableError),
        (502, "", RetriableError),
    ],
)
async def test_json2_errors_map_to_fatal_or_retriable(
    odoo: OdooConnector, fake: FakeOdoo, order: Order, status: int, name: str, expected: type[Exception]
) -> None:
    fake.fail[("sale.order", "create")] = (
        status,
        {"name": name, "message": "Missing required field partner_id", "arguments": [], "context": {}, "debug": ""},
    )
    with pytest.raises(expected) as exc:
        await odoo.post_sales_order(order)
    assert f"Odoo sale.order.create (database {DB}, connection odoo-main) failed {status}" in str(exc.value)
    assert not isinstance(exc.value, RetriableError) or "retry later" in str(exc.value)


async def test_jsonrpc_validation_error_is_fatal_with_odoo_message(
    odoo_rpc: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    fake.fail[("sale.order", "create")] = (
        200,
        {"name": "odoo.exceptions.ValidationError", "message": "The product TSHIRT-M cannot be sold"},
    )
    with pytest.raises(
        FatalError, match=r"ValidationError: The product TSHIRT-M cannot be sold\. Odoo refused the data"
    ):
        await odoo_rpc.post_sales_order(order)


async def test_jsonrpc_login_refused_is_fatal(http: httpx.AsyncClient, order: Order) -> None:
    with pytest.raises(FatalError, match="Odoo refused the login of 'nobody' on database 'acme'"):
        await make_connector(http, api="jsonrpc", username="nobody").post_sales_order(order)


async def test_timeout_is_retriable_after_the_in_job_retries(order: Order) -> None:
    with respx.mock(base_url=URL) as router:
        route = router.post(path__regex=r"^/json/2/").mock(side_effect=httpx.ReadTimeout("timed out"))
        async with HubClient(connection="odoo-main", retry=FAST_RETRY) as client:
            with pytest.raises(RetriableError, match=r"failed after 3 attempt\(s\): ReadTimeout"):
                await make_connector(client).post_sales_order(order)
    assert route.call_count == 3


async def test_a_busy_server_is_retried_in_the_job_for_safe_calls(
    odoo: OdooConnector, fake: FakeOdoo, order: Order
) -> None:
    busy = {"name": "werkzeug.exceptions.ServiceUnavailable", "message": "busy"}
    answers = iter([httpx.Response(503, json=busy), httpx.Response(429, headers={"Retry-After": "0"}, json=busy)])
    real = fake.json2

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sale.order/search_read"):
            nxt = next(answers, None)
            if nxt is not None:
                fake.requests.append(request)
                return nxt
        return real(request)

    fake.json2 = flaky  # type: ignore[method-assign]
    result = await odoo.post_sales_order(order)
    assert result.detail["created"] is True
    assert [r.url.path for r in fake.requests].count("/json/2/sale.order/search_read") == 3


async def test_create_is_sent_once_even_on_a_gateway_error(odoo: OdooConnector, fake: FakeOdoo, order: Order) -> None:
    fake.fail[("sale.order", "create")] = (504, {"name": "", "message": "Gateway Time-out"})
    with pytest.raises(RetriableError):
        await odoo.post_sales_order(order)
    assert [r.url.path for r in fake.requests].count("/json/2/sale.order/create") == 1


def test_registered_through_the_entry_point_with_its_capabilities() -> None:
    _, registry = load()
    info = registry.connectors["odoo"]
    assert info.cls is OdooConnector and info.kind == "erp"
    assert set(info.capabilities) == {Capability.POST_SALES_ORDER, Capability.POST_INVOICE, Capability.POST_CREDIT_NOTE}


def test_settings_refuse_an_unknown_api_and_hide_the_key() -> None:
    with pytest.raises(ValidationError, match="api"):
        OdooSettings.model_validate({"url": URL, "database": DB, "username": "u", "api_key": KEY, "api": "xmlrpc"})
    s = OdooSettings.model_validate({"url": URL, "database": DB, "username": "u", "api_key": KEY})
    assert s.api == "json2" and KEY not in repr(s)


async def test_company_currency_and_odoo_taxes_send_no_lookups(http: httpx.AsyncClient, fake: FakeOdoo) -> None:
    odoo = make_connector(http, company_currency="EUR", taxes="odoo")
    await odoo.post_invoice(make_order())
    vals = fake.created("account.move")[0]["vals_list"][0]
    assert "currency_id" not in vals
    assert all("tax_ids" not in c[2] for c in vals["invoice_line_ids"])
    assert {c[0] for c in fake.calls} == {"res.partner", "product.product", "account.move", "res.country"}
