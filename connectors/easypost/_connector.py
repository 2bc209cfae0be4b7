"""EasyPost connector (carrier aggregator): rates, labels, trackers and tracker webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from hub.errors import AuthError, FatalError, InputError
from hub.http import call
from hub.mapping import MappingSet
from hub.model import Money, TrackingEvent
from hub.plugins import (
    Capability,
    CarrierConnector,
    ConnectorSettings,
    Ignored,
    InboundEvent,
    Label,
    Message,
    Parcel,
    Rate,
    RemoteResult,
    TrackingUpdated,
)

SIGNATURE_HEADER = "x-hmac-signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})
_GRAMS_PER_OZ = Decimal("28.349523125")
_CM_PER_IN = Decimal("2.54")


class EasyPostSettings(ConnectorSettings):
    """``[connections.settings]`` of an ``easypost`` connection."""

    api_key: SecretStr = Field(description="EasyPost API key (test or production); sent as the Basic-auth user")
    webhook_secret: SecretStr = Field(description="the webhook_secret given when the webhook was created")
    carrier_accounts: list[str] = Field(default_factory=list, description="ca_... ids to rate with (empty: all)")


def signature(secret: str, body: bytes) -> str:
    """EasyPost's ``X-Hmac-Signature``: ``hmac-sha256-hex=`` + hex HMAC-SHA256 of the raw body, keyed with
    the UTF-8 of the NFKD-normalised secret (EasyPost/easypost-python:easypost/util.py ``validate_webhook``)."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def _num(value: Decimal, places: str = "0.1") -> float:
    """A physical measure (not money) as the JSON number EasyPost expects."""
    return float(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def parcel_body(parcel: Parcel) -> dict[str, Any]:
    """EasyPost Parcel: weight in ounces, dimensions in inches (https://docs.easypost.com/docs/parcels)."""
    if parcel.weight_grams <= 0:
        raise InputError(f"parcel weight must be positive grams (got {parcel.weight_grams})")
    body: dict[str, Any] = {"weight": _num(Decimal(parcel.weight_grams) / _GRAMS_PER_OZ)}
    for name, cm in (("length", parcel.length_cm), ("width", parcel.width_cm), ("height", parcel.height_cm)):
        if cm is not None:
            body[name] = _num(Decimal(str(cm)) / _CM_PER_IN)
    return body


def address_body(addr: Any) -> dict[str, Any]:
    """An EasyPost Address from a hub Address, a Location or a dict with the same keys."""

    def get(key: str) -> Any:
        return addr.get(key) if isinstance(addr, Mapping) else getattr(addr, key, None)

    country = get("country")
    if not country:
        raise InputError("an EasyPost address needs a country")
    out = {
        "name": get("name"),
        "company": get("company"),
        "street1": get("line1"),
        "street2": get("line2"),
        "city": get("city"),
        "state": get("region"),
        "zip": get("postal_code"),
        "country": country,
        "phone": get("phone"),
    }
    return {k: v for k, v in out.items() if v not in (None, "")}


class EasyPostConnector(CarrierConnector):
    """EasyPost: shop rates (``POST /shipments``), buy labels (``POST /shipments/{id}/buy``), create trackers,
    and take ``tracker.updated`` webhooks signed with ``X-Hmac-Signature``."""

    name = "easypost"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.RATES, Capability.LABELS, Capability.TRACKING})
    Settings = EasyPostSettings
    rate_per_second = 5.0
    default_base_url = "https://api.easypost.com/v2"

    settings: EasyPostSettings

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.settings.api_key.get_secret_value()}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _mappings(self) -> MappingSet:
        if self.mappings is None:
            self.mappings = MappingSet.for_connector(self.mapping_set or self.name)
        ms: MappingSet = self.mappings
        return ms

    def _client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError(f"connection {self.connection_id}: no HTTP client (hub.http.client_for) attached")
        client: httpx.AsyncClient = self.http
        return client

    async def _post(self, path: str, body: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        try:
            resp = await call(
                self._client(), "POST", path, connection=self.connection_id, retry=retry,
                json=body, headers=self.auth_headers(),
            )  # fmt: skip
        except FatalError as exc:
            raise self._explain(exc) from None
        data: dict[str, Any] = resp.json()
        return data

    def _explain(self, exc: FatalError) -> FatalError:
        """Put EasyPost's own error code and messages (``{"error": {code, message, errors[]}}``) up front."""
        body = (exc.response or {}).get("body")
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return exc
        fields = "; ".join(
            f"{e.get('field')}: {e.get('message')}" for e in err.get("errors") or [] if isinstance(e, dict)
        )
        detail = (
            f"connection {self.connection_id}: EasyPost refused the request: {err.get('code')}: {err.get('message')}"
        )
        return FatalError(
            detail + (f" ({fields})" if fields else ""),
            connection=self.connection_id,
            request=exc.request,
            response=exc.response,
        )

    # -- rates and labels ----------------------------------------------------------
    def shipment_body(self, ship_from: Any, ship_to: Any, parcel: Parcel, reference: str | None) -> dict[str, Any]:
        shipment: dict[str, Any] = {
            "from_address": address_body(ship_from),
            "to_address": address_body(ship_to),
            "parcel": parcel_body(parcel),
        }
        if reference:
            shipment["reference"] = reference
        if self.settings.carrier_accounts:
            shipment["carrier_accounts"] = list(self.settings.carrier_accounts)
        return {"shipment": shipment}

    async def create_shipment(
        self, ship_from: Any, ship_to: Any, parcel: Parcel, reference: str | None = None
    ) -> dict[str, Any]:
        """``POST /shipments``: an EasyPost Shipment with its ``rates``."""
        return await self._post("/shipments", self.shipment_body(ship_from, ship_to, parcel, reference))

    async def rates(self, ship_from: Any, ship_to: Any, parcel: Parcel) -> list[Rate]:
        """Every rate EasyPost offers for the parcel, cheapest first."""
        shipment = await self.create_shipment(ship_from, ship_to, parcel)
        return sorted((_rate(r) for r in shipment.get("rates") or []), key=lambda r: r.amount.amount)

    async def buy_label(
        self, ship_from: Any, ship_to: Any, parcel: Parcel, service: str | None = None, reference: str | None = None
    ) -> Label:
        """Create a shipment and buy ``service`` (``"Priority"`` or ``"USPS:Priority"``), or the cheapest rate.

        The buy is sent once (no transport retry): a repeated purchase would pay twice."""
        shipment = await self.create_shipment(ship_from, ship_to, parcel, reference)
        chosen = choose_rate(shipment.get("rates") or [], service)
        if chosen is None:
            offered = ", ".join(f"{r.get('carrier')}:{r.get('service')}" for r in shipment.get("rates") or [])
            raise FatalError(
                f"connection {self.connection_id}: EasyPost offers no rate for service {service!r} "
                f"(offered: {offered or 'none'}; messages: {shipment.get('messages') or []})",
                connection=self.connection_id,
            )
        bought = await self._post(
            f"/shipments/{quote(str(shipment['id']), safe='')}/buy", {"rate": {"id": chosen["id"]}}, retry=False
        )
        return label_from(bought)

    async def track(self, tracking_number: str, carrier: str | None = None) -> RemoteResult:
        """Create (or re-use: EasyPost de-duplicates per code and carrier) a tracker for webhooks."""
        tracker: dict[str, Any] = {"tracking_code": tracking_number}
        if carrier:
            tracker["carrier"] = carrier
        data = await self._post("/trackers", {"tracker": tracker})
        return RemoteResult(external_id=data.get("id"), detail={"status": data.get("status")})

    # -- webhooks ------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Constant-time check of ``X-Hmac-Signature`` over the raw body."""
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not given:
            raise AuthError("EasyPost webhook without an X-Hmac-Signature header; set webhook_secret on the webhook")
        expected = signature(self.settings.webhook_secret.get_secret_value(), body)
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise AuthError(
                f"connection {self.connection_id}: EasyPost webhook signature does not match; check webhook_secret"
            )

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        """The Event ``id`` is the dedup key; ``tracking:<code>`` orders the events of one parcel."""
        event = _event(body)
        result = event.get("result") if isinstance(event.get("result"), dict) else {}
        code = result.get("tracking_code") if result else None
        ts_raw = (result or {}).get("updated_at") or event.get("updated_at")
        return InboundEvent(
            event_id=str(event["id"]),
            topic=event.get("description"),
            object_key=f"tracking:{code}" if code else None,
            source_ts=_time(ts_raw),
        )

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        """``tracker.*`` -> TrackingUpdated (mapping ``mappings/easypost/tracking.yaml``); other events -> Ignored."""
        data = _event(body)
        if data.get("description") not in TRACKER_EVENTS or not isinstance(data.get("result"), dict):
            return [Ignored(reason=f"EasyPost event {data.get('description')!r} is not used by the hub")]
        tracking = self._mappings().build("tracking", data["result"], TrackingEvent)
        return [TrackingUpdated(event=tracking)]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _event(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise InputError("EasyPost webhook body is not JSON") from None
    if not isinstance(data, dict) or data.get("object") != "Event" or not data.get("id"):
        raise InputError("EasyPost webhook body is not an Event object with an id")
    return data


def _rate(r: Mapping[str, Any]) -> Rate:
    days = r.get("delivery_days") if r.get("delivery_days") is not None else r.get("est_delivery_days")
    return Rate(
        carrier=str(r.get("carrier")),
        service=str(r.get("service")),
        amount=Money.of(str(r["rate"]), str(r["currency"])),
        delivery_days=int(days) if days is not None else None,
        rate_id=r.get("id"),
    )


def choose_rate(rates: list[dict[str, Any]], service: str | None) -> dict[str, Any] | None:
    """The rate for ``service`` (``"carrier:service"`` or ``"service"``, case-insensitive), else the cheapest."""
    if not rates:
        return None
    if service:
        carrier, _, svc = service.rpartition(":")
        matches = [
            r
            for r in rates
            if str(r.get("service", "")).lower() == svc.lower()
            and (not carrier or str(r.get("carrier", "")).lower() == carrier.lower())
        ]
        if not matches:
            return None
        rates = matches
    return min(rates, key=lambda r: Decimal(str(r["rate"])))


def label_from(shipment: Mapping[str, Any]) -> Label:
    """The Label of a bought EasyPost Shipment (``tracking_code``, ``postage_label.label_url``, ``selected_rate``)."""
    rate = shipment.get("selected_rate") or {}
    if not shipment.get("tracking_code") or not rate:
        raise FatalError(f"EasyPost shipment {shipment.get('id')} was bought but has no tracking code or selected rate")
    return Label(
        tracking_number=str(shipment["tracking_code"]),
        label_url=(shipment.get("postage_label") or {}).get("label_url"),
        carrier=str(rate.get("carrier")),
        service=str(rate.get("service")),
        cost=Money.of(str(rate["rate"]), str(rate["currency"])),
        shipment_external_id=shipment.get("id"),
    )
