"""The Amazon simulator: LWA tokens, Orders v0 (paging, items, shipment confirmation), Listings Items PATCH."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from sandbox._common import iso
from sandbox.amazon.app import STATE, AmazonSettings, make_app

from .conftest import Serve, fixture

SETTINGS = AmazonSettings(seed=11)
DEFS = fixture("amazon-ordersV0-definitions.json")


async def token(client: Any, **overrides: str) -> str:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": SETTINGS.refresh_token,
        "client_id": SETTINGS.client_id,
        "client_secret": SETTINGS.client_secret,
        **overrides,
    }
    resp = await client.post("/auth/o2/token", data=form)
    body = await resp.json()
    assert resp.status == 200, body
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"} and body["token_type"] == "bearer"
    return str(body["access_token"])


async def test_lwa_refuses_a_bad_refresh_token_and_client_secret(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    base = {
        "grant_type": "refresh_token",
        "refresh_token": "nope",
        "client_id": SETTINGS.client_id,
        "client_secret": SETTINGS.client_secret,
    }
    resp = await client.post("/auth/o2/token", data=base)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    resp = await client.post("/auth/o2/token", data={**base, "client_secret": "x"})
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_sp_api_calls_need_a_valid_access_token(serve: Serve) -> None:
    app = make_app(AmazonSettings(token_ttl=0))
    client = await serve(app)
    resp = await client.get(
        "/orders/v0/orders", params={"MarketplaceIds": "ATVPDKIKX0DER", "CreatedAfter": "2020-01-01T00:00:00Z"}
    )
    assert resp.status == 403
    body = await resp.json()
    assert set(body["errors"][0]) == set(DEFS["Error"]["properties"]) and resp.headers["x-amzn-RequestId"]
    expired = await token(client)  # token_ttl=0: already expired
    resp = await client.get(
        "/orders/v0/orders",
        headers={"x-amz-access-token": expired},
        params={"MarketplaceIds": "ATVPDKIKX0DER", "CreatedAfter": "2020-01-01T00:00:00Z"},
    )
    assert resp.status == 403 and "expired" in (await resp.json())["errors"][0]["message"]


async def test_get_orders_pages_with_next_token_in_the_real_shape(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    t0 = time.time() - 60
    made = [state.new_order(purchased_at=t0 + i) for i in range(7)]
    headers = {"x-amz-access-token": await token(client)}
    params: dict[str, str] = {
        "MarketplaceIds": "ATVPDKIKX0DER",
        "LastUpdatedAfter": iso(t0 - 1),
        "MaxResultsPerPage": "3",
    }
    seen: list[str] = []
    pages = 0
    while True:
        resp = await client.get("/orders/v0/orders", params=params, headers=headers)
        assert resp.status == 200 and resp.headers["x-amzn-RateLimit-Limit"] == "0.0167"
        payload = (await resp.json())["payload"]
        assert set(payload) <= set(DEFS["OrdersList"]["properties"])
        for order in payload["Orders"]:
            assert set(DEFS["Order"]["required"]) <= set(order) <= set(DEFS["Order"]["properties"])
            assert set(order["OrderTotal"]) == set(DEFS["Money"]["properties"])
            assert set(order["ShippingAddress"]) <= set(DEFS["Address"]["properties"])
        seen += [o["AmazonOrderId"] for o in payload["Orders"]]
        pages += 1
        if "NextToken" not in payload:
            break
        params = {"MarketplaceIds": "ATVPDKIKX0DER", "NextToken": payload["NextToken"]}
    assert pages == 3 and seen == [o["AmazonOrderId"] for o in made]
    example = fixture("amazon-getOrders-200.json")["payload"]["Orders"][0]
    assert {"AmazonOrderId", "PurchaseDate", "LastUpdateDate", "OrderStatus", "OrderTotal", "MarketplaceId"} <= set(
        example
    )


async def test_get_orders_filters_on_last_update_and_validates_parameters(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    old = state.new_order(purchased_at=time.time() - 3600)
    headers = {"x-amz-access-token": await token(client)}
    since = iso(time.time() - 60)
    body = await (
        await client.get(
            "/orders/v0/orders", params={"MarketplaceIds": "ATVPDKIKX0DER", "LastUpdatedAfter": since}, headers=headers
        )
    ).json()
    assert body["payload"]["Orders"] == []
    state.set_status(old["AmazonOrderId"], "Canceled")
    body = await (
        await client.get(
            "/orders/v0/orders", params={"MarketplaceIds": "ATVPDKIKX0DER", "LastUpdatedAfter": since}, headers=headers
        )
    ).json()
    assert [o["OrderStatus"] for o in body["payload"]["Orders"]] == ["Canceled"]
    resp = await client.get("/orders/v0/orders", params={"LastUpdatedAfter": since}, headers=headers)
    assert resp.status == 400
    assert set(await resp.json()) == set(fixture("amazon-getOrders-400.json"))


async def test_order_items_and_shipment_confirmation_with_duplicate_counting(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    order = state.new_order([("SB-0001", 2)])
    oid = order["AmazonOrderId"]
    headers = {"x-amz-access-token": await token(client)}
    resp = await client.get(f"/orders/v0/orders/{oid}/orderItems", headers=headers)
    payload = (await resp.json())["payload"]
    assert set(payload) == set(fixture("amazon-getOrderItems-200.json")["payload"])
    item = payload["OrderItems"][0]
    assert set(DEFS["OrderItem"]["required"]) <= set(item) <= set(DEFS["OrderItem"]["properties"])
    unit = Decimal(state.products["SB-0001"].price)
    assert item["SellerSKU"] == "SB-0001" and Decimal(item["ItemPrice"]["Amount"]) == 2 * unit  # a line total
    confirm = {
        "marketplaceId": "ATVPDKIKX0DER",
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "UPS",
            "trackingNumber": "1Z1",
            "shipDate": iso(),
            "orderItems": [{"orderItemId": item["OrderItemId"], "quantity": 2}],
        },
    }
    assert set(confirm["packageDetail"]) <= set(DEFS["PackageDetail"]["properties"])
    resp = await client.post(f"/orders/v0/orders/{oid}/shipmentConfirmation", json=confirm, headers=headers)
    assert resp.status == 204 and resp.headers["x-amzn-RateLimit-Limit"]
    assert state.orders[oid]["OrderStatus"] == "Shipped" and state.duplicate_side_effects == 0
    resp = await client.post(f"/orders/v0/orders/{oid}/shipmentConfirmation", json=confirm, headers=headers)
    assert resp.status == 204 and state.duplicate_side_effects == 1
    bad = {"marketplaceId": "ATVPDKIKX0DER", "packageDetail": {"packageReferenceId": "2"}}
    resp = await client.post(f"/orders/v0/orders/{oid}/shipmentConfirmation", json=bad, headers=headers)
    assert resp.status == 400 and "packageDetail.trackingNumber" in (await resp.json())["errors"][0]["message"]


async def test_listings_patch_records_the_quantity_and_answers_the_submission_shape(serve: Serve) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    headers = {"x-amz-access-token": await token(client)}
    body = {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 17}],
            }
        ],
    }
    resp = await client.patch(
        f"/listings/2021-08-01/items/{SETTINGS.seller_id}/SB-0002",
        params={"marketplaceIds": "ATVPDKIKX0DER"},
        json=body,
        headers=headers,
    )
    answer = await resp.json()
    assert resp.status == 200 and set(answer) == set(fixture("amazon-patchListingsItem-200.json"))
    assert answer["status"] == "ACCEPTED" and state.quantity("SB-0002") == 17
    assert resp.headers["x-amzn-RateLimit-Limit"] == "5.0"


async def test_throttling_answers_429_quota_exceeded(serve: Serve) -> None:
    app = make_app(SETTINGS)
    client = await serve(app)
    headers = {"x-amz-access-token": await token(client)}
    app[STATE].faults.update({"rate_429": 1.0})
    resp = await client.get("/orders/v0/orders/123-1234567-1234567", headers=headers)
    assert resp.status == 429
    assert (await resp.json())["errors"][0]["code"] == "QuotaExceeded" and resp.headers["x-amzn-RequestId"]
