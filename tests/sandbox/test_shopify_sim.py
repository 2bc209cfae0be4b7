"""The Shopify simulator: REST-format signed webhooks out, GraphQL Admin API in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

from sandbox.shopify.app import STATE, ShopifySettings, make_app

from .conftest import Receiver, Serve, fixture

SETTINGS = ShopifySettings(access_token="shpat_test", client_secret="test-secret", seed=7)
GQL = "/admin/api/2026-07/graphql.json"
AUTH = {"X-Shopify-Access-Token": "shpat_test"}

VARIANTS = (
    "query v($query: String!) { productVariants(first: 10, query: $query) { nodes { id sku inventoryItem { id } } } }"
)
FULFILLMENT_ORDERS = """query fo($id: ID!) { order(id: $id) { id name fulfillmentOrders(first: 50) { nodes { id status
  assignedLocation { location { id } } lineItems(first: 250) { nodes { id remainingQuantity lineItem { id sku } } } } } } }"""
FULFILLMENT_CREATE = """mutation fc($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) { fulfillment { id status } userErrors { field message } } }"""
INVENTORY_SET = """mutation s($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } } userErrors { code field message } } }"""
ORDER_CANCEL = """mutation c($orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!) {
  orderCancel(orderId: $orderId, reason: $reason, restock: $restock) { job { id done } orderCancelUserErrors { code field message } } }"""
REFUND_CREATE = """mutation r($input: RefundInput!, $idempotencyKey: String!) {
  refundCreate(input: $input) @idempotent(key: $idempotencyKey) { refund { id totalRefundedSet { shopMoney { amount currencyCode } } }
  userErrors { field message } } }"""


async def gql(client: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.post(GQL, json={"query": query, "variables": variables or {}}, headers=AUTH)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def test_generated_order_has_the_keys_of_shopifys_example_order() -> None:
    store = make_app(SETTINGS)[STATE]
    order = store.build_order(discount="5.00")
    keys = fixture("shopify-order-450789469-keys.json")
    assert set(keys["order"]) <= set(order)
    line = order["line_items"][0]
    assert set(keys["line_item"]) <= set(line)
    assert set(keys["tax_line"]) <= set(line["tax_lines"][0])
    assert set(keys["discount_allocation"]) <= set(line["discount_allocations"][0])
    assert set(keys["discount_application"]) <= set(order["discount_applications"][0])
    assert set(keys["address"]) <= set(order["shipping_address"]) and set(keys["address"]) <= set(
        order["billing_address"]
    )
    assert set(keys["shipping_line"]) <= set(order["shipping_lines"][0])
    assert set(keys["customer"]) <= set(order["customer"])
    assert set(order["total_price_set"]) == {"shop_money", "presentment_money"}
    assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"


def test_generated_order_totals_add_up_in_decimal_strings() -> None:
    store = make_app(SETTINGS)[STATE]
    for discount in (None, "7.00"):
        o = store.build_order([("SB-0001", 2), ("SB-0002", 1), ("SB-0003", 3)], discount=discount)
        d = Decimal
        lines = o["line_items"]
        gross = sum(d(li["price"]) * li["quantity"] for li in lines)
        disc = sum(d(a["amount"]) for li in lines for a in li["discount_allocations"])
        tax = sum(d(t["price"]) for li in lines for t in li["tax_lines"])
        ship = sum(d(s["price"]) for s in o["shipping_lines"])
        assert d(o["total_line_items_price"]) == gross
        assert d(o["total_discounts"]) == disc == d(discount or 0)
        assert d(o["subtotal_price"]) == gross - disc
        assert d(o["total_tax"]) == tax == d(o["tax_lines"][0]["price"])
        assert d(o["total_price"]) == gross - disc + ship + tax
        assert all(isinstance(li["price"], str) and "." in li["price"] for li in lines)


async def test_order_webhooks_carry_shopify_headers_and_a_verifiable_hmac(serve: Serve, receiver: Receiver) -> None:
    app = make_app(SETTINGS)
    store = app[STATE]
    await serve(app)
    store.sender.set_target(receiver.url)
    order = store.place_order([("SB-0004", 1)])
    store.cancel_order(order["id"])
    store.refund_order(order["id"])
    assert await store.drain(5)
    topics = [h.headers["X-Shopify-Topic"] for h in receiver.hits]
    assert topics == ["orders/create", "orders/cancelled", "orders/updated", "refunds/create"]
    for hit in receiver.hits:
        expected = base64.b64encode(hmac.new(b"test-secret", hit.body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(hit.headers["X-Shopify-Hmac-Sha256"], expected)
        for h in ("X-Shopify-Shop-Domain", "X-Shopify-API-Version", "X-Shopify-Webhook-Id", "X-Shopify-Triggered-At"):
            assert hit.headers[h]
    created, cancelled, _, refund = receiver.json()
    assert created["id"] == order["id"] and created["cancelled_at"] is None
    assert cancelled["cancelled_at"] and cancelled["cancel_reason"] == "customer"
    assert set(fixture("shopify-order-450789469-keys.json")["refund"]) <= set(refund)
    assert set(fixture("shopify-order-450789469-keys.json")["refund_line_item"]) <= set(refund["refund_line_items"][0])
    assert len({h.headers["X-Shopify-Webhook-Id"] for h in receiver.hits}) == 4


async def test_graphql_refuses_a_missing_or_wrong_access_token(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    for headers in ({}, {"X-Shopify-Access-Token": "wrong"}):
        resp = await client.post(GQL, json={"query": VARIANTS, "variables": {"query": "sku:SB-0001"}}, headers=headers)
        assert resp.status == 401
        assert "Invalid API key or access token" in (await resp.json())["errors"]


async def test_product_variants_by_sku_answers_nodes_and_extensions_cost(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    body = await gql(client, VARIANTS, {"query": 'sku:"SB-0002"'})
    nodes = body["data"]["productVariants"]["nodes"]
    assert [n["sku"] for n in nodes] == ["SB-0002"]
    assert nodes[0]["inventoryItem"]["id"].startswith("gid://shopify/InventoryItem/")
    cost = body["extensions"]["cost"]
    assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


async def test_inventory_set_quantities_sets_available_and_checks_compare_quantity(serve: Serve) -> None:
    app = make_app(SETTINGS)
    store = app[STATE]
    client = await serve(app)
    item = (await gql(client, VARIANTS, {"query": "sku:SB-0003"}))["data"]["productVariants"]["nodes"][0][
        "inventoryItem"
    ]["id"]
    loc = "gid://shopify/Location/655441491"
    q = {"inventoryItemId": item, "locationId": loc, "quantity": 42, "changeFromQuantity": None}
    inp = {"name": "available", "reason": "correction", "ignoreCompareQuantity": True, "quantities": [q]}
    out = (await gql(client, INVENTORY_SET, {"input": inp, "idempotencyKey": "k1"}))["data"]["inventorySetQuantities"]
    assert out["userErrors"] == []
    assert out["inventoryAdjustmentGroup"]["changes"][0]["quantityAfterChange"] == 42
    assert store.available("SB-0003") == 42
    stale = {**inp, "ignoreCompareQuantity": False, "quantities": [{**q, "quantity": 5, "changeFromQuantity": 7}]}
    out = (await gql(client, INVENTORY_SET, {"input": stale, "idempotencyKey": "k2"}))["data"]["inventorySetQuantities"]
    assert out["userErrors"][0]["code"] == "COMPARE_QUANTITY_STALE"
    assert store.available("SB-0003") == 42
    calls = store.recorder.find("POST", GQL)
    assert calls[-1].idempotency_key == "k2"


async def test_second_fulfillment_of_a_fulfillment_order_is_refused_and_counted_as_refused(serve: Serve) -> None:
    app = make_app(SETTINGS)
    store = app[STATE]
    client = await serve(app)
    order = store.place_order([("SB-0001", 2), ("SB-0005", 1)])
    shop = (await gql(client, FULFILLMENT_ORDERS, {"id": order["admin_graphql_api_id"]}))["data"]["order"]
    fo = shop["fulfillmentOrders"]["nodes"][0]
    assert fo["status"] == "OPEN" and fo["assignedLocation"]["location"]["id"] == "gid://shopify/Location/655441491"
    items = [{"id": li["id"], "quantity": li["remainingQuantity"]} for li in fo["lineItems"]["nodes"]]
    variables = {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items}],
            "trackingInfo": {"number": "1Z999", "company": "UPS"},
        }
    }
    first = (await gql(client, FULFILLMENT_CREATE, variables))["data"]["fulfillmentCreate"]
    assert first["userErrors"] == [] and first["fulfillment"]["status"] == "SUCCESS"
    assert store.duplicate_side_effects == 0
    assert store.orders[order["id"]]["fulfillment_status"] == "fulfilled"
    again = (await gql(client, FULFILLMENT_CREATE, variables))["data"]["fulfillmentCreate"]
    assert again["fulfillment"] is None and again["userErrors"]
    assert store.refused_duplicates == 1 and store.duplicate_side_effects == 0


async def test_order_cancel_twice_is_refused_and_counted(serve: Serve, receiver: Receiver) -> None:
    app = make_app(SETTINGS)
    store = app[STATE]
    client = await serve(app)
    order = store.build_order([("SB-0006", 1)])
    store.sender.set_target(receiver.url)
    variables = {"orderId": order["admin_graphql_api_id"], "reason": "CUSTOMER", "restock": True}
    first = (await gql(client, ORDER_CANCEL, variables))["data"]["orderCancel"]
    assert first["orderCancelUserErrors"] == [] and first["job"]["id"].startswith("gid://shopify/Job/")
    assert store.orders[order["id"]]["cancelled_at"]
    second = (await gql(client, ORDER_CANCEL, variables))["data"]["orderCancel"]
    assert second["orderCancelUserErrors"]
    assert store.refused_duplicates == 1 and store.duplicate_side_effects == 0
    assert await store.drain(5)
    assert [h.headers["X-Shopify-Topic"] for h in receiver.hits] == ["orders/cancelled"]


async def test_refund_create_replayed_with_the_same_idempotency_key_refunds_once(serve: Serve) -> None:
    app = make_app(ShopifySettings(access_token="shpat_test", echo_webhooks=False))
    store = app[STATE]
    client = await serve(app)
    order = store.build_order([("SB-0007", 2)])
    line = order["line_items"][0]
    inp = {
        "orderId": order["admin_graphql_api_id"],
        "refundLineItems": [{"lineItemId": line["admin_graphql_api_id"], "quantity": 1, "restockType": "RETURN"}],
    }
    a = (await gql(client, REFUND_CREATE, {"input": inp, "idempotencyKey": "ref_1"}))["data"]["refundCreate"]
    b = (await gql(client, REFUND_CREATE, {"input": inp, "idempotencyKey": "ref_1"}))["data"]["refundCreate"]
    assert a == b and a["userErrors"] == []
    assert len(store.refunds) == 1 and store.duplicate_side_effects == 0
    assert Decimal(a["refund"]["totalRefundedSet"]["shopMoney"]["amount"]) > 0
    over = {**inp, "refundLineItems": [{**inp["refundLineItems"][0], "quantity": 2}]}
    c = (await gql(client, REFUND_CREATE, {"input": over, "idempotencyKey": "ref_2"}))["data"]["refundCreate"]
    assert c["refund"] is None and store.refused_duplicates == 1 and store.duplicate_side_effects == 0


async def test_graphql_is_throttled_when_the_cost_bucket_is_empty(serve: Serve) -> None:
    client = await serve(make_app(ShopifySettings(access_token="shpat_test", bucket_size=20, restore_rate=0.001)))
    codes = []
    for _ in range(4):
        body = await gql(client, FULFILLMENT_CREATE, {"fulfillment": {"lineItemsByFulfillmentOrder": []}})
        codes.append((body.get("errors") or [{}])[0].get("extensions", {}).get("code"))
        assert "cost" in body["extensions"]
    assert codes[:2] == [None, None] and codes[2:] == ["THROTTLED", "THROTTLED"]


async def test_unknown_root_field_is_a_graphql_error(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    body = await gql(client, "query { shopifyPaymentsAccount { id } }")
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"


async def test_control_route_generates_orders_and_records_are_json(serve: Serve, receiver: Receiver) -> None:
    app = make_app(SETTINGS)
    client = await serve(app)
    await client.post("/_sandbox/webhook-target", json={"url": receiver.url})
    resp = await client.post("/_sandbox/orders", json={"count": 3})
    assert len((await resp.json())["orders"]) == 3
    assert await app[STATE].drain(5)
    assert len(receiver.hits) == 3
    await gql(client, VARIANTS, {"query": "sku:SB-0001"})
    calls = (await (await client.get("/_sandbox/calls")).json())["calls"]
    assert [c["path"] for c in calls] == [GQL]  # control routes are not recorded
    assert json.loads(receiver.hits[0].body)["line_items"]
