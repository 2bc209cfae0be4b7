"""The Shopify channel connector: signed webhooks in, GraphQL Admin API out."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import math
import uuid
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from pydantic import Field, SecretStr

from connectors.shopify import _graphql as gql
from hub.errors import AuthError, ConnectorError, FatalError, InputError, RetriableError
from hub.http import call
from hub.mapping import MappingSet
from hub.model import Order, PaymentStatus, Refund, Return, Shipment, new_id
from hub.plugins import (
    Capability,
    ChannelConnector,
    ConnectorSettings,
    Ignored,
    InboundEvent,
    Message,
    OrderCancelled,
    OrderUpserted,
    RefundCreated,
    RemoteResult,
    ReturnRequested,
)

ORDER_TOPICS = frozenset({"orders/create", "orders/updated"})
#: Shopify return topics whose payload carries the return line items (returns/decline does not).
RETURN_TOPICS = frozenset({"returns/request", "returns/approve"})
_OTHER_TOPICS = frozenset({"orders/cancelled", "refunds/create", "returns/decline"})
#: Shopify's OrderCancelReason values; other hub reasons become OTHER with the reason as staff note.
CANCEL_REASONS = {
    "customer": "CUSTOMER",
    "declined": "DECLINED",
    "payment": "DECLINED",
    "fraud": "FRAUD",
    "inventory": "INVENTORY",
    "out_of_stock": "INVENTORY",
    "backordered": "INVENTORY",
    "staff": "STAFF",
}
_PAID = {PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID, PaymentStatus.PARTIALLY_REFUNDED}
_default_mappings: MappingSet | None = None
#: Quantities per ``inventorySetQuantities`` (Shopify's limit per call).
INVENTORY_CHUNK = 250
#: SKUs per ``productVariants`` search for unknown inventory items: a short search string, and a page
#: (:data:`LOOKUP_PAGE` variants) with room for variants whose SKU only resembles a wanted one.
LOOKUP_CHUNK = 50
LOOKUP_PAGE = 250


class ShopifySettings(ConnectorSettings):
    """``[connections.settings]`` of a Shopify connection."""

    shop_domain: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$", description="{shop}.myshopify.com")
    access_token: SecretStr = Field(description="Admin API access token (X-Shopify-Access-Token)")
    client_secret: SecretStr = Field(description="the app's client secret; signs webhooks")
    api_version: str = Field(default="2026-07", pattern=r"^\d{4}-\d{2}$|^unstable$")
    location_map: dict[str, str] = Field(
        default_factory=dict, description="hub location id -> Shopify location id (numeric or gid)"
    )
    notify_customer: bool = Field(default=True, description="Shopify emails the customer on fulfilment/cancel")


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        v = headers.get(name)
        if v is not None:
            return v
    lowered = {n.lower() for n in names}
    for k, v in headers.items():
        if k.lower() in lowered:
            return v
    return None


def gid(kind: str, value: str | int) -> str:
    """``gid://shopify/{kind}/{id}`` (a gid is kept as is)."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def _parse_ts(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class ShopifyConnector(ChannelConnector):
    """Shopify (GraphQL Admin API ``2026-07``; webhooks with the REST payload of the subscription's version)."""

    name = "shopify"
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.PUSH_INVENTORY,
            Capability.PUSH_FULFILLMENT,
            Capability.PUSH_CANCELLATION,
            Capability.PUSH_REFUND,
        }
    )
    Settings = ShopifySettings
    # Standard plan: 100 cost points restored per second; a mutation costs 10, so 2 req/s leaves headroom.
    rate_per_second: ClassVar[float] = 2.0
    max_concurrency: ClassVar[int] = 4

    settings: ShopifySettings

    def __init__(self, connection_id: str, settings: ConnectorSettings, http: Any = None, mappings: Any = None) -> None:
        super().__init__(connection_id, settings, http, mappings)
        self._items: dict[str, str] = {}  # sku -> inventory item gid
        #: the last ``extensions.cost.throttleStatus`` Shopify reported (for metrics and pacing)
        self.throttle_status: dict[str, Any] | None = None

    # -- configuration ----------------------------------------------------
    def base_url(self) -> str:
        return (self.settings.base_url or f"https://{self.settings.shop_domain}").rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.settings.access_token.get_secret_value()}

    def _mappings(self) -> MappingSet:
        global _default_mappings
        if isinstance(self.mappings, MappingSet):
            return self.mappings
        if _default_mappings is None:
            _default_mappings = MappingSet.for_connector(self.mapping_set or self.name)
        return _default_mappings

    # -- inbound -------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Base64 HMAC-SHA256 of the raw body with the client secret, compared in constant time."""
        if not body:
            raise AuthError(
                f"Shopify webhook for connection {self.connection_id} has an empty body",
                reason="missing_body",
                connection=self.connection_id,
            )
        given = _header(headers, "shopify-hmac-sha256", "X-Shopify-Hmac-Sha256")
        if not given:
            raise AuthError(
                f"Shopify webhook for connection {self.connection_id} has no X-Shopify-Hmac-Sha256 header",
                reason="missing_hmac",
                connection=self.connection_id,
            )
        key = self.settings.client_secret.get_secret_value().encode()
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), given.strip().encode()):
            raise AuthError(
                f"Shopify webhook signature does not match for connection {self.connection_id}: "
                "check client_secret (the app's client secret, not the access token); "
                "webhooks sent from the admin Notifications page are signed with another key",
                reason="invalid_hmac",
                connection=self.connection_id,
            )

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        """Dedup key = X-Shopify-Webhook-Id (same on retries), entity = the order."""
        event_id = _header(headers, "X-Shopify-Webhook-Id", "shopify-webhook-id")
        if not event_id:
            raise InputError("Shopify webhook without X-Shopify-Webhook-Id", connection=self.connection_id)
        topic = _header(headers, "X-Shopify-Topic", "shopify-topic")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InputError(f"Shopify webhook {event_id} is not JSON", connection=self.connection_id) from None
        if not isinstance(doc, dict):
            raise InputError(f"Shopify webhook {event_id} is not a JSON object", connection=self.connection_id)
        order_id = doc.get("order_id") if topic == "refunds/create" else doc.get("id")
        if topic and topic.startswith("returns/"):
            order_id = (doc.get("order") or {}).get("id") if isinstance(doc.get("order"), dict) else None
            order_id = order_id if order_id is not None else doc.get("order_id")
        elif topic and not topic.startswith(("orders/", "refunds/")):
            order_id = None
        ts = _parse_ts(doc.get("updated_at")) or _parse_ts(
            _header(headers, "X-Shopify-Triggered-At", "shopify-triggered-at")
        )
        if ts is None:
            ts = _parse_ts(doc.get("processed_at")) or _parse_ts(doc.get("created_at"))
        return InboundEvent(
            event_id=event_id,
            topic=topic,
            object_key=f"order:{order_id}" if order_id is not None else None,
            source_ts=ts,
        )

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        """orders/create|updated -> OrderUpserted, orders/cancelled -> OrderCancelled,
        refunds/create -> RefundCreated, returns/request|approve -> ReturnRequested, anything else -> Ignored."""
        topic = event.topic or ""
        if topic not in ORDER_TOPICS and topic not in RETURN_TOPICS and topic not in _OTHER_TOPICS:
            return [Ignored(reason=f"Shopify topic {topic or '(none)'} is not used by the hub")]
        if topic == "returns/decline":
            return [
                Ignored(reason="Shopify returns/decline carries no return lines; a declined request is not mirrored")
            ]
        payload = orjson.loads(body)
        if topic in RETURN_TOPICS:
            requested_at = _parse_ts(payload.get("created_at")) or _parse_ts(
                _header(headers, "X-Shopify-Triggered-At", "shopify-triggered-at")
            )
            ret = self.map_return(payload, requested_at)
            return [ReturnRequested(external_order_id=ret.order_id, ret=ret)]
        if topic == "refunds/create":
            refund = self.map_refund(payload)
            return [RefundCreated(external_order_id=str(payload.get("order_id")), refund=refund)]
        order = self.map_order(payload)
        if topic == "orders/cancelled":
            return [
                OrderCancelled(
                    external_id=order.external_id,
                    reason=payload.get("cancel_reason"),
                    cancelled_at=_parse_ts(payload.get("cancelled_at")),
                    order=order,
                )
            ]
        return [OrderUpserted(order=order)]

    def map_order(self, payload: dict[str, Any]) -> Order:
        """The canonical order of a Shopify REST order (mappings/shopify/order.yaml + discounts)."""
        extra = {"id": new_id("ord"), "connection": self.connection_id, "discounts": discounts(payload)}
        return self._mappings().build("order", payload, Order, extra=extra)

    def map_refund(self, payload: dict[str, Any]) -> Refund:
        """The canonical refund of a Shopify REST refund (mappings/shopify/refund.yaml)."""
        return self._mappings().build("refund", payload, Refund, extra={"id": new_id("ref")})

    def map_return(self, payload: dict[str, Any], requested_at: datetime | None = None) -> Return:
        """The canonical return of a Shopify returns/request|approve payload (mappings/shopify/return.yaml).

        ``order_id`` is Shopify's order id. Shopify's payload names a returned line item by its id only:
        each line carries it as ``external_line_id`` (the SKU when present), and the hub resolves it to the
        order line that has that Shopify line item id."""
        extra = {"id": new_id("ret"), "requested_at": requested_at or datetime.now(UTC)}
        return self._mappings().build("return", payload, Return, extra=extra)

    # -- outbound ------------------------------------------------------------
    async def graphql(
        self, operation: str, query: str, variables: dict[str, Any], *, retry: bool = True
    ) -> dict[str, Any]:
        """POST one GraphQL document through :func:`hub.http.call` (which retries timeouts, 429 with
        Retry-After and 5xx) and return ``data``. ``THROTTLED`` raises RetriableError with the wait the
        cost bucket needs; ``errors`` raise FatalError (both name the operation and connection, never the token)."""
        if self.http is None:
            raise RuntimeError(f"connection {self.connection_id} has no HTTP client")
        url = f"{self.base_url()}/admin/api/{self.settings.api_version}/graphql.json"
        req = {"operation": operation, "variables": variables}
        who = f"Shopify {operation} (connection {self.connection_id})"
        resp = await call(
            self.http,
            "POST",
            url,
            connection=self.connection_id,
            retry=retry,
            json={"query": query, "variables": variables},
            headers=self.auth_headers(),
        )
        body = resp.json()
        cost = (body.get("extensions") or {}).get("cost") or {}
        if cost.get("throttleStatus"):
            self.throttle_status = cost["throttleStatus"]
        errors = body.get("errors") or []
        if errors:
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                wait = throttle_wait(cost)
                raise RetriableError(
                    f"{who} was throttled (query cost {cost.get('requestedQueryCost')}, "
                    f"{(cost.get('throttleStatus') or {}).get('currentlyAvailable')} points available); "
                    f"retry after {wait} s",
                    connection=self.connection_id,
                    request=req,
                    response={"errors": errors},
                    retry_after=wait,
                )
            messages = "; ".join(str(e.get("message")) for e in errors)
            raise FatalError(
                f"{who} was refused: {messages}",
                connection=self.connection_id,
                request=req,
                response={"errors": errors},
            )
        data: dict[str, Any] = body.get("data") or {}
        return data

    def _refusal(
        self, operation: str, errs: list[dict[str, Any]], key: str = "userErrors", request: dict[str, Any] | None = None
    ) -> FatalError:
        """The FatalError for ``userErrors``: each field path and Shopify's message."""
        parts = [f"{'.'.join(map(str, e.get('field') or [])) or '(input)'}: {e.get('message')}" for e in errs]
        return FatalError(
            f"Shopify refused {operation} (connection {self.connection_id}): " + "; ".join(parts),
            connection=self.connection_id,
            request=request,
            response={key: errs},
        )

    def _check_user_errors(self, operation: str, result: dict[str, Any] | None, key: str = "userErrors") -> None:
        errs = (result or {}).get(key) or []
        if errs:
            raise self._refusal(operation, errs, key)

    def _location(self, location: str | None) -> tuple[str, str]:
        lm = self.settings.location_map
        if not lm:
            raise FatalError(
                f"connection {self.connection_id} has no location_map: map hub locations to Shopify locations "
                "in [connections.settings.location_map]",
                connection=self.connection_id,
            )
        if location is None:
            location = next(iter(lm))
        if location not in lm:
            raise FatalError(
                f"hub location {location!r} is not in the location_map of connection {self.connection_id} "
                f"(mapped: {', '.join(sorted(lm))}); add it to push its stock to Shopify",
                connection=self.connection_id,
            )
        return location, gid("Location", lm[location])

    def _no_variant(self, sku: str) -> FatalError:
        return FatalError(
            f"Shopify has no variant with SKU {sku!r} (connection {self.connection_id}); "
            "create it or fix the SKU in Shopify",
            connection=self.connection_id,
        )

    async def inventory_item(self, sku: str) -> str:
        """The inventory item gid of the variant with this exact SKU (cached)."""
        if sku in self._items:
            return self._items[sku]
        data = await self.graphql("productVariants", gql.VARIANT_BY_SKU, {"query": _sku_term(sku)})
        nodes = ((data.get("productVariants") or {}).get("nodes")) or []
        for node in nodes:
            if node.get("sku") == sku and node.get("inventoryItem"):
                self._items[sku] = str(node["inventoryItem"]["id"])
                return self._items[sku]
        raise self._no_variant(sku)

    async def inventory_items(self, skus: list[str]) -> dict[str, str | Exception]:
        """The inventory item gid of each SKU, or the error that stands for it: cached ones as they are,
        unknown ones with one ``productVariants`` search per :data:`LOOKUP_CHUNK` SKUs."""
        out: dict[str, str | Exception] = {sku: self._items[sku] for sku in skus if sku in self._items}
        unknown = [sku for sku in dict.fromkeys(skus) if sku not in self._items]
        for i in range(0, len(unknown), LOOKUP_CHUNK):
            out.update(await self._look_up(unknown[i : i + LOOKUP_CHUNK]))
        return out

    async def _look_up(self, skus: list[str]) -> dict[str, str | Exception]:
        """One search ``sku:"A" OR sku:"B" ...`` (one SKU: :meth:`inventory_item`); a SKU with no exact match
        is unknown to Shopify, unless the page was full (then it is asked for alone)."""
        if len(skus) == 1:
            return {skus[0]: await _outcome(self.inventory_item(skus[0]))}
        variables = {"query": " OR ".join(_sku_term(sku) for sku in skus), "first": LOOKUP_PAGE}
        try:
            data = await self.graphql("productVariants", gql.VARIANTS_BY_SKUS, variables)
        except Exception as exc:  # HTTP, throttling, GraphQL errors: no SKU of the search is resolved
            return dict.fromkeys(skus, exc)
        page = data.get("productVariants") or {}
        wanted = set(skus)
        for node in page.get("nodes") or []:
            if node.get("sku") in wanted and node.get("inventoryItem"):
                self._items[node["sku"]] = str(node["inventoryItem"]["id"])
        more = bool((page.get("pageInfo") or {}).get("hasNextPage"))
        out: dict[str, str | Exception] = {}
        for sku in skus:
            if sku in self._items:
                out[sku] = self._items[sku]
            else:
                out[sku] = await _outcome(self.inventory_item(sku)) if more else self._no_variant(sku)
        return out

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        """Set ``available`` of ``sku`` at the mapped location (absolute; no compare-and-swap: the hub owns it)."""
        outcome = (await self.push_inventory_many({sku: quantity}, location))[sku]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def push_inventory_many(
        self, quantities: dict[str, int], location: str | None = None
    ) -> dict[str, RemoteResult | Exception]:
        """Set ``available`` of many SKUs at the mapped location: the inventory items are resolved (cached;
        unknown ones searched together), then one ``inventorySetQuantities`` carries up to
        :data:`INVENTORY_CHUNK` quantities. An error of a whole call (HTTP, throttling, GraphQL ``errors``) is
        the outcome of each SKU in it; a ``userError`` whose field is ``quantities.<i>`` fails that SKU only
        (a refused call may have set none of its quantities: the others are sent again without it, harmless
        for absolute quantities); any other
        ``userError`` fails every SKU of the call. A SKU Shopify does not know fails alone (FatalError)."""
        try:
            hub_location, location_gid = self._location(location)
        except FatalError as exc:
            return dict.fromkeys(quantities, exc)
        items = await self.inventory_items(list(quantities))
        out: dict[str, RemoteResult | Exception] = {}
        ready: list[tuple[str, str, int]] = []
        for sku, quantity in quantities.items():
            item = items[sku]
            if isinstance(item, Exception):
                out[sku] = item
            else:
                ready.append((sku, item, int(quantity)))
        for i in range(0, len(ready), INVENTORY_CHUNK):
            out.update(await self._set_quantities(hub_location, location_gid, ready[i : i + INVENTORY_CHUNK]))
        return {sku: out[sku] for sku in quantities}

    async def _set_quantities(
        self, hub_location: str, location_gid: str, chunk: list[tuple[str, str, int]]
    ) -> dict[str, RemoteResult | Exception]:
        """``inventorySetQuantities`` for (sku, inventory item, quantity) of one chunk, sent again without
        the SKUs whose quantity Shopify refused (at most once per refused SKU)."""
        out: dict[str, RemoteResult | Exception] = {}
        pending = list(chunk)
        while pending:
            entries = [
                {"inventoryItemId": item, "locationId": location_gid, "quantity": qty, "changeFromQuantity": None}
                for _, item, qty in pending
            ]
            variables = {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"orderhub://inventory/{hub_location}",
                    "ignoreCompareQuantity": True,
                    "quantities": entries,
                },
                "idempotencyKey": str(uuid.uuid4()),
            }
            try:
                data = await self.graphql("inventorySetQuantities", gql.INVENTORY_SET, variables)
            except Exception as exc:  # HTTP, throttling, GraphQL errors: every SKU of the call
                for (sku, _, _), entry in zip(pending, entries, strict=True):
                    out[sku] = _for_quantity(exc, sku, entry, len(entries))
                return out
            result = data.get("inventorySetQuantities") or {}
            errs: list[dict[str, Any]] = result.get("userErrors") or []
            if not errs:
                group_id = (result.get("inventoryAdjustmentGroup") or {}).get("id")
                for sku, _, qty in pending:
                    detail = {"sku": sku, "location": hub_location, "quantity": qty}
                    out[sku] = RemoteResult(external_id=group_id, detail=detail)
                return out
            refused = _errors_by_quantity(errs, len(pending))
            if refused is None:  # an error of the whole input (name, reason, ...): every SKU of the call
                refusal = self._refusal("inventorySetQuantities", errs, request={"operation": "inventorySetQuantities"})
                for (sku, _, _), entry in zip(pending, entries, strict=True):
                    out[sku] = _for_quantity(refusal, sku, entry, len(entries))
                return out
            for i, sku_errs in refused.items():
                sku = pending[i][0]
                if any(e.get("code") == "INVALID_INVENTORY_ITEM" for e in sku_errs):
                    self._items.pop(sku, None)  # the variant was deleted or recreated: look it up again next time
                request = {"operation": "inventorySetQuantities", "quantity": entries[i]}
                out[sku] = self._refusal(f"inventorySetQuantities of SKU {sku!r}", sku_errs, request=request)
            pending = [p for i, p in enumerate(pending) if i not in refused]
        return out

    async def push_fulfillment(self, order: Order, shipment: Shipment) -> RemoteResult:
        """Fulfil the shipped lines on Shopify's open fulfillment orders, with tracking (one fulfillment
        per Shopify location involved)."""
        data = await self.graphql("fulfillmentOrders", gql.FULFILLMENT_ORDERS, {"id": gid("Order", order.external_id)})
        shop_order = data.get("order")
        if not shop_order:
            raise FatalError(
                f"Shopify has no order {order.external_id} (order {order.id}, connection {self.connection_id})",
                connection=self.connection_id,
            )
        fos = [
            fo
            for fo in (shop_order.get("fulfillmentOrders") or {}).get("nodes") or []
            if fo.get("status") in ("OPEN", "IN_PROGRESS")
        ]
        groups = _assign(order, shipment, fos, self.connection_id)
        tracking = {
            k: v
            for k, v in (
                ("number", shipment.tracking_number),
                ("company", shipment.carrier),
                ("url", shipment.tracking_url),
            )
            if v
        }
        ids: list[str] = []
        for items in groups.values():
            fulfillment: dict[str, Any] = {
                "lineItemsByFulfillmentOrder": items,
                "notifyCustomer": self.settings.notify_customer,
            }
            if tracking:
                fulfillment["trackingInfo"] = tracking
            # not repeated blindly: a lost answer could fulfil twice; the sync engine re-runs the whole
            # push, which re-reads the remaining quantities first
            out = await self.graphql(
                "fulfillmentCreate", gql.FULFILLMENT_CREATE, {"fulfillment": fulfillment}, retry=False
            )
            result = out.get("fulfillmentCreate") or {}
            self._check_user_errors("fulfillmentCreate", result)
            ids.append(str((result.get("fulfillment") or {}).get("id")))
        return RemoteResult(external_id=ids[0] if len(ids) == 1 else ",".join(ids), detail={"fulfillments": ids})

    async def push_cancellation(self, order: Order, reason: str | None = None) -> RemoteResult:
        """``orderCancel``: restock, refund to the original payment methods when the order was paid."""
        code = CANCEL_REASONS.get((reason or "").strip().lower(), "OTHER")
        variables = {
            "orderId": gid("Order", order.external_id),
            "reason": code,
            "refundMethod": {"originalPaymentMethodsRefund": order.payment_status in _PAID},
            "restock": True,
            "notifyCustomer": self.settings.notify_customer,
            "staffNote": f"Cancelled by Orderhub (order {order.id})" + (f": {reason}" if reason else ""),
        }
        data = await self.graphql("orderCancel", gql.ORDER_CANCEL, variables)
        result = data.get("orderCancel") or {}
        self._check_user_errors("orderCancel", result, "orderCancelUserErrors")
        job = result.get("job") or {}
        return RemoteResult(external_id=job.get("id"), detail={"reason": code})

    async def push_refund(self, order: Order, refund: Refund) -> RemoteResult:
        """``refundCreate`` against the order's successful sale/capture (idempotent per refund id)."""
        order_gid = gid("Order", order.external_id)
        data = await self.graphql("orderTransactions", gql.ORDER_TRANSACTIONS, {"id": order_gid})
        txs = (data.get("order") or {}).get("transactions") or []
        parent = next(
            (t for t in txs if t.get("kind") in ("SALE", "CAPTURE") and t.get("status") == "SUCCESS"),
            None,
        )
        if parent is None:
            raise FatalError(
                f"Shopify order {order.external_id} has no successful sale or capture to refund "
                f"(order {order.id}, refund {refund.id})",
                connection=self.connection_id,
            )
        lines = []
        for rl in refund.lines:
            if rl.quantity <= 0:
                continue
            line = _order_line(order, rl.line_no, rl.sku)
            if line is None or not line.external_id:
                raise FatalError(
                    f"refund {refund.id}: no line of order {order.id} matches line_no={rl.line_no} sku={rl.sku!r}",
                    connection=self.connection_id,
                )
            lines.append(
                {
                    "lineItemId": gid("LineItem", line.external_id),
                    "quantity": rl.quantity,
                    "restockType": "RETURN" if refund.return_id else "NO_RESTOCK",
                }
            )
        refund_input: dict[str, Any] = {
            "orderId": order_gid,
            "currency": refund.amount.currency,
            "note": refund.reason,
            "notify": self.settings.notify_customer,
            "refundLineItems": lines,
            "transactions": [
                {
                    "orderId": order_gid,
                    "parentId": parent["id"],
                    "gateway": parent.get("gateway"),
                    "kind": "REFUND",
                    "amount": str(refund.amount.amount),
                }
            ],
        }
        if refund.shipping is not None and refund.shipping.amount > Decimal(0):
            refund_input["shipping"] = {"amount": str(refund.shipping.amount)}
        out = await self.graphql(
            "refundCreate", gql.REFUND_CREATE, {"input": refund_input, "idempotencyKey": refund.id}
        )
        result = out.get("refundCreate") or {}
        self._check_user_errors("refundCreate", result)
        return RemoteResult(external_id=(result.get("refund") or {}).get("id"), detail={"amount": str(refund.amount)})


def _sku_term(sku: str) -> str:
    """``sku:"..."`` of Shopify's search syntax, quotes and backslashes escaped."""
    escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
    return f'sku:"{escaped}"'


async def _outcome(call: Awaitable[str]) -> str | Exception:
    try:
        return await call
    except Exception as exc:
        return exc


def _errors_by_quantity(errs: list[dict[str, Any]], count: int) -> dict[int, list[dict[str, Any]]] | None:
    """``userErrors`` by the index of the quantity their field names (``["input", "quantities", "3",
    "locationId"]``); None when one of them names no quantity of the call (the whole input is refused)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for e in errs:
        field = [str(f) for f in e.get("field") or []]
        at = field.index("quantities") + 1 if "quantities" in field else len(field)
        if at >= len(field) or not field[at].isdigit() or int(field[at]) >= count:
            return None
        out.setdefault(int(field[at]), []).append(e)
    return out


def _for_quantity(exc: Exception, sku: str, entry: dict[str, Any], count: int) -> Exception:
    """The error of a whole call as one SKU's outcome: a copy whose request snapshot holds that SKU's
    quantity only, so each SKU's failure record does not repeat the call's hundreds of quantities."""
    if not isinstance(exc, ConnectorError) or exc.request is None:
        return exc
    try:
        scoped = copy.copy(exc)
    except Exception:
        return exc
    kept = {k: v for k, v in exc.request.items() if k in ("method", "url", "operation")}
    scoped.request = {**kept, "quantity": entry, "sku": sku, "quantities_in_call": count}
    return scoped


def discounts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One canonical Discount per discount application, its amount the sum of its allocations (shop money)."""
    apps = payload.get("discount_applications") or []
    if not apps:
        return []
    currency = payload.get("currency")
    totals = [Decimal(0)] * len(apps)
    for holder in (*(payload.get("line_items") or []), *(payload.get("shipping_lines") or [])):
        for alloc in holder.get("discount_allocations") or []:
            i = alloc.get("discount_application_index")
            if isinstance(i, int) and 0 <= i < len(apps):
                amount = ((alloc.get("amount_set") or {}).get("shop_money") or {}).get("amount", alloc.get("amount"))
                totals[i] += Decimal(str(amount))
    return [
        {
            "code": app.get("code") or app.get("title"),
            "kind": str(app.get("type") or "discount"),
            "amount": {"amount": totals[i], "currency": currency},
        }
        for i, app in enumerate(apps)
    ]


def throttle_wait(cost: dict[str, Any]) -> float:
    """Seconds until the bucket holds the query's cost: (requested - available) / restore rate."""
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        restore = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return 1.0
    if restore <= 0:
        return 1.0
    return max(math.ceil(max(requested - available, 0.0) / restore * 10) / 10, 0.1)


def _order_line(order: Order, line_no: int | None, sku: str | None) -> Any:
    if line_no is not None:
        try:
            return order.line(line_no)
        except KeyError:
            return None
    return next((ln for ln in order.lines if ln.sku == sku), None)


def _assign(order: Order, shipment: Shipment, fos: list[dict[str, Any]], connection: str) -> dict[str, list[Any]]:
    """Fulfillment-order line items for the shipment's lines, grouped by Shopify location."""
    groups: dict[str, list[dict[str, Any]]] = {}
    if not fos:
        raise FatalError(
            f"Shopify order {order.external_id} has no open fulfillment order (order {order.id}): "
            "it may be fulfilled or on hold already",
            connection=connection,
        )

    def location_of(fo: dict[str, Any]) -> str:
        return str(((fo.get("assignedLocation") or {}).get("location") or {}).get("id"))

    if not shipment.lines:
        for fo in fos:
            groups.setdefault(location_of(fo), []).append(
                {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": []}
            )
        return groups
    remaining = {
        item["id"]: int(item.get("remainingQuantity") or 0)
        for fo in fos
        for item in (fo.get("lineItems") or {}).get("nodes") or []
    }
    picked: dict[str, dict[str, int]] = {}
    for sl in shipment.lines:
        line = _order_line(order, sl.line_no, sl.sku)
        want_line = gid("LineItem", line.external_id) if line is not None and line.external_id else None
        need = sl.quantity
        for fo in fos:
            for item in (fo.get("lineItems") or {}).get("nodes") or []:
                li = item.get("lineItem") or {}
                if need <= 0:
                    break
                if (want_line and li.get("id") == want_line) or (not want_line and li.get("sku") == sl.sku):
                    take = min(need, remaining[item["id"]])
                    if take > 0:
                        remaining[item["id"]] -= take
                        need -= take
                        per_fo = picked.setdefault(fo["id"], {})
                        per_fo[item["id"]] = per_fo.get(item["id"], 0) + take
        if need > 0:
            raise FatalError(
                f"shipment {shipment.id}: {need} x {sl.sku} of order {order.id} is not open for fulfilment "
                f"on Shopify order {order.external_id}",
                connection=connection,
            )
    for fo in fos:
        if fo["id"] in picked:
            groups.setdefault(location_of(fo), []).append(
                {
                    "fulfillmentOrderId": fo["id"],
                    "fulfillmentOrderLineItems": [{"id": k, "quantity": q} for k, q in picked[fo["id"]].items()],
                }
            )
    return groups
