"""The Odoo simulator over JSON-2 and JSON-RPC: partners, products, sale orders, invoices."""

from __future__ import annotations

from typing import Any

from sandbox.odoo.app import STATE, OdooSettings, make_app

from .conftest import Serve

SETTINGS = OdooSettings(api_key="key-123")
BEARER = {"Authorization": "bearer key-123"}


async def j2(client: Any, model: str, method: str, body: dict[str, Any], status: int = 200) -> Any:
    resp = await client.post(f"/json/2/{model}/{method}", json=body, headers=BEARER)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def rpc(client: Any, service: str, method: str, *args: Any) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"service": service, "method": method, "args": list(args)},
        "id": 7,
    }
    resp = await client.post("/jsonrpc", json=body)
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    assert data["id"] == 7 and data["jsonrpc"] == "2.0"
    return data


async def test_json2_refuses_a_wrong_api_key_with_odoos_error_body(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    resp = await client.post(
        "/json/2/res.partner/search", json={"domain": []}, headers={"Authorization": "bearer wrong"}
    )
    body = await resp.json()
    assert resp.status == 401
    assert set(body) == {"name", "message", "arguments", "context", "debug"}
    assert body["name"] == "werkzeug.exceptions.Unauthorized" and body["message"] == "Invalid apikey"


async def test_sale_order_flow_over_json2(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    [partner] = await j2(
        client, "res.partner", "create", {"vals_list": [{"name": "Ada Lovelace", "email": "ada@example.com"}]}
    )
    assert await j2(client, "res.partner", "search", {"domain": [["email", "=ilike", "ADA@example.com"]]}) == [partner]
    [product] = await j2(
        client,
        "product.product",
        "search_read",
        {"domain": [["default_code", "=", "SB-0002"]], "fields": ["id", "default_code", "list_price"]},
    )
    vals = {
        "partner_id": partner,
        "client_order_ref": "shop-1001",
        "order_line": [[0, 0, {"product_id": product["id"], "product_uom_qty": 2, "price_unit": 10.5}]],
    }
    [so] = await j2(client, "sale.order", "create", {"vals_list": [vals]})
    assert await j2(client, "sale.order", "action_confirm", {"ids": [so]}) is True
    [row] = await j2(
        client,
        "sale.order",
        "read",
        {"ids": [so], "fields": ["name", "state", "partner_id", "amount_total", "client_order_ref"]},
    )
    assert row["state"] == "sale" and row["name"].startswith("S") and row["amount_total"] == 21.0
    assert row["partner_id"] == [partner, "Ada Lovelace"]
    err = await j2(client, "sale.order", "action_confirm", {"ids": [so]}, status=422)
    assert err["name"] == "odoo.exceptions.UserError"
    found = await j2(
        client,
        "sale.order",
        "search",
        {"domain": ["|", ["client_order_ref", "=", "shop-1001"], ["client_order_ref", "=", "x"]]},
    )
    assert found == [so] and state.duplicate_side_effects == 0
    await j2(client, "sale.order", "create", {"vals_list": [vals]})
    assert state.duplicate_side_effects == 1
    assert state.recorder.find("POST", "/json/2/sale.order/create")[-1].idempotency_key == "shop-1001"


async def test_invoice_is_created_and_posted_and_a_second_with_the_same_ref_is_counted(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    [partner] = await j2(client, "res.partner", "create", {"vals_list": [{"name": "Bob"}]})
    vals = {
        "move_type": "out_invoice",
        "partner_id": partner,
        "ref": "shop-1002",
        "invoice_line_ids": [[0, 0, {"product_id": 1, "quantity": 1, "price_unit": 5}]],
    }
    [move] = await j2(client, "account.move", "create", {"vals_list": [vals]})
    assert await j2(client, "account.move", "action_post", {"ids": [move]}) is True
    [row] = await j2(
        client,
        "account.move",
        "search_read",
        {"domain": [["ref", "=", "shop-1002"]], "fields": ["name", "state", "amount_total", "payment_state"]},
    )
    assert row["state"] == "posted" and row["name"].startswith("INV/") and row["amount_total"] == 5.0
    await j2(client, "account.move", "action_post", {"ids": [move]}, status=422)
    await j2(client, "account.move", "create", {"vals_list": [vals]})
    assert state.duplicate_side_effects == 1


async def test_jsonrpc_authenticate_and_execute_kw(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    db = SETTINGS.database
    assert (await rpc(client, "common", "authenticate", db, "admin", "key-123", {}))["result"] == SETTINGS.uid
    assert (await rpc(client, "common", "authenticate", db, "admin", "wrong", {}))["result"] is False
    uid = SETTINGS.uid
    created = await rpc(client, "object", "execute_kw", db, uid, "key-123", "res.partner", "create", [{"name": "Chen"}])
    partner = created["result"]
    assert isinstance(partner, int)
    so = (
        await rpc(
            client,
            "object",
            "execute_kw",
            db,
            uid,
            "key-123",
            "sale.order",
            "create",
            [{"partner_id": partner, "client_order_ref": "amz-1"}],
        )
    )["result"]
    assert (await rpc(client, "object", "execute_kw", db, uid, "key-123", "sale.order", "action_confirm", [[so]]))[
        "result"
    ] is True
    got = await rpc(
        client,
        "object",
        "execute_kw",
        db,
        uid,
        "key-123",
        "sale.order",
        "search_read",
        [[["client_order_ref", "=", "amz-1"]]],
        {"fields": ["state"]},
    )
    assert [r["state"] for r in got["result"]] == ["sale"]
    denied = await rpc(client, "object", "execute_kw", db, uid, "bad", "res.partner", "search", [[]])
    assert denied["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    missing = await rpc(
        client, "object", "execute_kw", db, uid, "key-123", "sale.order", "create", [{"client_order_ref": "x"}]
    )
    assert missing["error"]["message"] == "Odoo Server Error" and "partner_id" in missing["error"]["data"]["message"]
