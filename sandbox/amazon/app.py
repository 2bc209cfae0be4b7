"""Simulated Amazon Selling Partner API and Login with Amazon.

- ``POST /auth/o2/token`` (form: ``grant_type=refresh_token``, ``refresh_token``, ``client_id``,
  ``client_secret``) answers ``{access_token, refresh_token, token_type, expires_in}``.
- Orders v0 (amzn/selling-partner-api-models ``ordersV0.json``): ``GET /orders/v0/orders`` (``MarketplaceIds``,
  ``CreatedAfter`` or ``LastUpdatedAfter``, ``MaxResultsPerPage``, ``NextToken``), ``GET /orders/v0/orders/{id}``,
  ``GET /orders/v0/orders/{id}/orderItems``, ``POST /orders/v0/orders/{id}/shipmentConfirmation`` (204).
- Listings Items 2021-08-01: ``PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=``.

Every call needs ``x-amz-access-token``; replies carry ``x-amzn-RequestId`` and, on success,
``x-amzn-RateLimit-Limit``; throttling is ``429`` with the ``QuotaExceeded`` error list.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox._common import (
    DEFAULT_CATALOG,
    Faults,
    Product,
    SimState,
    add_control_routes,
    fault_middleware,
    iso,
    json_response,
    note,
    read_json,
)

__all__ = ["AmazonSettings", "AmazonState", "STATE", "make_app"]

RATES = {
    "getOrders": "0.0167",
    "getOrder": "0.5",
    "getOrderItems": "0.5",
    "confirmShipment": "2.0",
    "patchListingsItem": "5.0",
}


@dataclass
class AmazonSettings:
    """Credentials and behaviour of the simulated seller account."""

    client_id: str = "amzn1.application-oa2-client.sandbox"
    client_secret: str = "amzn_sandbox_client_secret"
    refresh_token: str = "Atzr|sandbox_refresh_token"
    seller_id: str = "A2SANDBOXSELLER"
    marketplace_id: str = "ATVPDKIKX0DER"
    currency: str = "USD"
    catalog: tuple[Product, ...] = DEFAULT_CATALOG
    token_ttl: int = 3600
    include_pii: bool = True  # ShippingAddress name/lines and BuyerInfo, as with a Restricted Data Token
    faults: Faults = field(default_factory=Faults)
    seed: int | None = 2


def _errors(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


class AmazonState(SimState):
    """Orders, items, confirmations, listings and tokens of the simulated seller."""

    name = "amazon"

    def __init__(self, settings: AmazonSettings) -> None:
        super().__init__(settings.faults, settings.seed, None)
        self.settings = settings
        self.orders: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.confirmations: dict[str, list[dict[str, Any]]] = {}
        self.listings: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        self.products = {p.sku: p for p in settings.catalog}

    def _money(self, amount: Decimal) -> dict[str, str]:
        return {"CurrencyCode": self.settings.currency, "Amount": str(amount.quantize(Decimal("0.01")))}

    def new_order(
        self,
        lines: list[tuple[str, int]] | None = None,
        *,
        status: str = "Unshipped",
        purchased_at: float | None = None,
    ) -> dict[str, Any]:
        """Create an order (visible to getOrders from now on)."""
        rng = self.rng
        if lines is None:
            skus = rng.sample(list(self.products), k=min(len(self.products), rng.randint(1, 3)))
            lines = [(s, rng.randint(1, 2)) for s in skus]
        for sku, _ in lines:
            if sku not in self.products:
                raise KeyError(f"SKU {sku!r} is not in the sandbox Amazon catalog; known: {sorted(self.products)}")
        oid = f"{rng.randint(100, 999)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}"
        now = time.time() if purchased_at is None else purchased_at
        items, total = [], Decimal(0)
        for sku, qty in lines:
            p = self.products[sku]
            price = Decimal(p.price) * qty
            tax = (price * Decimal("0.06")).quantize(Decimal("0.01"))
            ship = Decimal("4.99")
            total += price + tax + ship
            items.append(
                {
                    "ASIN": f"B0{zlib.crc32(sku.encode()) % 10**8:08d}",
                    "OrderItemId": f"{rng.randint(10**13, 10**14 - 1)}",
                    "SellerSKU": sku,
                    "Title": p.title,
                    "QuantityOrdered": qty,
                    "QuantityShipped": 0,
                    "ProductInfo": {"NumberOfItems": "1"},
                    "ItemPrice": self._money(price),
                    "ItemTax": self._money(tax),
                    "ShippingPrice": self._money(ship),
                    "ShippingTax": self._money(Decimal(0)),
                    "ShippingDiscount": self._money(Decimal(0)),
                    "PromotionDiscount": self._money(Decimal(0)),
                    "PromotionDiscountTax": self._money(Decimal(0)),
                    "IsGift": "false",
                    "ConditionId": "New",
                    "ConditionSubtypeId": "New",
                    "IsTransparency": False,
                    "SerialNumberRequired": False,
                    "TaxCollection": {"Model": "MarketplaceFacilitator", "ResponsibleParty": "Amazon Services, Inc."},
                }
            )
        address: dict[str, Any] = {
            "City": "SEATTLE",
            "StateOrRegion": "WA",
            "PostalCode": "98121-2778",
            "CountryCode": "US",
            "AddressType": "Residential",
        }
        if self.settings.include_pii:
            address = {
                "Name": "Sandbox Buyer",
                "AddressLine1": "2201 Westlake Ave",
                "Phone": "+1 206-555-0100",
                **address,
            }
        n_items = sum(q for _, q in lines)
        order = {
            "AmazonOrderId": oid,
            "SellerOrderId": oid,
            "PurchaseDate": iso(now),
            "LastUpdateDate": iso(now),
            "OrderStatus": status,
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.com",
            "ShipServiceLevel": "Std US D2D Dom",
            "OrderTotal": self._money(total),
            "NumberOfItemsShipped": 0,
            "NumberOfItemsUnshipped": n_items,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "IsReplacementOrder": False,
            "MarketplaceId": self.settings.marketplace_id,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": "StandardOrder",
            "EarliestShipDate": iso(now + 86400),
            "LatestShipDate": iso(now + 2 * 86400),
            "EarliestDeliveryDate": iso(now + 3 * 86400),
            "LatestDeliveryDate": iso(now + 6 * 86400),
            "IsBusinessOrder": False,
            "IsPrime": False,
            "IsGlobalExpressEnabled": False,
            "IsPremiumOrder": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
            "ShippingAddress": address,
            "AutomatedShippingSettings": {"HasAutomatedShippingSettings": False},
            "ElectronicInvoiceStatus": "NotRequired",
        }
        if self.settings.include_pii:
            order["BuyerInfo"] = {
                "BuyerEmail": f"{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}@marketplace.amazon.com"
            }
        self.orders[oid] = order
        self.items[oid] = items
        return order

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Change an order's ``OrderStatus`` (e.g. ``Canceled``) and its ``LastUpdateDate``."""
        order = self.orders[order_id]
        order["OrderStatus"] = status
        order["LastUpdateDate"] = iso()
        return order

    def issue_token(self) -> str:
        token = "Atza|" + base64.urlsafe_b64encode(self.rng.randbytes(24)).decode().rstrip("=")
        self.tokens[token] = time.time() + self.settings.token_ttl
        return token

    def quantity(self, sku: str) -> int | None:
        """The last ``fulfillment_availability`` quantity patched for a SKU."""
        listing = self.listings.get(sku)
        return None if listing is None else listing.get("quantity")


STATE: web.AppKey[AmazonState] = web.AppKey("amazon_state", AmazonState)


def _headers(op: str | None = None) -> dict[str, str]:
    h = {"x-amzn-RequestId": str(uuid.uuid4())}
    if op:
        h["x-amzn-RateLimit-Limit"] = RATES[op]
    return h


def make_app(settings: AmazonSettings | None = None) -> web.Application:
    """The simulated SP-API + LWA as an aiohttp application; its state is ``app[STATE]``."""
    settings = settings or AmazonSettings()
    state = AmazonState(settings)

    def throttled(request: web.Request) -> web.Response:
        return json_response(
            _errors("QuotaExceeded", "You exceeded your quota for the requested resource."), 429, _headers()
        )

    def server_error(request: web.Request, status: int) -> web.Response:
        if status == 503:
            return json_response(_errors("ServiceUnavailable", "Service temporarily unavailable."), 503, _headers())
        return json_response(
            _errors("InternalFailure", "We encountered an internal error. Please try again."), status, _headers()
        )

    app = web.Application(middlewares=[fault_middleware(state, throttled, server_error), _auth_middleware(state)])
    app[STATE] = state
    add_control_routes(app, state)
    app.router.add_post("/auth/o2/token", _token)
    app.router.add_get("/orders/v0/orders", _get_orders)
    app.router.add_get("/orders/v0/orders/{order_id}", _get_order)
    app.router.add_get("/orders/v0/orders/{order_id}/orderItems", _get_order_items)
    app.router.add_post("/orders/v0/orders/{order_id}/shipmentConfirmation", _confirm_shipment)
    app.router.add_patch("/listings/2021-08-01/items/{seller_id}/{sku}", _patch_listing)
    app.router.add_post("/_sandbox/orders", _generate)
    return app


def _auth_middleware(state: AmazonState) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/") or request.path == "/auth/o2/token":
            resp: web.StreamResponse = await handler(request)
            return resp
        token = request.headers.get("x-amz-access-token", "")
        expires = state.tokens.get(token)
        if expires is None:
            return json_response(_errors("Unauthorized", "Access to requested resource is denied."), 403, _headers())
        if expires < time.time():
            return json_response(_errors("Unauthorized", "The access token you provided has expired."), 403, _headers())
        resp = await handler(request)
        return resp

    return middleware


async def _generate(request: web.Request) -> web.Response:
    """Control: ``{"count": N}`` creates N random orders."""
    state = request.app[STATE]
    body = await read_json(request)
    count = int(body.get("count", 1)) if isinstance(body, dict) else 1
    return json_response({"orders": [state.new_order()["AmazonOrderId"] for _ in range(count)]})


async def _token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    s = state.settings
    note(request, grant_type=form.get("grant_type"), client_id=form.get("client_id"))
    if form.get("client_id") != s.client_id or not hmac.compare_digest(
        str(form.get("client_secret", "")), s.client_secret
    ):
        return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
    if form.get("grant_type") != "refresh_token":
        return json_response({"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}, 400)
    if not hmac.compare_digest(str(form.get("refresh_token", "")), s.refresh_token):
        return json_response(
            {
                "error": "invalid_grant",
                "error_description": "The request has an invalid grant parameter : refresh_token",
            },
            400,
        )
    token = state.issue_token()
    return json_response(
        {"access_token": token, "refresh_token": s.refresh_token, "token_type": "bearer", "expires_in": s.token_ttl}
    )


def _ts(value: str) -> float:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise ValueError("Invalid NextToken") from None
    if not isinstance(data, dict):
        raise ValueError("Invalid NextToken")
    return data


async def _get_orders(request: web.Request) -> web.Response:
    state = request.app[STATE]
    q = request.query
    note(request, **{k: q[k] for k in ("MarketplaceIds", "LastUpdatedAfter", "CreatedAfter", "NextToken") if k in q})

    def bad(msg: str) -> web.Response:
        return json_response(_errors("InvalidInput", msg), 400, _headers("getOrders"))

    if "NextToken" in q:
        try:
            params = _decode_token(q["NextToken"])
        except ValueError:
            return bad("Invalid NextToken.")
    else:
        params = dict(q)
        if not params.get("MarketplaceIds"):
            return bad("Missing required parameter: MarketplaceIds.")
        has_created = "CreatedAfter" in params or "CreatedBefore" in params
        has_updated = "LastUpdatedAfter" in params or "LastUpdatedBefore" in params
        if has_created and has_updated:
            return bad("CreatedAfter/CreatedBefore and LastUpdatedAfter/LastUpdatedBefore are mutually exclusive.")
        if "CreatedAfter" not in params and "LastUpdatedAfter" not in params:
            return bad("Either CreatedAfter or LastUpdatedAfter must be specified.")
        params["offset"] = 0
    marketplaces = set(str(params["MarketplaceIds"]).split(","))
    try:
        size = int(params.get("MaxResultsPerPage", 100))
    except ValueError:
        return bad("MaxResultsPerPage must be an integer between 1 and 100.")
    if not 1 <= size <= 100:
        return bad("MaxResultsPerPage must be an integer between 1 and 100.")
    field_, after = (
        ("LastUpdateDate", params.get("LastUpdatedAfter"))
        if "LastUpdatedAfter" in params
        else ("PurchaseDate", params.get("CreatedAfter"))
    )
    before = params.get("LastUpdatedBefore") or params.get("CreatedBefore")
    statuses = set(str(params["OrderStatuses"]).split(",")) if params.get("OrderStatuses") else None
    # Orders updated within the last moment stay invisible until the next poll, like the real window.
    cutoff = params.setdefault("_cutoff", iso())
    try:
        lo, hi = _ts(str(after)), _ts(str(before or cutoff))
    except ValueError:
        return bad(f"Invalid date-time {after!r} or {before!r}: use ISO 8601.")
    rows = sorted(
        (o for o in state.orders.values() if o["MarketplaceId"] in marketplaces and lo <= _ts(o[field_]) <= hi),
        key=lambda o: (o[field_], o["AmazonOrderId"]),
    )
    if statuses:
        rows = [o for o in rows if o["OrderStatus"] in statuses]
    offset = int(params.get("offset", 0))
    page = rows[offset : offset + size]
    payload: dict[str, Any] = {"Orders": page}
    if offset + size < len(rows):
        payload["NextToken"] = _encode_token({**params, "offset": offset + size})
    if field_ == "LastUpdateDate":
        payload["LastUpdatedBefore"] = before or cutoff
    else:
        payload["CreatedBefore"] = before or cutoff
    return json_response({"payload": payload}, headers=_headers("getOrders"))


async def _get_order(request: web.Request) -> web.Response:
    state = request.app[STATE]
    oid = request.match_info["order_id"]
    note(request, order_id=oid)
    order = state.orders.get(oid)
    if order is None:
        return json_response(_errors("NotFound", f"Order {oid} not found."), 404, _headers("getOrder"))
    return json_response({"payload": order}, headers=_headers("getOrder"))


async def _get_order_items(request: web.Request) -> web.Response:
    state = request.app[STATE]
    oid = request.match_info["order_id"]
    note(request, order_id=oid)
    if oid not in state.items:
        return json_response(_errors("NotFound", f"Order {oid} not found."), 404, _headers("getOrderItems"))
    return json_response(
        {"payload": {"AmazonOrderId": oid, "OrderItems": state.items[oid]}}, headers=_headers("getOrderItems")
    )


async def _confirm_shipment(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    oid = request.match_info["order_id"]
    body = await read_json(request)
    pkg = body.get("packageDetail") if isinstance(body, dict) else None
    note(
        request,
        order_id=oid,
        package_reference_id=(pkg or {}).get("packageReferenceId"),
        tracking_number=(pkg or {}).get("trackingNumber"),
        idempotency_key=f"{oid}/{(pkg or {}).get('packageReferenceId')}",
    )
    hdrs = _headers("confirmShipment")
    if oid not in state.orders:
        return json_response(_errors("NotFound", f"Order {oid} not found."), 404, hdrs)
    missing = [k for k in ("marketplaceId",) if not isinstance(body, dict) or not body.get(k)]
    if not isinstance(pkg, dict):
        missing.append("packageDetail")
    else:
        missing += [
            f"packageDetail.{k}"
            for k in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems")
            if not pkg.get(k)
        ]
        if pkg.get("carrierCode") == "Other" and not pkg.get("carrierName"):
            missing.append("packageDetail.carrierName")
    if missing:
        return json_response(_errors("InvalidInput", f"Missing or invalid: {', '.join(missing)}."), 400, hdrs)
    assert isinstance(pkg, dict)
    items = {i["OrderItemId"]: i for i in state.items[oid]}
    for line in pkg["orderItems"]:
        item = items.get(str(line.get("orderItemId")))
        if item is None:
            return json_response(_errors("InvalidInput", f"Unknown orderItemId {line.get('orderItemId')}."), 400, hdrs)
    order = state.orders[oid]
    if order["OrderStatus"] == "Canceled":
        return json_response(_errors("InvalidInput", f"Order {oid} is canceled and cannot be shipped."), 400, hdrs)
    if state.recorder.side_effect("amazon.shipment_confirmation", f"{oid}/{pkg['packageReferenceId']}"):
        return web.Response(status=204, headers=hdrs)  # accepted again: the duplicate is counted
    for line in pkg["orderItems"]:
        item = items[str(line["orderItemId"])]
        item["QuantityShipped"] = min(item["QuantityOrdered"], item["QuantityShipped"] + int(line.get("quantity", 0)))
    shipped = sum(i["QuantityShipped"] for i in items.values())
    ordered = sum(i["QuantityOrdered"] for i in items.values())
    order["NumberOfItemsShipped"], order["NumberOfItemsUnshipped"] = shipped, ordered - shipped
    state.set_status(oid, "Shipped" if shipped >= ordered else "PartiallyShipped")
    state.confirmations.setdefault(oid, []).append(pkg)
    return web.Response(status=204, headers=hdrs)


async def _patch_listing(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sku = request.match_info["sku"]
    hdrs = _headers("patchListingsItem")
    body = await read_json(request)
    note(request, sku=sku, marketplace_ids=request.query.get("marketplaceIds"))
    if request.match_info["seller_id"] != state.settings.seller_id:
        return json_response(_errors("Unauthorized", "Access to requested resource is denied."), 403, _headers())
    if not request.query.get("marketplaceIds"):
        return json_response(_errors("InvalidInput", "Missing required parameter: marketplaceIds."), 400, hdrs)
    if not isinstance(body, dict) or not body.get("productType") or not isinstance(body.get("patches"), list):
        return json_response(_errors("InvalidInput", "Request body must have productType and patches."), 400, hdrs)
    listing = state.listings.setdefault(sku, {"sku": sku})
    issues: list[dict[str, Any]] = []
    for patch in body["patches"]:
        if patch.get("op") not in ("add", "replace", "merge", "delete") or not str(patch.get("path", "")).startswith(
            "/attributes/"
        ):
            issues.append(
                {
                    "code": "INVALID_PATCH",
                    "message": f"Invalid patch operation {patch.get('op')!r} on {patch.get('path')!r}.",
                    "severity": "ERROR",
                    "attributeNames": [],
                }
            )
            continue
        if patch["path"] == "/attributes/fulfillment_availability":
            for v in patch.get("value") or []:
                if "quantity" in v:
                    listing["quantity"] = int(v["quantity"])
                    note(request, quantity=listing["quantity"])
    status = "INVALID" if issues else "ACCEPTED"
    return json_response(
        {"sku": sku, "status": status, "submissionId": uuid.UUID(int=state.rng.getrandbits(128)).hex, "issues": issues},
        headers=hdrs,
    )
