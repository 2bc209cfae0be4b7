"""Amazon Selling Partner API connector: polled orders (Orders v0), shipment confirmation, quantities."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from connectors.amazon import _map_v0
from hub.errors import AuthError, FatalError, InputError, RetriableError
from hub.http import call, rate_limit_header
from hub.mapping import MappingSet
from hub.model import Order, Shipment
from hub.plugins import (
    Capability,
    ChannelConnector,
    ConnectorSettings,
    Message,
    OrderUpserted,
    PollResult,
    RemoteResult,
)

REGIONS: dict[str, str] = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}

#: Documented default (rate per second, burst) of each operation used (ordersV0.json, listingsItems_2021-08-01.json).
DEFAULT_LIMITS: dict[str, tuple[float, int]] = {
    "getOrders": (0.0167, 20),
    "getOrderItems": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "patchListingsItem": (5.0, 5),
}

#: Amazon ``carrierCode`` values for carriers the hub names differently (lower-case key).
#: Anything else is sent as carrierCode "Other" with carrierName.
CARRIER_CODES: dict[str, str] = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhl express": "DHL",
    "amazon shipping": "Amazon Shipping",
    "ontrac": "OnTrac",
    "royal mail": "Royal Mail",
    "dpd": "DPD",
    "gls": "GLS",
    "hermes": "Hermes",
    "canada post": "Canada Post",
    "japan post": "Japan Post",
    "yamato transport": "Yamato Transport",
}


def _mfn_only() -> list[Literal["MFN", "AFN"]]:
    return ["MFN"]


def _polled_statuses() -> list[str]:
    return ["Pending", "Unshipped", "PartiallyShipped", "Canceled", "PendingAvailability"]


class AmazonSettings(ConnectorSettings):
    """``[connections.settings]`` of an ``amazon`` connection."""

    client_id: str = Field(min_length=1, description="LWA client id of the SP-API application")
    client_secret: SecretStr
    refresh_token: SecretStr = Field(description="LWA refresh token of the seller's authorisation (Atzr|...)")
    marketplace_id: str = Field(min_length=1, description="e.g. ATVPDKIKX0DER (amazon.com)")
    seller_id: str | None = Field(default=None, description="merchant token; needed to push quantities")
    region: Literal["na", "eu", "fe"] = "na"
    poll_interval_seconds: int = Field(default=120, ge=30)
    lwa_url: str = "https://api.amazon.com/auth/o2/token"
    fulfillment_channels: list[Literal["MFN", "AFN"]] = Field(
        default_factory=_mfn_only, description="MFN = the seller ships (the hub allocates); AFN = FBA"
    )
    order_statuses: list[str] = Field(
        default_factory=_polled_statuses,
        description="OrderStatuses asked for; Shipped orders are left out (the hub confirmed them itself)",
    )
    initial_lookback_hours: int = Field(default=24, ge=1, description="how far back the first poll looks")
    max_pages_per_poll: int = Field(default=10, ge=1, description="getOrders pages per poll before resuming later")
    product_type: str = Field(default="PRODUCT", description="productType sent with listings quantity patches")
    max_wait_seconds: float = Field(
        default=5.0, ge=0, description="longest in-process wait for a rate-limit token before giving the job back"
    )


@dataclass
class _Bucket:
    """A token bucket per operation, refilled at the rate Amazon reports in ``x-amzn-RateLimit-Limit``."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def wait_for(self, now: float) -> float:
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


def _cursor_parts(cursor: str | None) -> tuple[str | None, str | None, str | None]:
    """(after, max seen, NextToken). A plain ISO time is a finished poll; ``after|max|token`` a walk in progress."""
    if not cursor:
        return None, None, None
    if "|" not in cursor:
        return cursor, None, None
    after, max_seen, token = cursor.split("|", 2)
    return after, max_seen or None, token or None


def package_reference_id(shipment_id: str) -> str:
    """A positive number, stable per shipment, so a retried confirmation names the same package."""
    return str(int(hashlib.sha256(shipment_id.encode()).hexdigest()[:12], 16) or 1)


class AmazonConnector(ChannelConnector):
    """Amazon Seller Central through the Selling Partner API.

    Orders are polled (getOrders by ``LastUpdatedAfter`` + getOrderItems, all ``NextToken`` pages);
    ``Pending`` orders come with a channel hold (see :mod:`connectors.amazon._map_v0`), ``Canceled`` ones as
    cancellations. Shipments are confirmed with confirmShipment; quantities are set through the Listings
    Items API (``fulfillment_availability``).
    """

    name = "amazon"
    capabilities = frozenset({Capability.POLL_ORDERS, Capability.PUSH_FULFILLMENT, Capability.PUSH_INVENTORY})
    Settings = AmazonSettings
    rate_per_second = 5.0
    learn_rate_from_headers = False  # x-amzn-RateLimit-Limit is per operation: see _note_rate
    max_concurrency = 4
    default_base_url = REGIONS["na"]
    #: Renew the LWA token this many seconds before it expires.
    token_margin_seconds: ClassVar[float] = 60.0

    settings: AmazonSettings

    def __init__(self, connection_id: str, settings: Any, http: Any = None, mappings: Any = None) -> None:
        super().__init__(connection_id, settings, http, mappings)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.utcnow: Callable[[], datetime] = lambda: datetime.now(UTC)

    def base_url(self) -> str:
        return (self.settings.base_url or REGIONS[self.settings.region]).rstrip("/")

    @staticmethod
    def prepare_mapping(obj: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload, context) for a dry run of mapping ``obj`` (``orderhub mappings apply``): ``order_v0`` takes a
        v0 ``Order`` with its items under ``OrderItems`` and adds what the connector computes before mapping."""
        if obj != _map_v0.MAPPING:
            return payload, {}
        return _map_v0.prepare(payload, list(payload.get("OrderItems") or []))

    def _mappings(self) -> MappingSet:
        """The connection's mapping set (``mappings/amazon/`` plus its overrides)."""
        if self.mappings is None:
            self.mappings = MappingSet.for_connector(self.mapping_set or self.name)
        ms: MappingSet = self.mappings
        return ms

    # -- auth ----------------------------------------------------------------
    async def access_token(self) -> str:
        """The LWA access token, refreshed (grant_type=refresh_token) only when missing or about to expire."""
        async with self._token_lock:
            if self._token and self.clock() < self._token_expires:
                return self._token
            s = self.settings
            form = {
                "grant_type": "refresh_token",
                "refresh_token": s.refresh_token.get_secret_value(),
                "client_id": s.client_id,
                "client_secret": s.client_secret.get_secret_value(),
            }
            try:
                resp = await call(self._client(), "POST", s.lwa_url, connection=self.connection_id, data=form)
            except FatalError as exc:
                body = (exc.response or {}).get("body")
                err = body.get("error", "") if isinstance(body, dict) else ""
                raise AuthError(
                    f"connection {self.connection_id}: Login with Amazon refused the refresh token "
                    f"({(exc.response or {}).get('status')} {err}); re-authorise the app in Seller Central and update "
                    "client_id/client_secret/refresh_token",
                    connection=self.connection_id,
                ) from None
            body = _json(resp)
            self._token = str(body["access_token"])
            self._token_expires = self.clock() + float(body.get("expires_in", 3600)) - self.token_margin_seconds
            return self._token

    # -- transport -------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError(f"connection {self.connection_id}: no HTTP client (hub.http.client_for) attached")
        client: httpx.AsyncClient = self.http
        return client

    async def _gate(self, op: str) -> None:
        rate, burst = DEFAULT_LIMITS[op]
        b = self._buckets.setdefault(op, _Bucket(rate, burst, float(burst), self.clock()))
        wait = b.wait_for(self.clock())
        if wait > self.settings.max_wait_seconds:
            raise RetriableError(
                f"connection {self.connection_id}: Amazon {op} rate limit ({b.rate}/s) reached; retry in {wait:.0f}s",
                connection=self.connection_id,
                retry_after=wait,
            )
        if wait > 0:
            await self.sleep(wait)
            b.wait_for(self.clock())
        b.tokens -= 1

    async def request(
        self, op: str, method: str, path: str, *, params: Any = None, json: Any = None, what: str = ""
    ) -> httpx.Response:
        """One SP-API call through :func:`hub.http.call`: rate gate, access token, retries; a 429 that persists
        is a RetriableError whose ``retry_after`` follows the operation's rate; other 4xx are FatalError."""
        await self._gate(op)
        for attempt in (1, 2):
            headers = {"x-amz-access-token": await self.access_token()}
            try:
                resp = await call(
                    self._client(), method, path, connection=self.connection_id,
                    params=params, json=json, headers=headers,
                )  # fmt: skip
            except RetriableError as exc:
                snap = exc.response or {}
                self._note_rate(op, snap.get("headers") or {})
                if snap.get("status") != 429:
                    raise
                bucket = self._buckets[op]
                bucket.tokens = 0
                raise RetriableError(
                    f"connection {self.connection_id}: Amazon throttled {op} {what} (429, rate {bucket.rate:g}/s); "
                    "retrying later",
                    connection=self.connection_id,
                    request=exc.request,
                    response=snap,
                    retry_after=exc.retry_after if exc.retry_after is not None else max(1.0, 1.0 / bucket.rate),
                ) from None
            except FatalError as exc:
                snap = exc.response or {}
                if (
                    attempt == 1
                    and snap.get("status") in (401, 403)
                    and _code(snap) in ("Unauthorized", "InvalidToken")
                ):
                    self._token = None  # revoked or expired early: refresh once
                    continue
                raise FatalError(
                    f"connection {self.connection_id}: Amazon refused {op} {what} ({snap.get('status')}): "
                    f"{_messages(snap)}",
                    connection=self.connection_id,
                    request=exc.request,
                    response=snap,
                ) from None
            self._note_rate(op, resp.headers)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_rate(self, op: str, headers: Mapping[str, str]) -> None:
        """Adopt the rate Amazon reports in ``x-amzn-RateLimit-Limit`` for this operation."""
        lower = {k.lower(): v for k, v in headers.items()}
        limit = rate_limit_header(lower)
        if limit is not None and op in self._buckets:
            self._buckets[op].rate = limit

    # -- orders ------------------------------------------------------------------
    async def order_items(self, amazon_order_id: str) -> list[dict[str, Any]]:
        """Every ``OrderItem`` of one order, following ``NextToken``."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        path = f"/orders/v0/orders/{quote(amazon_order_id, safe='')}/orderItems"
        while True:
            resp = await self.request(
                "getOrderItems", "GET", path, params={"NextToken": token} if token else None, what=amazon_order_id
            )
            payload = _json(resp).get("payload") or {}
            items.extend(payload.get("OrderItems") or [])
            token = payload.get("NextToken")
            if not token:
                return items

    async def poll_messages(self, cursor: str | None) -> tuple[list[Message], str | None, bool]:
        """Orders updated since ``cursor`` as messages (OrderUpserted / OrderCancelled), the next cursor, more?

        The cursor is the newest ``LastUpdateDate`` seen (ISO). Orders exactly at the cursor's second may come
        again on the next poll; they carry the same ``source_updated_at``, so the hub's newest-wins makes that a
        no-op, while nothing updated later is ever skipped. When a poll stops after ``max_pages_per_poll`` pages
        the cursor is ``after|max seen|NextToken`` (opaque) and ``more`` is true.
        """
        s = self.settings
        after, max_seen, token = _cursor_parts(cursor)
        if after is None:
            after = (self.utcnow() - timedelta(hours=s.initial_lookback_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        messages: list[Message] = []
        for _ in range(s.max_pages_per_poll):
            params: dict[str, Any] = {"MarketplaceIds": s.marketplace_id}
            if token:
                params["NextToken"] = token
            else:
                params["LastUpdatedAfter"] = after
                params["FulfillmentChannels"] = ",".join(s.fulfillment_channels)
                if s.order_statuses:
                    params["OrderStatuses"] = ",".join(s.order_statuses)
            resp = await self.request("getOrders", "GET", "/orders/v0/orders", params=params, what="since " + after)
            payload = _json(resp).get("payload") or {}
            for raw in payload.get("Orders") or []:
                if raw.get("FulfillmentChannel") and raw["FulfillmentChannel"] not in s.fulfillment_channels:
                    continue
                items = await self.order_items(str(raw["AmazonOrderId"]))
                messages.append(_map_v0.message_from_v0(self.connection_id, raw, items, self._mappings()))
                updated = raw.get("LastUpdateDate")
                if updated and (max_seen is None or _later(updated, max_seen)):
                    max_seen = updated
            token = payload.get("NextToken")
            if not token:
                return messages, max_seen or after, False
        return messages, f"{after}|{max_seen or ''}|{token}", True

    async def poll_orders(self, cursor: str | None) -> PollResult:
        """Orders updated since ``cursor`` (see :meth:`poll_messages`), cancellations left out.

        ``PollResult`` carries orders only and the hub keeps its own status on an update, so a cancellation
        must travel as ``OrderCancelled``: the hub's poller should call :meth:`poll_messages` when a connector
        has it (``hub.sync.polling``). The cursor still moves past cancelled orders.
        """
        messages, next_cursor, more = await self.poll_messages(cursor)
        orders = [m.order for m in messages if isinstance(m, OrderUpserted)]
        return PollResult(orders=orders, cursor=next_cursor, more=more)

    # -- outbound ----------------------------------------------------------------
    async def push_fulfillment(self, order: Order, shipment: Shipment) -> RemoteResult:
        """confirmShipment for one package: carrier, tracking number, ship date and the order items shipped."""
        if not shipment.tracking_number:
            raise InputError(
                f"shipment {shipment.id} of Amazon order {order.external_id} has no tracking number; "
                "Amazon requires one to confirm a shipment",
                order_id=order.id,
            )
        by_line = {ln.line_no: ln for ln in order.lines}
        by_sku = {ln.sku: ln for ln in order.lines}
        items: list[dict[str, Any]] = []
        for sl in shipment.lines or []:
            ln = by_line.get(sl.line_no) if sl.line_no is not None else by_sku.get(sl.sku)
            if ln is None or not ln.external_id:
                raise InputError(
                    f"shipment {shipment.id}: SKU {sl.sku} is not a line of Amazon order {order.external_id}",
                    order_id=order.id,
                )
            items.append({"orderItemId": ln.external_id, "quantity": sl.quantity})
        if not items:
            items = [{"orderItemId": ln.external_id, "quantity": ln.open_quantity} for ln in order.lines]
        carrier = (shipment.carrier or "").strip()
        code = CARRIER_CODES.get(carrier.lower(), "Other")
        package: dict[str, Any] = {
            "packageReferenceId": package_reference_id(shipment.id),
            "carrierCode": code,
            "trackingNumber": shipment.tracking_number,
            "shipDate": shipment.shipped_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "orderItems": items,
        }
        if code == "Other":
            package["carrierName"] = carrier or "Other"
        if shipment.service:
            package["shippingMethod"] = shipment.service
        body = {"marketplaceId": self.settings.marketplace_id, "packageDetail": package}
        path = f"/orders/v0/orders/{quote(order.external_id, safe='')}/shipmentConfirmation"
        await self.request("confirmShipment", "POST", path, json=body, what=f"order {order.external_id}")
        return RemoteResult(external_id=order.external_id, detail={"packageReferenceId": package["packageReferenceId"]})

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        """Set the merchant-fulfilled quantity of ``sku`` (absolute) with a Listings Items patch."""
        s = self.settings
        if not s.seller_id:
            raise InputError(
                f"connection {self.connection_id}: seller_id is required to push quantities to Amazon "
                "(Seller Central > Settings > Account Info > Merchant Token)"
            )
        body = {
            "productType": s.product_type,
            "patches": [
                {
                    "op": "replace",
                    "path": "/attributes/fulfillment_availability",
                    "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": max(0, int(quantity))}],
                }
            ],
        }
        path = f"/listings/2021-08-01/items/{quote(s.seller_id, safe='')}/{quote(sku, safe='')}"
        resp = await self.request(
            "patchListingsItem",
            "PATCH",
            path,
            params={"marketplaceIds": s.marketplace_id},
            json=body,
            what=f"SKU {sku}",
        )
        result = _json(resp)
        if result.get("status") == "INVALID":
            issues = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in result.get("issues") or [])
            raise FatalError(
                f"connection {self.connection_id}: Amazon rejected the quantity of SKU {sku}: {issues or 'INVALID'}",
                connection=self.connection_id,
                response={"status": resp.status_code, "body": result},
            )
        return RemoteResult(external_id=result.get("submissionId"), detail={"status": result.get("status")})


def _later(a: str, b: str) -> bool:
    ta, tb = _map_v0.parse_time(a), _map_v0.parse_time(b)
    return ta is not None and (tb is None or ta > tb)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _errors(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    body = snapshot.get("body")
    errs = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errs or [] if isinstance(e, dict)]


def _code(snapshot: Mapping[str, Any]) -> str | None:
    errs = _errors(snapshot)
    return str(errs[0].get("code")) if errs else None


def _messages(snapshot: Mapping[str, Any]) -> str:
    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in _errors(snapshot))
    return text or "no error list in the response"
