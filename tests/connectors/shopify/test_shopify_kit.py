"""The connector test kit (hub.testing) on the Shopify connector and its recorded fixtures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.shopify import ShopifyConnector
from hub.testing import ConnectorKit, Outbound

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "shpss_kit_client_secret"
GRAPHQL = "/admin/api/2026-07/graphql.json"
SOURCE = "https://shopify.dev/docs/api/admin-graphql/2026-07/mutations (request: query + variables)"


def warm(conn: Any) -> ShopifyConnector:
    """The SKU's inventory item is already cached, so the push is one request (as after the first push)."""
    assert isinstance(conn, ShopifyConnector)
    conn._items["IPOD2008GREEN"] = "gid://shopify/InventoryItem/808950810"
    return conn


def cancel_order(conn: Any) -> Any:
    from hub.testing import sample_order

    order = sample_order("kit-shopify", external_id="450789469", lines=[("IPOD2008GREEN", 1, "199.00")])
    return conn.push_cancellation(order, "customer")


class TestShopifyKit(ConnectorKit):
    connector = ShopifyConnector
    settings = {
        "shop_domain": "test-shop.myshopify.com",
        "access_token": "shpat_kit_token",
        "client_secret": SECRET,
        "location_map": {"wh-east": "655441491"},
    }
    connection_id = "kit-shopify"
    webhooks_dir = FIXTURES
    order_created = "orders_create"
    order_updated = "orders_updated"
    order_cancelled = "orders_cancelled"
    refund_created = "refunds_create"
    outbound = [
        Outbound(
            name="push_inventory",
            call=lambda c: warm(c).push_inventory("IPOD2008GREEN", 42, "wh-east"),
            method="POST",
            url=GRAPHQL,
            response=(
                200,
                {
                    "data": {
                        "inventorySetQuantities": {
                            "inventoryAdjustmentGroup": {
                                "id": "gid://shopify/InventoryAdjustmentGroup/1",
                                "reason": "correction",
                                "changes": [],
                            },
                            "userErrors": [],
                        }
                    }
                },
            ),
            example={
                "query": "mutation inventorySetQuantities(...) { ... }",
                "variables": {
                    "input": {
                        "name": "available",
                        "reason": "correction",
                        "referenceDocumentUri": "orderhub://inventory/wh-east",
                        "ignoreCompareQuantity": True,
                        "quantities": [
                            {
                                "inventoryItemId": "gid://shopify/InventoryItem/30322695",
                                "locationId": "gid://shopify/Location/124656943",
                                "quantity": 11,
                                "changeFromQuantity": None,
                            }
                        ],
                    },
                    "idempotencyKey": "f0b5c2ae-0f1d-4b4e-8b55-4d3a9f1e2c01",
                },
            },
            source=SOURCE,
        ),
        Outbound(
            name="push_cancellation",
            call=cancel_order,
            method="POST",
            url=GRAPHQL,
            response=(
                200,
                {
                    "data": {
                        "orderCancel": {
                            "job": {"id": "gid://shopify/Job/1", "done": False},
                            "orderCancelUserErrors": [],
                        }
                    }
                },
            ),
            example={
                "query": "mutation OrderCancel(...) { ... }",
                "variables": {
                    "orderId": "gid://shopify/Order/148977776",
                    "notifyCustomer": True,
                    "refundMethod": {"originalPaymentMethodsRefund": True},
                    "restock": True,
                    "reason": "CUSTOMER",
                    "staffNote": "Wrong size. Customer reached out saying they already re-purchased the correct size.",
                },
            },
            source="https://shopify.dev/docs/api/admin-graphql/2026-07/mutations/orderCancel (example)",
        ),
    ]

    def sign(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        return {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
