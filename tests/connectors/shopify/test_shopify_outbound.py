"""Shopify outbound: GraphQL Admin API request shapes (respx), throttling and errors.

Response bodies follow shopify.dev/docs/api/admin-graphql/2026-07 (mutation payloads, userErrors,
``extensions.cost``) and the THROTTLED example at
https://community.shopify.com/t/graphql-admin-api-example-throttled-requests-response/8456/3.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx

from connectors.shopify import ShopifyConnector, ShopifySettings, throttle_wait
from hub.errors import FatalError, RetriableError
from hub.http import RetryPolicy, client_for
from hub.model import Money, Order, Refund, RefundLine, Shipment, ShipmentLine, new_id

URL = "https://test-shop.myshopify.com/admin/api/2026-07/graphql.json"
FIXTURES = Path(__file__).parent / "fixtures"
COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}


@pytest.fixture
async def conn() -> AsyncIterator[ShopifyConnector]:
    settings = ShopifySettings(
        shop_domain="test-shop.myshopify.com",
        access_token="shpat_test_token",
        client_secret="shpss_secret",
        location_map={"wh-east": "655441491", "wh-west": "gid://shopify/Location/487838322"},
    )
    conn = ShopifyConnector("shop-us", settings)
    # one attempt per call: the retries of hub.http.call are tested there (and by the connector kit)
    conn.http = client_for(conn, transport=httpx.AsyncHTTPTransport(), retry=RetryPolicy(attempts=1))
    async with conn.http:
        yield conn


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": {"cost": COST}})


def sent(route: respx.Route, i: int = -1) -> dict[str, Any]:
    request = route.calls[i].request
    assert request.headers["X-Shopify-Access-Token"] == "shpat_test_token"
    doc: dict[str, Any] = json.loads(request.content)
    return doc


def operation(doc: dict[str, Any]) -> str:
    """``mutation name(`` / ``query name(`` of a document."""
    head = doc["query"].strip().split("(", 1)[0]
    return head.replace("mutation ", "").replace("query ", "").strip()


def order() -> Order:
    from connectors.shopify._connector import ShopifyConnector as C

    c = C("shop-us", ShopifySettings(shop_domain="x.myshopify.com", access_token="t", client_secret="s"))
    return c.map_order(orjson.loads((FIXTURES / "orders_create.json").read_bytes()))


class Router:
    """Answers each GraphQL operation with a canned body, by operation name."""

    def __init__(self, answers: dict[str, httpx.Response | list[httpx.Response]]) -> None:
        self.answers = answers
        self.ops: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        op = operation(doc)
        self.ops.append(op)
        answer = self.answers[op]
        if isinstance(answer, list):
            return answer.pop(0)
        return answer


VARIANT = ok(
    {
        "productVariants": {
            "nodes": [
                {
                    "id": "gid://shopify/ProductVariant/39072856",
                    "sku": "IPOD2008GREEN",
                    "inventoryItem": {"id": "gid://shopify/InventoryItem/808950810"},
                }
            ]
        }
    }
)
SET_OK = ok(
    {
        "inventorySetQuantities": {
            "inventoryAdjustmentGroup": {
                "id": "gid://shopify/InventoryAdjustmentGroup/1",
                "reason": "correction",
                "changes": [],
            },
            "userErrors": [],
        }
    }
)


@respx.mock
async def test_push_inventory_sets_available_at_the_mapped_location(conn: ShopifyConnector) -> None:
    router = Router({"variantBySku": VARIANT, "inventorySetQuantities": SET_OK})
    route = respx.post(URL).mock(side_effect=router)
    result = await conn.push_inventory("IPOD2008GREEN", 42, "wh-east")
    assert result.external_id == "gid://shopify/InventoryAdjustmentGroup/1"
    assert router.ops == ["variantBySku", "inventorySetQuantities"]
    assert sent(route, 0)["variables"] == {"query": 'sku:"IPOD2008GREEN"'}
    doc = sent(route, 1)
    assert "@idempotent(key: $idempotencyKey)" in doc["query"]
    assert doc["variables"]["idempotencyKey"]
    assert doc["variables"]["input"] == {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "orderhub://inventory/wh-east",
        "ignoreCompareQuantity": True,
        "quantities": [
            {
                "inventoryItemId": "gid://shopify/InventoryItem/808950810",
                "locationId": "gid://shopify/Location/655441491",
                "quantity": 42,
                "changeFromQuantity": None,
            }
        ],
    }


@respx.mock
async def test_the_inventory_item_of_a_sku_is_looked_up_once(conn: ShopifyConnector) -> None:
    router = Router({"variantBySku": VARIANT, "inventorySetQuantities": SET_OK})
    respx.post(URL).mock(side_effect=router)
    await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    await conn.push_inventory("IPOD2008GREEN", 2, "wh-west")
    assert router.ops == ["variantBySku", "inventorySetQuantities", "inventorySetQuantities"]


@respx.mock
async def test_an_unknown_sku_or_unmapped_location_is_fatal_and_says_what_to_do(conn: ShopifyConnector) -> None:
    respx.post(URL).mock(
        return_value=ok(
            {"productVariants": {"nodes": [{"id": "v", "sku": "IPOD2008GREEN-2", "inventoryItem": {"id": "i"}}]}}
        )
    )
    with pytest.raises(FatalError, match="Shopify has no variant with SKU 'IPOD2008GREEN'"):
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    with pytest.raises(FatalError, match="hub location 'store-9' is not in the location_map of connection shop-us"):
        await conn.push_inventory("IPOD2008GREEN", 1, "store-9")


@respx.mock
async def test_user_errors_are_fatal_naming_field_and_message(conn: ShopifyConnector) -> None:
    bad = ok(
        {
            "inventorySetQuantities": {
                "inventoryAdjustmentGroup": None,
                "userErrors": [
                    {
                        "code": "INVALID_LOCATION",
                        "field": ["input", "quantities", "0", "locationId"],
                        "message": "The specified location could not be found.",
                    }
                ],
            }
        }
    )
    respx.post(URL).mock(side_effect=Router({"variantBySku": VARIANT, "inventorySetQuantities": bad}))
    with pytest.raises(FatalError) as info:
        await conn.push_inventory("IPOD2008GREEN", 5, "wh-east")
    assert "input.quantities.0.locationId: The specified location could not be found." in info.value.detail
    assert "shpat_test_token" not in info.value.detail


@respx.mock
async def test_throttled_gives_retriable_with_wait_from_cost_and_restore_rate(conn: ShopifyConnector) -> None:
    throttled = httpx.Response(
        200,
        json={
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 752,
                    "actualQueryCost": None,
                    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 452, "restoreRate": 50.0},
                }
            },
        },
    )
    respx.post(URL).mock(return_value=throttled)
    with pytest.raises(RetriableError) as info:
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    assert info.value.retry_after == 6.0  # (752 - 452) / 50
    assert conn.throttle_status == {"maximumAvailable": 1000.0, "currentlyAvailable": 452, "restoreRate": 50.0}


def test_throttle_wait_rounds_up_and_never_is_zero() -> None:
    status = {"currentlyAvailable": 95, "restoreRate": 100.0}
    assert throttle_wait({"requestedQueryCost": 101, "throttleStatus": status}) == 0.1
    assert throttle_wait({"requestedQueryCost": 10, "throttleStatus": status}) == 0.1
    assert throttle_wait({"requestedQueryCost": 333, "throttleStatus": status}) == 2.4
    assert throttle_wait({}) == 1.0


@respx.mock
async def test_http_429_honours_retry_after(conn: ShopifyConnector) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            429,
            headers={"Retry-After": "2.0"},
            json={
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
            },
        )
    )
    with pytest.raises(RetriableError) as info:
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    assert info.value.retry_after == 2.0


@respx.mock
async def test_5xx_and_timeouts_are_retriable_and_401_is_fatal(conn: ShopifyConnector) -> None:
    respx.post(URL).mock(return_value=httpx.Response(503))
    with pytest.raises(RetriableError, match="answered 503"):
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetriableError, match="ReadTimeout"):
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")
    respx.post(URL).mock(return_value=httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}))
    with pytest.raises(FatalError, match="check the connection's credentials"):
        await conn.push_inventory("IPOD2008GREEN", 1, "wh-east")


FULFILLMENT_ORDERS = ok(
    {
        "order": {
            "id": "gid://shopify/Order/450789469",
            "name": "#1001",
            "fulfillmentOrders": {
                "nodes": [
                    {
                        "id": "gid://shopify/FulfillmentOrder/1046000811",
                        "status": "OPEN",
                        "assignedLocation": {"location": {"id": "gid://shopify/Location/655441491"}},
                        "lineItems": {
                            "nodes": [
                                {
                                    "id": "gid://shopify/FulfillmentOrderLineItem/1072503316",
                                    "remainingQuantity": 1,
                                    "lineItem": {"id": "gid://shopify/LineItem/466157049", "sku": "IPOD2008GREEN"},
                                },
                                {
                                    "id": "gid://shopify/FulfillmentOrderLineItem/1072503317",
                                    "remainingQuantity": 1,
                                    "lineItem": {"id": "gid://shopify/LineItem/518995019", "sku": "IPOD2008RED"},
                                },
                            ]
                        },
                    },
                    {
                        "id": "gid://shopify/FulfillmentOrder/1046000812",
                        "status": "CLOSED",
                        "assignedLocation": {"location": {"id": "gid://shopify/Location/655441491"}},
                        "lineItems": {"nodes": []},
                    },
                ]
            },
        }
    }
)
FULFILLMENT_OK = ok(
    {
        "fulfillmentCreate": {
            "fulfillment": {"id": "gid://shopify/Fulfillment/255858046", "status": "SUCCESS"},
            "userErrors": [],
        }
    }
)


def shipment(lines: list[ShipmentLine]) -> Shipment:
    return Shipment(
        id=new_id("shp"),
        carrier="UPS",
        tracking_number="1Z001985YW99744790",
        tracking_url="https://www.ups.com/track?tracknum=1Z001985YW99744790",
        lines=lines,
        shipped_at=datetime(2026, 7, 2, 12, 0, tzinfo=UTC),
    )


@respx.mock
async def test_push_fulfillment_fulfils_the_shipped_lines_with_tracking(conn: ShopifyConnector) -> None:
    router = Router({"fulfillmentOrders": FULFILLMENT_ORDERS, "fulfillmentCreate": FULFILLMENT_OK})
    route = respx.post(URL).mock(side_effect=router)
    result = await conn.push_fulfillment(order(), shipment([ShipmentLine(sku="IPOD2008RED", quantity=1, line_no=2)]))
    assert result.external_id == "gid://shopify/Fulfillment/255858046"
    assert router.ops == ["fulfillmentOrders", "fulfillmentCreate"]
    assert sent(route, 0)["variables"] == {"id": "gid://shopify/Order/450789469"}
    assert sent(route, 1)["variables"] == {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1046000811",
                    "fulfillmentOrderLineItems": [
                        {"id": "gid://shopify/FulfillmentOrderLineItem/1072503317", "quantity": 1}
                    ],
                }
            ],
            "notifyCustomer": True,
            "trackingInfo": {
                "number": "1Z001985YW99744790",
                "company": "UPS",
                "url": "https://www.ups.com/track?tracknum=1Z001985YW99744790",
            },
        }
    }


@respx.mock
async def test_push_fulfillment_refuses_more_than_is_open(conn: ShopifyConnector) -> None:
    respx.post(URL).mock(side_effect=Router({"fulfillmentOrders": FULFILLMENT_ORDERS}))
    with pytest.raises(FatalError, match=r"1 x IPOD2008BLACK .* is not open for fulfilment"):
        await conn.push_fulfillment(order(), shipment([ShipmentLine(sku="IPOD2008BLACK", quantity=1)]))


@respx.mock
async def test_push_cancellation_sends_order_cancel(conn: ShopifyConnector) -> None:
    answer = ok({"orderCancel": {"job": {"id": "gid://shopify/Job/1", "done": False}, "orderCancelUserErrors": []}})
    route = respx.post(URL).mock(return_value=answer)
    o = order()
    result = await conn.push_cancellation(o, "out_of_stock")
    assert result.external_id == "gid://shopify/Job/1"
    doc = sent(route)
    assert operation(doc) == "orderCancel"
    assert doc["variables"] == {
        "orderId": "gid://shopify/Order/450789469",
        "reason": "INVENTORY",
        "refundMethod": {"originalPaymentMethodsRefund": True},
        "restock": True,
        "notifyCustomer": True,
        "staffNote": f"Cancelled by Orderhub (order {o.id}): out_of_stock",
    }


@respx.mock
async def test_order_cancel_user_errors_are_fatal(conn: ShopifyConnector) -> None:
    answer = ok(
        {
            "orderCancel": {
                "job": None,
                "orderCancelUserErrors": [
                    {
                        "code": "ORDER_ALREADY_CANCELLED",
                        "field": ["orderId"],
                        "message": "Order has already been cancelled",
                    }
                ],
            }
        }
    )
    respx.post(URL).mock(return_value=answer)
    with pytest.raises(FatalError, match="orderId: Order has already been cancelled"):
        await conn.push_cancellation(order())


@respx.mock
async def test_push_refund_refunds_against_the_sale_idempotently(conn: ShopifyConnector) -> None:
    txs = ok(
        {
            "order": {
                "id": "gid://shopify/Order/450789469",
                "transactions": [
                    {
                        "id": "gid://shopify/OrderTransaction/389404469",
                        "kind": "AUTHORIZATION",
                        "status": "SUCCESS",
                        "gateway": "bogus",
                    },
                    {
                        "id": "gid://shopify/OrderTransaction/801038806",
                        "kind": "CAPTURE",
                        "status": "SUCCESS",
                        "gateway": "bogus",
                    },
                ],
            }
        }
    )
    created = ok(
        {
            "refundCreate": {
                "refund": {
                    "id": "gid://shopify/Refund/929361465",
                    "totalRefundedSet": {"shopMoney": {"amount": "41.94", "currencyCode": "USD"}},
                },
                "userErrors": [],
            }
        }
    )
    router = Router({"orderTransactions": txs, "refundCreate": created})
    route = respx.post(URL).mock(side_effect=router)
    o = order()
    refund = Refund(
        id=new_id("ref"),
        order_id=o.id,
        return_id=new_id("ret"),
        amount=Money.of("41.94", "USD"),
        lines=[RefundLine(line_no=2, sku="IPOD2008RED", quantity=1, amount=Money.of("41.94", "USD"))],
        shipping=Money.of("5.00", "USD"),
        reason="wrong size",
        created_at=datetime(2026, 7, 3, tzinfo=UTC),
    )
    result = await conn.push_refund(o, refund)
    assert result.external_id == "gid://shopify/Refund/929361465"
    assert router.ops == ["orderTransactions", "refundCreate"]
    doc = sent(route, 1)
    assert "@idempotent(key: $idempotencyKey)" in doc["query"]
    assert doc["variables"] == {
        "idempotencyKey": refund.id,
        "input": {
            "orderId": "gid://shopify/Order/450789469",
            "currency": "USD",
            "note": "wrong size",
            "notify": True,
            "refundLineItems": [
                {"lineItemId": "gid://shopify/LineItem/518995019", "quantity": 1, "restockType": "RETURN"}
            ],
            "transactions": [
                {
                    "orderId": "gid://shopify/Order/450789469",
                    "parentId": "gid://shopify/OrderTransaction/801038806",
                    "gateway": "bogus",
                    "kind": "REFUND",
                    "amount": "41.94",
                }
            ],
            "shipping": {"amount": "5.00"},
        },
    }
    assert Decimal(doc["variables"]["input"]["transactions"][0]["amount"]) == Decimal("41.94")
