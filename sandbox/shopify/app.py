"""Simulated Shopify store: REST-format order webhooks out, GraphQL Admin API in.

Webhooks (``orders/create``, ``orders/updated``, ``orders/cancelled``, ``refunds/create``) carry the REST
Order / Refund resource (the shape of Shopify's documented example order 450789469) and the headers of
Shopify/shopify-app-js ``lib/webhooks`` (``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body
with the app's client secret).

``POST /admin/api/{version}/graphql.json`` (``X-Shopify-Access-Token``) answers ``productVariants``,
``inventorySetQuantities``, ``order { fulfillmentOrders }``, ``fulfillmentOrder``, ``fulfillmentCreate``
(and ``fulfillmentCreateV2``), ``orderCancel`` and ``refundCreate`` with ``extensions.cost`` from a leaky
bucket (throttled: HTTP 200 with ``errors[].extensions.code == "THROTTLED"``, as Shopify does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from aiohttp import web

from sandbox._common import (
    DEFAULT_CATALOG,
    Faults,
    Product,
    SimState,
    add_control_routes,
    dumps,
    fault_middleware,
    iso,
    json_response,
    new_id,
    note,
    read_json,
)
from sandbox._graphql import RootField, operation_type, root_fields

__all__ = ["ShopifySettings", "ShopifyStore", "STATE", "make_app", "sign"]

_DECIMALS = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}
TAX_RATE = Decimal("0.06")


@dataclass
class ShopifySettings:
    """Credentials, catalog and behaviour of the simulated store."""

    shop_domain: str = "orderhub-sandbox.myshopify.com"
    access_token: str = "shpat_sandbox_token"
    client_secret: str = "shopify_sandbox_client_secret"
    api_version: str = "2026-07"
    currency: str = "USD"
    catalog: tuple[Product, ...] = DEFAULT_CATALOG
    locations: tuple[str, ...] = ("Sandbox Warehouse",)
    webhook_target: str | None = None
    bucket_size: float = 2000.0  # GraphQL points (Standard plan)
    restore_rate: float = 100.0  # points per second
    echo_webhooks: bool = True  # orderCancel / refundCreate through the API also send their webhooks
    throttle_http_429: bool = False  # throttle GraphQL with HTTP 429 + Retry-After instead of 200 THROTTLED
    faults: Faults = field(default_factory=Faults)
    seed: int | None = 1


def sign(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body keyed with the client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _gid(kind: str, n: int | str) -> str:
    return f"gid://shopify/{kind}/{n}"


def _gid_num(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = re.search(r"(\d+)(?:\?.*)?$", value)
        if m:
            return int(m.group(1))
    return None


class ShopifyStore(SimState):
    """The store's data and the client-facing API that scenarios drive."""

    name = "shopify"

    def __init__(self, settings: ShopifySettings) -> None:
        super().__init__(settings.faults, settings.seed, settings.webhook_target)
        self.settings = settings
        s = settings
        self.exp = Decimal(1).scaleb(-_DECIMALS.get(s.currency, 2))
        self.orders: dict[int, dict[str, Any]] = {}
        self.fulfillment_orders: dict[int, dict[str, Any]] = {}
        self.fulfillments: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, dict[str, Any]] = {}
        self._idempotent: dict[str, dict[str, Any]] = {}
        self._api_cancelled: set[int] = set()
        # Location ids start at 655441491, the location of Shopify's documented examples.
        self.locations = {655441491 + i: name for i, name in enumerate(s.locations)}
        self.variants: dict[str, dict[str, Any]] = {}
        self.inventory: dict[tuple[int, int], dict[str, int]] = {}
        self._product_id = new_id(self.rng)
        for p in s.catalog:
            v: dict[str, Any] = {"id": new_id(self.rng), "item": new_id(self.rng), "product": p}
            self.variants[p.sku] = v
            for loc in self.locations:
                self.inventory[(v["item"], loc)] = {"available": p.stock, "on_hand": p.stock}
        self._number = 1000
        self._bucket = s.bucket_size
        self._bucket_at = time.monotonic()

    # ------------------------------------------------------------------------------------ money

    def money(self, value: Decimal | str | int) -> str:
        """A decimal string in the store currency's precision."""
        return str(Decimal(value).quantize(self.exp, rounding=ROUND_HALF_UP))

    def money_set(self, value: Decimal | str) -> dict[str, Any]:
        amount = self.money(value)
        c = self.settings.currency
        return {
            "shop_money": {"amount": amount, "currency_code": c},
            "presentment_money": {"amount": amount, "currency_code": c},
        }

    def _gql_money(self, value: Decimal | str) -> dict[str, Any]:
        m = {"amount": self.money(value), "currencyCode": self.settings.currency}
        return {"shopMoney": m, "presentmentMoney": m}

    # ------------------------------------------------------------------------------------ orders

    def build_order(
        self,
        lines: list[tuple[str, int]] | None = None,
        *,
        discount: str | None = None,
        shipping: str = "10.00",
        financial_status: str = "paid",
        email: str | None = None,
        country_code: str = "US",
    ) -> dict[str, Any]:
        """A new order in the REST Order format whose totals add up (stored, not sent)."""
        rng = self.rng
        if lines is None:
            skus = rng.sample(list(self.variants), k=min(len(self.variants), rng.randint(1, 3)))
            lines = [(sku, rng.randint(1, 3)) for sku in skus]
        for sku, qty in lines:
            if sku not in self.variants:
                raise KeyError(f"SKU {sku!r} is not in the sandbox Shopify catalog; known: {sorted(self.variants)}")
            if qty < 1:
                raise ValueError(f"quantity {qty} for SKU {sku!r} must be at least 1")
        self._number += 1
        oid = new_id(rng)
        now = iso()
        totals = [Decimal(self.variants[sku]["product"].price) * qty for sku, qty in lines]
        gross = sum(totals, Decimal(0))
        disc_total = min(Decimal(discount), gross) if discount else Decimal(0)
        allocs: list[Decimal] = []
        for i, t in enumerate(totals):
            if i == len(totals) - 1:
                allocs.append(disc_total - sum(allocs, Decimal(0)))
            else:
                allocs.append(Decimal(self.money(disc_total * t / gross)) if gross else Decimal(0))
        taxes = [Decimal(self.money((t - a) * TAX_RATE)) for t, a in zip(totals, allocs, strict=True)]
        line_items = []
        for (sku, qty), a, tax in zip(lines, allocs, taxes, strict=True):
            v = self.variants[sku]
            p: Product = v["product"]
            lid = new_id(rng)
            line_items.append(
                {
                    "id": lid,
                    "admin_graphql_api_id": _gid("LineItem", lid),
                    "attributed_staffs": [],
                    "current_quantity": qty,
                    "fulfillable_quantity": qty,
                    "fulfillment_service": "manual",
                    "fulfillment_status": None,
                    "gift_card": False,
                    "grams": p.grams,
                    "name": p.title,
                    "price": self.money(p.price),
                    "price_set": self.money_set(p.price),
                    "product_exists": True,
                    "product_id": self._product_id,
                    "properties": [],
                    "quantity": qty,
                    "requires_shipping": True,
                    "sku": sku,
                    "taxable": True,
                    "title": p.title,
                    "total_discount": self.money(0),
                    "total_discount_set": self.money_set("0"),
                    "variant_id": v["id"],
                    "variant_inventory_management": "shopify",
                    "variant_title": None,
                    "vendor": "Orderhub Sandbox",
                    "tax_lines": [
                        {
                            "channel_liable": False,
                            "price": self.money(tax),
                            "price_set": self.money_set(tax),
                            "rate": float(TAX_RATE),
                            "title": "State Tax",
                        }
                    ],
                    "duties": [],
                    "discount_allocations": (
                        [{"amount": self.money(a), "amount_set": self.money_set(a), "discount_application_index": 0}]
                        if discount
                        else []
                    ),
                }
            )
        ship = Decimal(shipping)
        tax_total = sum(taxes, Decimal(0))
        subtotal = gross - disc_total
        total = subtotal + ship + tax_total
        first, last = rng.choice(["Ada", "Bob", "Chen", "Dana", "Eve"]), rng.choice(["Norman", "Lovelace", "Okafor"])
        mail = email or f"buyer{oid % 100000}@example.com"
        address = {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "company": None,
            "address1": f"{rng.randint(1, 999)} Sandbox Street",
            "address2": "",
            "city": "Louisville",
            "province": "Kentucky",
            "province_code": "KY",
            "zip": "40202",
            "country": "United States",
            "country_code": country_code,
            "phone": "+15025550100",
            "latitude": 38.2527,
            "longitude": -85.7585,
        }
        cid = new_id(rng)
        order: dict[str, Any] = {
            "id": oid,
            "admin_graphql_api_id": _gid("Order", oid),
            "app_id": None,
            "browser_ip": "0.0.0.0",
            "buyer_accepts_marketing": False,
            "cart_token": uuid.UUID(int=rng.getrandbits(128)).hex,
            "checkout_id": new_id(rng),
            "checkout_token": uuid.UUID(int=rng.getrandbits(128)).hex,
            "client_details": {
                "accept_language": None,
                "browser_height": None,
                "browser_ip": "0.0.0.0",
                "browser_width": None,
                "session_hash": None,
                "user_agent": None,
            },
            "current_total_additional_fees_set": None,
            "current_total_duties_set": None,
            "device_id": None,
            "landing_site": None,
            "landing_site_ref": None,
            "merchant_of_record_app_id": None,
            "order_status_url": f"https://{self.settings.shop_domain}/orders/{oid}/authenticate",
            "original_total_additional_fees_set": None,
            "original_total_duties_set": None,
            "payment_terms": None,
            "po_number": None,
            "reference": None,
            "referring_site": None,
            "source_identifier": None,
            "source_url": None,
            "cancel_reason": None,
            "cancelled_at": None,
            "closed_at": None,
            "confirmation_number": uuid.UUID(int=rng.getrandbits(128)).hex[:9].upper(),
            "confirmed": True,
            "contact_email": mail,
            "created_at": now,
            "currency": self.settings.currency,
            "customer_locale": "en",
            "discount_codes": (
                [{"code": "SANDBOX", "amount": self.money(disc_total), "type": "fixed_amount"}] if discount else []
            ),
            "discount_applications": (
                [
                    {
                        "target_type": "line_item",
                        "type": "discount_code",
                        "value": self.money(disc_total),
                        "value_type": "fixed_amount",
                        "allocation_method": "across",
                        "target_selection": "all",
                        "code": "SANDBOX",
                    }
                ]
                if discount
                else []
            ),
            "email": mail,
            "estimated_taxes": False,
            "financial_status": financial_status,
            "fulfillment_status": None,
            "location_id": None,
            "name": f"#{self._number}",
            "note": None,
            "note_attributes": [],
            "number": self._number - 1000,
            "order_number": self._number,
            "payment_gateway_names": ["bogus"],
            "phone": None,
            "presentment_currency": self.settings.currency,
            "processed_at": now,
            "source_name": "web",
            "tags": "",
            "tax_exempt": False,
            "tax_lines": [
                {
                    "price": self.money(tax_total),
                    "rate": float(TAX_RATE),
                    "title": "State Tax",
                    "price_set": self.money_set(tax_total),
                    "channel_liable": False,
                }
            ],
            "taxes_included": False,
            "test": True,
            "token": uuid.UUID(int=rng.getrandbits(128)).hex,
            "total_weight": sum(self.variants[s]["product"].grams * q for s, q in lines),
            "updated_at": now,
            "user_id": None,
            "billing_address": dict(address),
            "shipping_address": dict(address),
            "customer": {
                "id": cid,
                "email": mail,
                "created_at": now,
                "updated_at": now,
                "first_name": first,
                "last_name": last,
                "state": "disabled",
                "note": None,
                "verified_email": True,
                "tax_exempt": False,
                "phone": None,
                "tags": "",
                "currency": self.settings.currency,
                "admin_graphql_api_id": _gid("Customer", cid),
            },
            "line_items": line_items,
            "shipping_lines": [
                {
                    "id": new_id(rng),
                    "carrier_identifier": None,
                    "code": "Standard",
                    "discounted_price": self.money(ship),
                    "discounted_price_set": self.money_set(ship),
                    "is_removed": False,
                    "phone": None,
                    "price": self.money(ship),
                    "price_set": self.money_set(ship),
                    "requested_fulfillment_service_id": None,
                    "source": "shopify",
                    "title": "Standard Shipping",
                    "tax_lines": [],
                    "discount_allocations": [],
                }
            ],
            "fulfillments": [],
            "refunds": [],
        }
        money_fields = {
            "subtotal_price": subtotal,
            "total_discounts": disc_total,
            "total_line_items_price": gross,
            "total_price": total,
            "total_tax": tax_total,
        }
        for key, value in money_fields.items():
            order[key] = self.money(value)
            order[f"{key}_set"] = self.money_set(value)
            order[f"current_{key}"] = self.money(value)
            order[f"current_{key}_set"] = self.money_set(value)
        order["total_shipping_price_set"] = self.money_set(ship)
        order["total_outstanding"] = self.money(0 if financial_status == "paid" else total)
        order["total_tip_received"] = self.money(0)
        self.orders[oid] = order
        fo_id = new_id(rng)
        loc = next(iter(self.locations))
        self.fulfillment_orders[fo_id] = {
            "id": fo_id,
            "order_id": oid,
            "assigned_location_id": loc,
            "status": "OPEN",
            "line_items": [
                {
                    "id": new_id(rng),
                    "line_item_id": li["id"],
                    "sku": li["sku"],
                    "total": li["quantity"],
                    "remaining": li["quantity"],
                }
                for li in line_items
            ],
        }
        return order

    def _touch(self, order: dict[str, Any]) -> None:
        order["updated_at"] = iso()

    def send_webhook(self, topic: str, payload: dict[str, Any], *, event_id: str | None = None) -> str:
        """Send one webhook with Shopify's headers to the target; returns its ``X-Shopify-Webhook-Id``."""
        body = dumps(payload)
        webhook_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": self.settings.shop_domain,
            "X-Shopify-API-Version": self.settings.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": event_id or str(uuid.UUID(int=self.rng.getrandbits(128))),
            "X-Shopify-Triggered-At": iso(ms=True),
        }
        secret = self.settings.client_secret
        self.sender.send(topic, body, lambda b: {**headers, "X-Shopify-Hmac-Sha256": sign(secret, b)}, webhook_id)
        return webhook_id

    def place_order(self, lines: list[tuple[str, int]] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Create an order and send ``orders/create``."""
        order = self.build_order(lines, **kwargs)
        self.send_webhook("orders/create", order)
        return order

    def update_order(self, order_id: int, **changes: Any) -> dict[str, Any]:
        """Change top-level fields (e.g. ``note``, ``tags``) and send ``orders/updated``."""
        order = self._order(order_id)
        order.update(changes)
        self._touch(order)
        self.send_webhook("orders/updated", order)
        return order

    def cancel_order(self, order_id: int, reason: str = "customer") -> dict[str, Any]:
        """Cancel in the admin: sends ``orders/cancelled`` then ``orders/updated``."""
        order = self._order(order_id)
        self._cancel(order, reason)
        self.send_webhook("orders/cancelled", order)
        self.send_webhook("orders/updated", order)
        return order

    def refund_order(
        self, order_id: int, lines: list[tuple[int, int]] | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Refund ``(line_item_id, quantity)`` pairs (all by default) in the admin; sends ``refunds/create``."""
        order = self._order(order_id)
        pairs = lines or [(li["id"], li["quantity"]) for li in order["line_items"]]
        refund = self._refund(order, pairs, note, restock_type="return")
        self.send_webhook("refunds/create", refund)
        return refund

    def _order(self, order_id: int) -> dict[str, Any]:
        try:
            return self.orders[order_id]
        except KeyError:
            raise KeyError(f"Shopify order {order_id} does not exist in the sandbox store") from None

    def _cancel(self, order: dict[str, Any], reason: str) -> None:
        order["cancelled_at"] = iso()
        order["cancel_reason"] = reason
        order["closed_at"] = order["cancelled_at"]
        if order["financial_status"] == "paid":
            order["financial_status"] = "refunded"
        elif order["financial_status"] in ("pending", "authorized"):
            order["financial_status"] = "voided"
        for fo in self.fulfillment_orders.values():
            if fo["order_id"] == order["id"] and fo["status"] == "OPEN":
                fo["status"] = "CLOSED"
        self._touch(order)

    def _refund(
        self, order: dict[str, Any], pairs: list[tuple[int, int]], note: str | None, restock_type: str
    ) -> dict[str, Any]:
        rid = new_id(self.rng)
        now = iso()
        by_id = {li["id"]: li for li in order["line_items"]}
        rlis = []
        amount = Decimal(0)
        for line_id, qty in pairs:
            li = by_id[line_id]
            alloc = sum((Decimal(a["amount"]) for a in li["discount_allocations"]), Decimal(0))
            unit_net = (Decimal(li["price"]) * li["quantity"] - alloc) / li["quantity"]
            sub = Decimal(self.money(unit_net * qty))
            tax = Decimal(self.money(sub * TAX_RATE))
            amount += sub + tax
            li["current_quantity"] = max(0, li["current_quantity"] - qty)
            rlis.append(
                {
                    "id": new_id(self.rng),
                    "line_item_id": line_id,
                    "location_id": next(iter(self.locations)),
                    "quantity": qty,
                    "restock_type": restock_type,
                    "subtotal": float(sub),
                    "subtotal_set": self.money_set(sub),
                    "total_tax": float(tax),
                    "total_tax_set": self.money_set(tax),
                    "line_item": li,
                }
            )
        refund = {
            "id": rid,
            "admin_graphql_api_id": _gid("Refund", rid),
            "order_id": order["id"],
            "created_at": now,
            "processed_at": now,
            "note": note,
            "restock": restock_type != "no_restock",
            "user_id": None,
            "duties": [],
            "refund_duties": [],
            "refund_shipping_lines": [],
            "order_adjustments": [],
            "total_duties_set": self.money_set("0"),
            "refund_line_items": rlis,
            "transactions": [
                {
                    "id": new_id(self.rng),
                    "admin_graphql_api_id": _gid("OrderTransaction", rid),
                    "amount": self.money(amount),
                    "currency": self.settings.currency,
                    "gateway": "bogus",
                    "kind": "refund",
                    "order_id": order["id"],
                    "status": "success",
                    "created_at": now,
                    "processed_at": now,
                    "test": True,
                }
            ],
        }
        self.refunds[rid] = refund
        order["refunds"].append(refund)
        refunded = all(li["current_quantity"] == 0 for li in order["line_items"])
        order["financial_status"] = "refunded" if refunded else "partially_refunded"
        self._touch(order)
        return refund

    def available(self, sku: str, location_id: int | None = None) -> int:
        """The ``available`` quantity of a SKU at a location (the first one by default)."""
        loc = location_id or next(iter(self.locations))
        return self.inventory[(self.variants[sku]["item"], loc)]["available"]

    # ------------------------------------------------------------------------------- graphql cost

    def _spend(self, cost: float) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        s = self.settings
        self._bucket = min(s.bucket_size, self._bucket + (now - self._bucket_at) * s.restore_rate)
        self._bucket_at = now
        ok = self._bucket >= cost
        if ok:
            self._bucket -= cost
        return ok, self.cost(cost, cost if ok else 0)

    def cost(self, requested: float, actual: float) -> dict[str, Any]:
        """The ``extensions.cost`` object."""
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.settings.bucket_size,
                "currentlyAvailable": int(self._bucket),
                "restoreRate": self.settings.restore_rate,
            },
        }


STATE: web.AppKey[ShopifyStore] = web.AppKey("shopify_state", ShopifyStore)


def _throttled(store: ShopifyStore, requested: float = 10) -> web.Response:
    headers = {"Retry-After": "1.0"} if store.settings.throttle_http_429 else None
    return json_response(_throttled_body(store, requested), 429 if headers else 200, headers)


def _throttled_body(store: ShopifyStore, requested: float = 10) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }
        ],
        "extensions": {"cost": store.cost(requested, 0)},
    }


def make_app(settings: ShopifySettings | None = None) -> web.Application:
    """The simulated store as an aiohttp application; its state is ``app[STATE]``."""
    settings = settings or ShopifySettings()
    store = ShopifyStore(settings)

    def throttled(request: web.Request) -> web.Response:
        if request.path.endswith("/graphql.json"):
            return _throttled(store)
        return json_response(
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
            },
            429,
            {"Retry-After": "2.0"},
        )

    def server_error(request: web.Request, status: int) -> web.Response:
        msg = "Service Unavailable" if status == 503 else "Internal Server Error"
        return json_response({"errors": msg}, status)

    app = web.Application(middlewares=[fault_middleware(store, throttled, server_error)])
    app[STATE] = store
    add_control_routes(app, store)
    app.router.add_post("/admin/api/{version}/graphql.json", _graphql)
    app.router.add_post("/_sandbox/orders", _generate)
    return app


async def _generate(request: web.Request) -> web.Response:
    """Control: ``{"count": N}`` places N random orders (sends ``orders/create``)."""
    store = request.app[STATE]
    body = await read_json(request)
    count = int(body.get("count", 1)) if isinstance(body, dict) else 1
    orders = [store.place_order() for _ in range(count)]
    return json_response({"orders": [{"id": o["id"], "name": o["name"]} for o in orders]})


FieldHandler = Callable[[ShopifyStore, web.Request, RootField], dict[str, Any] | None]
_HANDLERS: dict[str, tuple[FieldHandler, float]] = {}
F = TypeVar("F", bound=FieldHandler)


def _field(name: str, cost: float) -> Callable[[F], F]:
    def deco(fn: F) -> F:
        _HANDLERS[name] = (fn, cost)
        return fn

    return deco


async def _graphql(request: web.Request) -> web.Response:
    store = request.app[STATE]
    token = request.headers.get("X-Shopify-Access-Token")
    if not token or not hmac.compare_digest(token, store.settings.access_token):
        return json_response(
            {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401
        )
    if request.match_info["version"] != store.settings.api_version:
        note(request, api_version=request.match_info["version"])
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return json_response({"errors": [{"message": "Parameter Missing or Invalid: query"}]}, 400)
    variables = body.get("variables") or {}
    try:
        fields = root_fields(body["query"], variables)
    except ValueError as exc:
        return json_response({"errors": [{"message": f"Parse error: {exc}"}]})
    op = operation_type(body["query"])
    note(request, operation=op, fields=[f.name for f in fields])
    errors = []
    for f in fields:
        if f.name not in _HANDLERS and not f.name.startswith("__"):
            root = "Mutation" if op == "mutation" else "QueryRoot"
            errors.append(
                {
                    "message": f"Field '{f.name}' doesn't exist on type '{root}'",
                    "extensions": {"code": "undefinedField", "typeName": root, "fieldName": f.name},
                }
            )
    if errors:
        return json_response({"errors": errors})
    requested = sum(_HANDLERS[f.name][1] for f in fields if f.name in _HANDLERS) or 1
    ok, cost = store._spend(requested)
    if not ok:
        return _throttled(store, requested)
    data: dict[str, Any] = {}
    for f in fields:
        if f.name == "__typename":
            data[f.alias] = "Mutation" if op == "mutation" else "QueryRoot"
            continue
        fn = _HANDLERS[f.name][0]
        if f.idempotency_key:
            note(request, idempotency_key=f.idempotency_key)
            cache_key = f"{f.name}:{f.idempotency_key}"
            if cache_key in store._idempotent:  # a replay: the first result, no second side effect
                data[f.alias] = store._idempotent[cache_key]
                continue
        data[f.alias] = fn(store, request, f)
        if f.idempotency_key and not (data[f.alias] or {}).get("userErrors"):
            store._idempotent[f"{f.name}:{f.idempotency_key}"] = data[f.alias]
    return json_response({"data": data, "extensions": {"cost": cost}})


def _variant_node(store: ShopifyStore, sku: str) -> dict[str, Any]:
    v = store.variants[sku]
    p: Product = v["product"]
    total = sum(store.inventory[(v["item"], loc)]["available"] for loc in store.locations)
    return {
        "id": _gid("ProductVariant", v["id"]),
        "legacyResourceId": str(v["id"]),
        "sku": sku,
        "title": "Default Title",
        "displayName": f"{p.title} - Default Title",
        "price": store.money(p.price),
        "inventoryQuantity": total,
        "inventoryItem": {"id": _gid("InventoryItem", v["item"]), "tracked": True, "sku": sku},
        "product": {"id": _gid("Product", store._product_id), "title": p.title},
    }


@_field("productVariants", 2)
def _product_variants(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any]:
    query = str(f.args.get("query") or "")
    wanted = [m.strip("'\"") for m in re.findall(r"sku:\s*(\"[^\"]*\"|'[^']*'|[^\s)]+)", query)]
    skus = [s for s in wanted if s in store.variants] if wanted else list(store.variants)
    first = f.args.get("first")
    if isinstance(first, int):
        skus = skus[:first]
    note(request, query=query)
    nodes = [_variant_node(store, s) for s in skus]
    return {
        "edges": [{"cursor": base64.b64encode(n["id"].encode()).decode(), "node": n} for n in nodes],
        "nodes": nodes,
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }


@_field("inventorySetQuantities", 10)
def _inventory_set(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any]:
    inp = f.args.get("input") or {}
    name = inp.get("name", "available")
    items = {v["item"]: sku for sku, v in store.variants.items()}
    user_errors: list[dict[str, Any]] = []
    changes = []
    quantities = inp.get("quantities") or []
    note(request, name=name, reason=inp.get("reason"), quantities=quantities, reference=inp.get("referenceDocumentUri"))
    if name not in ("available", "on_hand"):
        user_errors.append(
            {
                "field": ["input", "name"],
                "message": "The quantity name must be either 'available' or 'on_hand'.",
                "code": "INVALID_NAME",
            }
        )
    planned = []
    for i, q in enumerate(quantities):
        item, loc = _gid_num(q.get("inventoryItemId")), _gid_num(q.get("locationId"))
        key = (item or 0, loc or 0)
        if item not in items:
            user_errors.append(
                {
                    "field": ["input", "quantities", str(i), "inventoryItemId"],
                    "message": "The specified inventory item could not be found.",
                    "code": "INVALID_INVENTORY_ITEM",
                }
            )
            continue
        if loc not in store.locations or key not in store.inventory:
            user_errors.append(
                {
                    "field": ["input", "quantities", str(i), "locationId"],
                    "message": "The specified location could not be found.",
                    "code": "INVALID_LOCATION",
                }
            )
            continue
        current = store.inventory[key][name if name in ("available", "on_hand") else "available"]
        compare = q.get("compareQuantity", q.get("changeFromQuantity"))
        if not inp.get("ignoreCompareQuantity") and compare is not None and compare != current:
            user_errors.append(
                {
                    "field": ["input", "quantities", str(i), "compareQuantity"],
                    "message": "The compareQuantity argument no longer matches the persisted quantity.",
                    "code": "COMPARE_QUANTITY_STALE",
                }
            )
            continue
        planned.append((key, int(q.get("quantity", 0)), current))
    if user_errors:
        return {"inventoryAdjustmentGroup": None, "userErrors": user_errors}
    for key, qty, current in planned:
        level = store.inventory[key]
        delta = qty - current
        level["available"] += delta
        level["on_hand"] += delta
        changes.append(
            {
                "name": name,
                "delta": delta,
                "quantityAfterChange": qty,
                "item": {"id": _gid("InventoryItem", key[0]), "sku": items[key[0]]},
                "location": {"id": _gid("Location", key[1]), "name": store.locations[key[1]]},
            }
        )
    return {
        "inventoryAdjustmentGroup": {
            "id": _gid("InventoryAdjustmentGroup", new_id(store.rng)),
            "createdAt": iso(),
            "reason": inp.get("reason", "correction"),
            "referenceDocumentUri": inp.get("referenceDocumentUri"),
            "changes": changes,
        },
        "userErrors": [],
    }


def _fo_node(store: ShopifyStore, fo: dict[str, Any]) -> dict[str, Any]:
    lines = [
        {
            "id": _gid("FulfillmentOrderLineItem", li["id"]),
            "sku": li["sku"],
            "totalQuantity": li["total"],
            "remainingQuantity": li["remaining"],
            "lineItem": {"id": _gid("LineItem", li["line_item_id"]), "sku": li["sku"]},
        }
        for li in fo["line_items"]
    ]
    return {
        "id": _gid("FulfillmentOrder", fo["id"]),
        "status": fo["status"],
        "requestStatus": "UNSUBMITTED",
        "orderId": _gid("Order", fo["order_id"]),
        "assignedLocation": {
            "location": {"id": _gid("Location", fo["assigned_location_id"])},
            "name": store.locations[fo["assigned_location_id"]],
        },
        "supportedActions": [{"action": "CREATE_FULFILLMENT"}] if fo["status"] == "OPEN" else [],
        "lineItems": {"nodes": lines, "edges": [{"node": n} for n in lines]},
    }


@_field("order", 3)
def _order_query(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any] | None:
    oid = _gid_num(f.args.get("id"))
    note(request, order_id=oid)
    order = store.orders.get(oid or 0)
    if order is None:
        return None
    fos = [_fo_node(store, fo) for fo in store.fulfillment_orders.values() if fo["order_id"] == oid]
    return {
        "id": order["admin_graphql_api_id"],
        "legacyResourceId": str(order["id"]),
        "name": order["name"],
        "cancelledAt": order["cancelled_at"],
        "displayFinancialStatus": order["financial_status"].upper(),
        "displayFulfillmentStatus": "FULFILLED" if order["fulfillment_status"] == "fulfilled" else "UNFULFILLED",
        "fulfillmentOrders": {"nodes": fos, "edges": [{"node": n} for n in fos]},
        "transactions": [
            {
                "id": _gid("OrderTransaction", order["id"]),
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": "bogus",
                "amountSet": store._gql_money(order["total_price"]),
            }
        ],
    }


@_field("fulfillmentOrder", 2)
def _fulfillment_order(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any] | None:
    fo = store.fulfillment_orders.get(_gid_num(f.args.get("id")) or 0)
    return _fo_node(store, fo) if fo else None


@_field("fulfillmentCreate", 10)
def _fulfillment_create(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any]:
    inp = f.args.get("fulfillment") or f.args.get("input") or {}
    tracking = inp.get("trackingInfo") or {}
    groups = inp.get("lineItemsByFulfillmentOrder") or []
    note(
        request,
        fulfillment_orders=[g.get("fulfillmentOrderId") for g in groups],
        tracking_number=tracking.get("number"),
    )
    errors: list[dict[str, Any]] = []
    plan: list[tuple[dict[str, Any], dict[str, Any], int]] = []
    for gi, g in enumerate(groups):
        fo = store.fulfillment_orders.get(_gid_num(g.get("fulfillmentOrderId")) or 0)
        if fo is None:
            errors.append(
                {
                    "field": ["fulfillment", "lineItemsByFulfillmentOrder", str(gi)],
                    "message": "Fulfillment order does not exist.",
                }
            )
            continue
        by_id = {li["id"]: li for li in fo["line_items"]}
        wanted = g.get("fulfillmentOrderLineItems")
        pairs = (
            [(by_id.get(_gid_num(x.get("id")) or 0), int(x.get("quantity", 0))) for x in wanted]
            if wanted
            else [(li, li["remaining"]) for li in fo["line_items"]]
        )
        over = False
        for li, qty in pairs:
            if li is None:
                errors.append({"field": ["fulfillment"], "message": "Fulfillment order line item does not exist."})
            elif qty > li["remaining"] or (not wanted and li["remaining"] == 0):
                over = True
            else:
                plan.append((fo, li, qty))
        if over or fo["status"] != "OPEN":
            store.recorder.duplicate(
                "shopify.fulfillment", f"fulfillment order {fo['id']} fulfilled again", refused=True
            )
            errors.append(
                {
                    "field": ["fulfillment"],
                    "message": f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status'].lower() if fo['status'] != 'OPEN' else 'closed'}.",
                }
            )
    if errors:
        return {"fulfillment": None, "userErrors": errors}
    fid = new_id(store.rng)
    orders = set()
    for fo, li, qty in plan:
        li["remaining"] -= qty
        orders.add(fo["order_id"])
        store.recorder.side_effect("shopify.fulfillment", f"{fo['id']}:{li['id']}:{li['total'] - li['remaining']}")
        if all(x["remaining"] == 0 for x in fo["line_items"]):
            fo["status"] = "CLOSED"
    for oid in orders:
        order = store.orders[oid]
        done = all(fo["status"] == "CLOSED" for fo in store.fulfillment_orders.values() if fo["order_id"] == oid)
        order["fulfillment_status"] = "fulfilled" if done else "partial"
        order["fulfillments"].append(
            {
                "id": fid,
                "status": "success",
                "tracking_number": tracking.get("number"),
                "tracking_company": tracking.get("company"),
            }
        )
        store._touch(order)
    fulfillment = {
        "id": _gid("Fulfillment", fid),
        "legacyResourceId": str(fid),
        "name": f"{store.orders[next(iter(orders))]['name']}.{len(store.orders[next(iter(orders))]['fulfillments'])}"
        if orders
        else None,
        "status": "SUCCESS",
        "createdAt": iso(),
        "displayStatus": "FULFILLED",
        "trackingInfo": [
            {"company": tracking.get("company"), "number": tracking.get("number"), "url": tracking.get("url")}
        ],
    }
    store.fulfillments[fid] = fulfillment
    return {"fulfillment": fulfillment, "userErrors": []}


_HANDLERS["fulfillmentCreateV2"] = _HANDLERS["fulfillmentCreate"]


@_field("orderCancel", 10)
def _order_cancel(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any]:
    oid = _gid_num(f.args.get("orderId"))
    note(request, order_id=oid, reason=f.args.get("reason"))
    order = store.orders.get(oid or 0)
    if order is None:
        err = {"field": ["orderId"], "message": "Order does not exist", "code": "NOT_FOUND"}
        return {
            "job": None,
            "orderCancelUserErrors": [err],
            "userErrors": [{"field": err["field"], "message": err["message"]}],
        }
    if order["cancelled_at"]:
        if store.recorder.side_effects("shopify.order_cancel") and oid in store._api_cancelled:
            store.recorder.duplicate("shopify.order_cancel", f"order {oid} cancelled again", refused=True)
        err = {"field": ["orderId"], "message": "Order has already been cancelled", "code": "INVALID"}
        return {
            "job": None,
            "orderCancelUserErrors": [err],
            "userErrors": [{"field": err["field"], "message": err["message"]}],
        }
    store.recorder.side_effect("shopify.order_cancel", str(oid))
    store._api_cancelled.add(order["id"])
    store._cancel(order, str(f.args.get("reason") or "OTHER").lower())
    if store.settings.echo_webhooks:
        store.send_webhook("orders/cancelled", order)
    return {
        "job": {"id": _gid("Job", str(uuid.UUID(int=store.rng.getrandbits(128)))), "done": False},
        "orderCancelUserErrors": [],
        "userErrors": [],
    }


@_field("refundCreate", 10)
def _refund_create(store: ShopifyStore, request: web.Request, f: RootField) -> dict[str, Any]:
    inp = f.args.get("input") or {}
    oid = _gid_num(inp.get("orderId"))
    order = store.orders.get(oid or 0)
    lines = inp.get("refundLineItems") or []
    note(request, order_id=oid, refund_line_items=lines)
    if order is None:
        return {"refund": None, "userErrors": [{"field": ["orderId"], "message": "Order does not exist"}]}
    by_id = {li["id"]: li for li in order["line_items"]}
    pairs: list[tuple[int, int]] = []
    for i, x in enumerate(lines):
        lid = _gid_num(x.get("lineItemId")) or 0
        qty = int(x.get("quantity", 0))
        li = by_id.get(lid)
        if li is None:
            return {
                "refund": None,
                "userErrors": [
                    {"field": ["refundLineItems", str(i), "lineItemId"], "message": "Line item does not exist"}
                ],
            }
        if qty > li["current_quantity"]:
            store.recorder.duplicate("shopify.refund", f"order {oid} line item {lid} refunded again", refused=True)
            return {
                "refund": None,
                "userErrors": [
                    {
                        "field": ["refundLineItems", str(i), "quantity"],
                        "message": "Quantity cannot refund more items than were purchased",
                    }
                ],
            }
        pairs.append((lid, qty))
    restock = str((lines[0] if lines else {}).get("restockType", "NO_RESTOCK")).lower()
    refund = store._refund(order, pairs, inp.get("note"), restock_type=restock)
    for lid, qty in pairs:
        store.recorder.side_effect(
            "shopify.refund", f"{oid}:{lid}:{by_id[lid]['quantity'] - by_id[lid]['current_quantity']}:{qty}"
        )
    if store.settings.echo_webhooks:
        store.send_webhook("refunds/create", refund)
    total = refund["transactions"][0]["amount"]
    result = {
        "refund": {
            "id": refund["admin_graphql_api_id"],
            "legacyResourceId": str(refund["id"]),
            "createdAt": refund["created_at"],
            "note": refund["note"],
            "totalRefundedSet": store._gql_money(total),
            "refundLineItems": {
                "nodes": [
                    {
                        "quantity": r["quantity"],
                        "restockType": r["restock_type"].upper(),
                        "lineItem": {"id": _gid("LineItem", r["line_item_id"]), "sku": r["line_item"]["sku"]},
                        "subtotalSet": store._gql_money(r["subtotal_set"]["shop_money"]["amount"]),
                    }
                    for r in refund["refund_line_items"]
                ]
            },
        },
        "userErrors": [],
    }
    return result
