"""ShipBob connector (3PL): orders in, shipments/tracking/exceptions back by webhook, inventory snapshots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from connectors.shipbob import _map
from hub import signing
from hub.errors import AuthError, FatalError, InputError
from hub.http import call, request_snapshot, response_snapshot
from hub.mapping import MappingSet
from hub.model import Address, FulfillmentRequest, Order, Shipment
from hub.plugins import Capability, ConnectorSettings, InboundEvent, Message, RemoteResult, WmsConnector

#: Words in a ShipBob refusal that mean the goods are already on their way (too late to cancel).
TOO_LATE = ("picked", "packed", "shipped", "completed", "fulfilled", "label", "in progress", "cannot be cancel")


class ShipBobSettings(ConnectorSettings):
    """``[connections.settings]`` of a ``shipbob`` connection."""

    access_token: SecretStr = Field(description="Personal Access Token (ShipBob > Integrations > API Tokens)")
    webhook_secret: SecretStr = Field(description="whsec_... secret of the webhook subscription")
    channel_id: int = Field(description="the channel with write scopes (GET /channel)")
    fulfillment_center_map: dict[str, int] = Field(
        default_factory=dict, description="hub location id -> ShipBob fulfillment center id"
    )
    shipping_method: str = Field(default="Standard", description="used when the order has no shipping line")
    order_type: str = "DTC"


class ShipBobConnector(WmsConnector):
    """ShipBob as a 3PL location: creates ShipBob orders for fulfilment requests (idempotent by
    ``reference_id`` = the request id), cancels them while it is not too late, reads shipments and
    inventory, and takes Standard Webhooks-signed shipment webhooks."""

    name = "shipbob"
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.SUBMIT_FULFILLMENT,
            Capability.CANCEL_FULFILLMENT,
            Capability.INVENTORY_SNAPSHOT,
            Capability.TRACKING,
        }
    )
    Settings = ShipBobSettings
    #: 150 requests per minute per user and application (https://developer.shipbob.com/2026-07/rate-limit.md).
    rate_per_second: ClassVar[float] = 2.5
    max_concurrency = 4
    default_base_url = "https://api.shipbob.com/2026-07"

    settings: ShipBobSettings

    # -- helpers ---------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings.access_token.get_secret_value()}",
            "shipbob_channel_id": str(self.settings.channel_id),
        }

    @property
    def fc_to_location(self) -> dict[int, str]:
        return {fc: loc for loc, fc in self.settings.fulfillment_center_map.items()}

    def _mappings(self) -> MappingSet:
        """The connection's mapping set (``mappings/shipbob/`` plus its overrides)."""
        if self.mappings is None:
            self.mappings = MappingSet.for_connector(self.mapping_set or self.name)
        ms: MappingSet = self.mappings
        return ms

    def _client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError(f"connection {self.connection_id}: no HTTP client (hub.http.client_for) attached")
        client: httpx.AsyncClient = self.http
        return client

    async def _call(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        """One request through :func:`hub.http.call`: 429 (``x-retry-after``), 5xx and timeouts are retried,
        then raised as RetriableError; other 4xx raise FatalError with a redacted response snapshot."""
        return await call(
            self._client(), method, path, connection=self.connection_id, retry=retry,
            headers=self.auth_headers(), **kwargs,
        )  # fmt: skip

    def _secrets(self) -> set[str]:
        return {self.settings.access_token.get_secret_value(), self.settings.webhook_secret.get_secret_value()}

    def _refused(self, exc: FatalError, what: str, advice: str) -> FatalError:
        """ShipBob's own reason (ProblemDetails ``title``/``errors``) in front of the generic message."""
        status = (exc.response or {}).get("status")
        return FatalError(
            f"connection {self.connection_id}: ShipBob refused {what} ({status}): {_error_text(_snap_body(exc))}; "
            f"{advice}",
            connection=self.connection_id,
            request=exc.request,
            response=exc.response,
        )

    # -- fulfilment --------------------------------------------------------------
    def order_body(self, request: FulfillmentRequest, order: Order) -> dict[str, Any]:
        """The ``POST /order`` body of a fulfilment request (products by reference_id = SKU)."""
        address: Address | None = request.ship_to or order.shipping_address
        if address is None or not address.line1 or not address.city:
            raise InputError(
                f"fulfillment {request.id} (order {order.id}): ShipBob needs a ship-to address with line1, city and "
                "country; fix the order's shipping address and retry",
                order_id=order.id,
            )
        name = address.name or (order.customer.name if order.customer else None)
        if not name:
            raise InputError(
                f"fulfillment {request.id} (order {order.id}): ShipBob needs a recipient name; none on the address "
                "or the customer",
                order_id=order.id,
            )
        titles = {ln.line_no: ln for ln in order.lines}
        products: list[dict[str, Any]] = []
        for fl in request.lines:
            line = titles.get(fl.line_no)
            product: dict[str, Any] = {"reference_id": fl.sku, "name": (line.title if line else None) or fl.sku}
            product["quantity"] = fl.quantity
            if line is not None:  # unit_price is left out: ShipBob wants a JSON float, and money never is one
                product["external_line_id"] = fl.line_no
            products.append(product)
        body: dict[str, Any] = {
            "reference_id": request.id,
            "order_number": order.name or order.external_id,
            "type": self.settings.order_type,
            "shipping_method": (order.shipping_lines[0].title if order.shipping_lines else None)
            or self.settings.shipping_method,
            "recipient": {
                "name": name,
                "address": {
                    "address1": address.line1,
                    "address2": address.line2,
                    "company_name": address.company,
                    "city": address.city,
                    "state": address.region,
                    "country": address.country,
                    "zip_code": address.postal_code,
                },
                "email": order.customer.email if order.customer else None,
                "phone_number": address.phone,
            },
            "products": products,
            "purchase_date": order.placed_at.isoformat(),
            "tags": [
                {"name": "orderhub_order", "value": order.id},
                {"name": "orderhub_channel", "value": order.connection},
            ],
        }
        fc_map = self.settings.fulfillment_center_map
        if fc_map:
            if request.location not in fc_map:
                raise InputError(
                    f"fulfillment {request.id}: hub location {request.location!r} has no ShipBob fulfillment center in "
                    f"connection {self.connection_id} fulfillment_center_map (known: {sorted(fc_map)})",
                    order_id=order.id,
                )
            body["location_id"] = fc_map[request.location]
        cleaned: dict[str, Any] = _without_nulls(body)
        return cleaned

    async def find_order(self, reference_id: str) -> dict[str, Any] | None:
        """The ShipBob order created for ``reference_id`` (a fulfilment request id), or None."""
        try:
            resp = await self._call("GET", "/order", params={"ReferenceIds": reference_id})
        except FatalError as exc:
            if (exc.response or {}).get("status") == 404:
                return None
            raise self._refused(exc, f"order lookup {reference_id}", "check the connection settings") from None
        data = resp.json()
        items = data.get("items", data) if isinstance(data, dict) else data
        for o in items or []:
            if str(o.get("reference_id")) == reference_id:
                found: dict[str, Any] = o
                return found
        return None

    async def submit_fulfillment(self, request: FulfillmentRequest, order: Order) -> RemoteResult:
        """Create the ShipBob order; a retry after a lost reply finds the existing one by reference_id."""
        body = self.order_body(request, order)
        try:
            resp = await self._call("POST", "/order", json=body)
        except FatalError as exc:
            status = (exc.response or {}).get("status")
            if status in (409, 422) and _is_duplicate(status, _snap_body(exc)):
                existing = await self.find_order(request.id)
                if existing is not None:
                    return RemoteResult(
                        external_id=str(existing["id"]), detail={"status": existing.get("status"), "duplicate": True}
                    )
            raise self._refused(
                exc, f"order create for fulfillment {request.id}", "fix the order data and retry"
            ) from None
        created = resp.json()
        return RemoteResult(external_id=str(created["id"]), detail={"status": created.get("status")})

    async def cancel_fulfillment(self, request: FulfillmentRequest) -> RemoteResult:
        """Cancel the ShipBob order. Raises FatalError (too late) once ShipBob has picked, packed or shipped it."""
        external_id = request.external_id
        if not external_id:
            found = await self.find_order(request.id)
            if found is None:
                return RemoteResult(detail={"cancelled": True, "reason": "no ShipBob order was ever created"})
            external_id = str(found["id"])
        what = f"cancel of order {external_id} (fulfillment {request.id})"
        try:
            resp = await self._call("POST", f"/order/{quote(external_id, safe='')}/cancel")
        except FatalError as exc:
            text = _error_text(_snap_body(exc))
            if (exc.response or {}).get("status") == 409 or any(w in text.lower() for w in TOO_LATE):
                raise self._too_late(request, external_id, text, exc.request, exc.response) from None
            raise self._refused(exc, what, "check the order at ShipBob") from None
        data = resp.json() if resp.content else {}
        results = data.get("canceled_shipment_results") or []
        failed = [r for r in results if not r.get("is_success", True)]
        if failed or (data.get("status") not in (None, "Success")):
            reasons = "; ".join(str(r.get("reason")) for r in failed) or str(data.get("status"))
            secrets = self._secrets()
            raise self._too_late(
                request, external_id, reasons, request_snapshot(resp.request, secrets), response_snapshot(resp, secrets)
            )
        return RemoteResult(external_id=external_id, detail={"cancelled": True})

    def _too_late(
        self,
        request: FulfillmentRequest,
        external_id: str,
        why: str,
        req: dict[str, Any] | None,
        resp: dict[str, Any] | None,
    ) -> FatalError:
        return FatalError(
            f"connection {self.connection_id}: too late to cancel ShipBob order {external_id} (fulfillment "
            f"{request.id}): ShipBob has already picked, packed or shipped it ({why}). Intercept with the carrier "
            "or handle it as a return.",
            connection=self.connection_id,
            request=req,
            response=resp,
        )

    async def shipments(self, external_order_id: str) -> list[Shipment]:
        """The shipments (with tracking) of one ShipBob order."""
        try:
            resp = await self._call("GET", f"/order/{quote(external_order_id, safe='')}/shipment")
        except FatalError as exc:
            raise self._refused(exc, f"shipments of order {external_order_id}", "check the ShipBob order id") from None
        out: list[Shipment] = []
        for s in resp.json() or []:
            if (s.get("tracking") or {}).get("tracking_number"):
                out.append(_map.shipment_from(s, self.fc_to_location, self._mappings()))
        return out

    async def inventory_snapshot(self) -> list[tuple[str, str, int]]:
        """(sku, hub location, on hand) per mapped fulfillment center, all pages (``next`` links).

        Fulfillment centers not in ``fulfillment_center_map`` are left out: the hub does not know them."""
        fc_map = self.fc_to_location
        totals: dict[tuple[str, str], int] = {}
        url: str | None = "/inventory-level/locations"
        params: dict[str, Any] | None = {"PageSize": 250}
        while url:
            try:
                resp = await self._call("GET", url, params=params)
            except FatalError as exc:
                raise self._refused(exc, "inventory levels", "check the inventory_read scope") from None
            data = resp.json()
            for item in data.get("items") or []:
                sku = item.get("sku")
                if not sku:
                    continue
                for loc in item.get("locations") or []:
                    hub_loc = fc_map.get(int(loc.get("location_id", -1)))
                    if hub_loc is None:
                        continue
                    key = (str(sku), hub_loc)
                    totals[key] = totals.get(key, 0) + int(loc.get("on_hand_quantity") or 0)
            url, params = self._next_page(data.get("next")), None
        return [(sku, loc, qty) for (sku, loc), qty in sorted(totals.items())]

    def _next_page(self, link: Any) -> str | None:
        """The ``next`` link as a URL for this client: absolute links as given; a path that repeats the
        version root (``/2026-07/inventory-level/...``) made relative to it."""
        if not link or not isinstance(link, str):
            return None
        if link.startswith(("http://", "https://")):
            return link
        root = httpx.URL(self.base_url()).path.rstrip("/")
        if root and link.startswith(root + "/"):
            return link[len(root) :]
        return link

    # -- webhooks ----------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Standard Webhooks: ``v1`` HMAC-SHA256 of ``id.timestamp.body`` with the whsec_ secret, 5 min tolerance."""
        try:
            signing.verify(self.settings.webhook_secret.get_secret_value(), headers, body)
        except ValueError:
            raise AuthError(
                f"connection {self.connection_id}: webhook_secret is not a valid whsec_ secret; copy it from the "
                "ShipBob webhook subscription"
            ) from None

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        """``webhook-id`` is the dedup key; the topic from ``x-webhook-topic`` (or legacy ``shipbob-topic``)."""
        h = {k.lower(): v for k, v in headers.items()}
        event_id = h.get("webhook-id")
        if not event_id:
            raise InputError("ShipBob webhook without a webhook-id header")
        topic = h.get("x-webhook-topic") or _map.LEGACY_TOPICS.get(h.get("shipbob-topic", ""), h.get("shipbob-topic"))
        payload = _body(body)
        key = None
        if payload.get("id") is not None:
            key = f"shipment:{payload['id']}"
        elif payload.get("order_id") is not None:
            key = f"order:{payload['order_id']}"
        ts = _map.parse_time(payload.get("last_update_at")) or _map.parse_time(payload.get("event_time"))
        return InboundEvent(event_id=event_id, topic=topic, object_key=key, source_ts=ts)

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        """order.shipped -> ShipmentConfirmed; order.shipment.delivered -> TrackingUpdated; exception, on_hold and
        cancelled -> FulfillmentException; any other topic -> Ignored."""
        return _map.messages_from(event.topic or "", _body(body), self.fc_to_location, self._mappings())


def _body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise InputError("ShipBob webhook body is not JSON") from None
    if not isinstance(data, dict):
        raise InputError("ShipBob webhook body is not a JSON object")
    return data


def _without_nulls(value: Any) -> Any:
    """The body without null fields: ShipBob treats an absent field as "not given"."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _snap_body(exc: FatalError) -> Any:
    return (exc.response or {}).get("body")


def _error_text(data: Any) -> str:
    """ShipBob's reason from an error body: ProblemDetails ``title``/``detail``/``errors`` or ``message``."""
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("title", "message", "detail") if data.get(k)]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()]
        elif isinstance(errors, list):
            parts += [str(e) for e in errors]
        return " | ".join(parts) or json.dumps(data)[:300]
    if isinstance(data, list):
        return "; ".join(map(str, data))[:300]
    return str(data)[:300] if data else "no reason given"


def _is_duplicate(status: int, body: Any) -> bool:
    text = _error_text(body).lower()
    return status == 409 or "existing referenceid" in text or "already exists" in text or "duplicate" in text
