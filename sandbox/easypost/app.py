"""Simulated EasyPost carrier API (shapes of EasyPost/examples ``official/docs/responses``).

- ``POST /v2/shipments`` (``{"shipment": {to_address, from_address, parcel, reference}}``) answers a Shipment
  with ``rates``; ``POST /v2/shipments/{id}/buy`` (``{"rate": {"id"}}``) answers the bought Shipment with
  ``selected_rate``, ``postage_label``, ``tracking_code`` and ``tracker``; ``GET /v2/shipments/{id}``.
- ``POST /v2/trackers`` (de-duplicated on tracking_code + carrier), ``GET /v2/trackers/{id}``, ``GET /v2/trackers``.
- Trackers advance ``pre_transit -> in_transit -> out_for_delivery -> delivered`` every ``step_seconds`` and
  each step sends a ``tracker.updated`` Event signed with ``X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256
  of the body, key = NFKD(webhook_secret)>`` (EasyPost/easypost-python ``util.validate_webhook``).
- Auth: the API key as the Basic username (empty password) or ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox._common import (
    Faults,
    SimState,
    add_control_routes,
    dumps,
    fault_middleware,
    iso,
    json_response,
    note,
    read_json,
)

__all__ = ["STATE", "STATUSES", "EasyPostSettings", "EasyPostState", "make_app", "sign"]

STATUSES = ("pre_transit", "in_transit", "out_for_delivery", "delivered")
DETAILS = {
    "pre_transit": ("label_created", "Shipping Label Created"),
    "in_transit": ("departed_facility", "Departed Shipping Partner Facility"),
    "out_for_delivery": ("out_for_delivery", "Out for Delivery"),
    "delivered": ("arrived_at_destination", "Delivered"),
}
SERVICES = (
    ("USPS", "GroundAdvantage", Decimal("5.93"), 3),
    ("USPS", "Priority", Decimal("8.95"), 2),
    ("UPS", "Ground", Decimal("10.12"), 4),
)


@dataclass
class EasyPostSettings:
    """Key, webhook secret and tracker timing of the simulated carrier API."""

    api_key: str = "EZTK_sandbox_api_key"
    webhook_secret: str = "sécret"
    mode: str = "test"
    step_seconds: float = 0.2
    auto_advance: bool = True
    webhook_target: str | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int | None = 5


def sign(secret: str, body: bytes) -> str:
    """``X-Hmac-Signature``: ``hmac-sha256-hex=`` + hex HMAC-SHA256 of the body, key = UTF-8 of NFKD(secret)."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class EasyPostState(SimState):
    """Shipments, rates, labels and trackers of the simulated carrier account."""

    name = "easypost"

    def __init__(self, settings: EasyPostSettings) -> None:
        super().__init__(settings.faults, settings.seed, settings.webhook_target)
        self.settings = settings
        self.shipments: dict[str, dict[str, Any]] = {}
        self.trackers: dict[str, dict[str, Any]] = {}
        self.user_id = "user_" + self._hex()
        self._tasks: set[asyncio.Task[None]] = set()

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _obj(self, prefix: str, kind: str) -> dict[str, Any]:
        now = iso()
        return {
            "id": f"{prefix}_{self._hex()}",
            "object": kind,
            "mode": self.settings.mode,
            "created_at": now,
            "updated_at": now,
        }

    def _address(self, data: dict[str, Any] | None) -> dict[str, Any] | None:
        if data is None:
            return None
        keys = (
            "name",
            "company",
            "street1",
            "street2",
            "city",
            "state",
            "zip",
            "country",
            "phone",
            "email",
            "residential",
            "carrier_facility",
            "federal_tax_id",
            "state_tax_id",
        )
        return {**self._obj("adr", "Address"), **{k: data.get(k) for k in keys}, "verifications": {}}

    def create_shipment(self, data: dict[str, Any]) -> dict[str, Any]:
        """A Shipment with one rate per simulated service."""
        parcel_in = data.get("parcel") or {}
        weight = Decimal(str(parcel_in.get("weight") or 16))
        shipment = {
            **self._obj("shp", "Shipment"),
            "status": "unknown",
            "tracking_code": None,
            "reference": data.get("reference"),
            "is_return": bool(data.get("is_return", False)),
            "options": {"currency": "USD", **(data.get("options") or {})},
            "from_address": self._address(data.get("from_address")),
            "to_address": self._address(data.get("to_address")),
            "return_address": self._address(data.get("return_address") or data.get("from_address")),
            "buyer_address": self._address(data.get("buyer_address") or data.get("to_address")),
            "parcel": {
                **self._obj("prcl", "Parcel"),
                **{k: parcel_in.get(k) for k in ("length", "width", "height", "predefined_package")},
                "weight": float(weight),
            },
            "customs_info": data.get("customs_info"),
            "rates": [],
            "selected_rate": None,
            "postage_label": None,
            "tracker": None,
            "insurance": None,
            "fees": [],
            "forms": [],
            "refund_status": None,
            "scan_form": None,
            "batch_id": None,
            "batch_status": None,
            "batch_message": None,
            "order_id": None,
            "usps_zone": 4,
            "messages": [],
        }
        for carrier, service, base, days in SERVICES:
            price = str((base + weight / 16 * Decimal("0.75")).quantize(Decimal("0.01")))
            shipment["rates"].append(
                {
                    **self._obj("rate", "Rate"),
                    "service": service,
                    "carrier": carrier,
                    "rate": price,
                    "currency": "USD",
                    "retail_rate": price,
                    "retail_currency": "USD",
                    "list_rate": price,
                    "list_currency": "USD",
                    "billing_type": "easypost",
                    "delivery_days": days,
                    "delivery_date": None,
                    "delivery_date_guaranteed": False,
                    "est_delivery_days": days,
                    "shipment_id": shipment["id"],
                    "carrier_account_id": f"ca_{carrier.lower()}_sandbox",
                }
            )
        self.shipments[shipment["id"]] = shipment
        return shipment

    def buy(self, shipment: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
        """Buy the label: postage_label, tracking_code and a tracker that starts advancing."""
        carrier = rate["carrier"]
        code = (
            f"9400{self.rng.randrange(10**17, 10**18)}"
            if carrier == "USPS"
            else f"1Z{self.rng.randrange(10**15, 10**16)}"
        )
        label = {
            **self._obj("pl", "PostageLabel"),
            "date_advance": 0,
            "integrated_form": "none",
            "label_date": iso(),
            "label_resolution": 300,
            "label_size": "4x6",
            "label_type": "default",
            "label_file_type": "image/png",
            "label_url": f"https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label/sandbox/{self._hex()}.png",
            "label_pdf_url": None,
            "label_zpl_url": None,
            "label_epl2_url": None,
            "label_file": None,
        }
        shipment.update(
            {
                "selected_rate": rate,
                "postage_label": label,
                "tracking_code": code,
                "status": "unknown",
                "updated_at": iso(),
            }
        )
        shipment["fees"] = [
            {"object": "Fee", "type": "LabelFee", "amount": "0.00000", "charged": True, "refunded": False},
            {"object": "Fee", "type": "PostageFee", "amount": rate["rate"], "charged": True, "refunded": False},
        ]
        shipment["tracker"] = self.create_tracker(code, carrier, shipment["id"])
        return shipment

    def create_tracker(self, code: str, carrier: str, shipment_id: str | None = None) -> dict[str, Any]:
        """A Tracker (one per tracking_code + carrier, as EasyPost de-duplicates them)."""
        for t in self.trackers.values():
            if t["tracking_code"] == code and t["carrier"] == carrier:
                return t
        tracker = {
            **self._obj("trk", "Tracker"),
            "tracking_code": code,
            "status": "pre_transit",
            "status_detail": "label_created",
            "signed_by": None,
            "weight": None,
            "est_delivery_date": None,
            "shipment_id": shipment_id,
            "carrier": carrier,
            "tracking_details": [],
            "carrier_detail": {
                "object": "CarrierDetail",
                "service": None,
                "container_type": None,
                "est_delivery_date_local": None,
                "est_delivery_time_local": None,
                "origin_location": "LOUISVILLE KY, US",
                "origin_tracking_location": None,
                "destination_location": None,
                "destination_tracking_location": None,
                "guaranteed_delivery_date": None,
                "alternate_identifier": None,
                "initial_delivery_attempt": None,
            },
            "finalized": False,
            "is_return": False,
            "public_url": f"https://track.easypost.com/{base64.urlsafe_b64encode(code.encode()).decode().rstrip('=')}",
            "fees": [],
        }
        self._detail(tracker, "pre_transit")
        self.trackers[tracker["id"]] = tracker
        if self.settings.auto_advance:
            task = asyncio.create_task(self._advance_all(tracker["id"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return tracker

    def _detail(self, tracker: dict[str, Any], status: str) -> None:
        detail, message = DETAILS[status]
        tracker["tracking_details"].append(
            {
                "object": "TrackingDetail",
                "message": message,
                "description": message,
                "status": status,
                "status_detail": detail,
                "datetime": iso(),
                "source": tracker["carrier"],
                "carrier_code": None,
                "est_delivery_date": None,
                "tracking_location": {
                    "object": "TrackingLocation",
                    "city": "LOUISVILLE",
                    "state": "KY",
                    "country": "US",
                    "zip": "40202",
                },
            }
        )

    def advance(self, tracker_id: str) -> dict[str, Any]:
        """Move a tracker to its next status and send ``tracker.updated``."""
        tracker = self.trackers[tracker_id]
        i = STATUSES.index(tracker["status"]) if tracker["status"] in STATUSES else -1
        if i + 1 >= len(STATUSES):
            return tracker
        previous = tracker["status"]
        status = STATUSES[i + 1]
        tracker["status"], tracker["status_detail"], tracker["updated_at"] = status, DETAILS[status][0], iso()
        self._detail(tracker, status)
        if status == "delivered":
            tracker["signed_by"], tracker["finalized"] = "SANDBOX RECIPIENT", True
        for s in self.shipments.values():
            if s.get("tracker") and s["tracker"]["id"] == tracker_id:
                s["status"] = status
        self.send_event("tracker.updated", tracker, {"status": previous})
        return tracker

    async def _advance_all(self, tracker_id: str) -> None:
        while self.trackers[tracker_id]["status"] != "delivered":
            await asyncio.sleep(self.settings.step_seconds)
            self.advance(tracker_id)

    def send_event(self, description: str, result: dict[str, Any], previous: dict[str, Any]) -> str:
        """Send one Event webhook; returns its ``evt_`` id."""
        event = {
            **self._obj("evt", "Event"),
            "description": description,
            "status": "pending",
            "previous_attributes": previous,
            "pending_urls": [self.sender.target] if self.sender.target else [],
            "completed_urls": [],
            "user_id": self.user_id,
            "result": result,
        }
        secret = self.settings.webhook_secret
        self.sender.send(description, dumps(event), lambda b: {"X-Hmac-Signature": sign(secret, b)}, event["id"])
        return str(event["id"])

    async def settle(self, max_wait: float = 10.0) -> bool:
        """Wait for running tracker progressions, then for their webhooks."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=max_wait)
            if pending:
                return False
        return await self.drain(max_wait)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().close()


STATE: web.AppKey[EasyPostState] = web.AppKey("easypost_state", EasyPostState)


def _error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> web.Response:
    return json_response({"error": {"code": code, "message": message, "errors": errors or []}}, status)


def make_app(settings: EasyPostSettings | None = None) -> web.Application:
    """The simulated carrier API as an aiohttp application; its state is ``app[STATE]``."""
    settings = settings or EasyPostSettings()
    state = EasyPostState(settings)

    def throttled(request: web.Request) -> web.Response:
        return _error(429, "RATE_LIMITED", "The request was rate limited. Please retry with exponential backoff.")

    def server_error(request: web.Request, status: int) -> web.Response:
        if status == 503:
            return _error(503, "SERVICE.UNAVAILABLE", "The service is temporarily unavailable. Please try again.")
        return _error(status, "INTERNAL_SERVER_ERROR", "We're sorry, something went wrong. Please try again.")

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_sandbox/"):
            scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
            key = ""
            if scheme.lower() == "bearer":
                key = cred.strip()
            elif scheme.lower() == "basic":
                with contextlib.suppress(ValueError):
                    key = base64.b64decode(cred).decode().partition(":")[0]
            if not key or not hmac.compare_digest(key, settings.api_key):
                return _error(
                    401,
                    "APIKEY.INVALID" if key else "APIKEY.REQUIRED",
                    "The provided API key is invalid." if key else "An API key is required for this request.",
                )
        resp: web.StreamResponse = await handler(request)
        return resp

    app = web.Application(middlewares=[fault_middleware(state, throttled, server_error), auth])
    app[STATE] = state
    add_control_routes(app, state)
    app.router.add_post("/v2/shipments", _create_shipment)
    app.router.add_get("/v2/shipments/{id}", _get_shipment)
    app.router.add_post("/v2/shipments/{id}/buy", _buy)
    app.router.add_post("/v2/trackers", _create_tracker)
    app.router.add_get("/v2/trackers", _list_trackers)
    app.router.add_get("/v2/trackers/{id}", _get_tracker)
    return app


async def _create_shipment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    data = body.get("shipment") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return _error(
            422,
            "PARAMETER.REQUIRED",
            "Missing required parameter: shipment.",
            [{"field": "shipment", "message": "cannot be blank"}],
        )
    note(request, reference=data.get("reference"), idempotency_key=data.get("reference"))
    missing = [k for k in ("to_address", "from_address", "parcel") if not data.get(k)]
    if missing:
        return _error(
            422,
            "SHIPMENT.INVALID_PARAMS",
            f"Missing {', '.join(missing)}.",
            [{"field": k, "message": "cannot be blank"} for k in missing],
        )
    return json_response(state.create_shipment(data), 201)


async def _get_shipment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    shipment = state.shipments.get(request.match_info["id"])
    if shipment is None:
        return _error(404, "NOT_FOUND", "The requested resource could not be found.")
    return json_response(shipment)


async def _buy(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = request.match_info["id"]
    body = await read_json(request)
    rate_in = body.get("rate") if isinstance(body, dict) else None
    rate_id = rate_in.get("id") if isinstance(rate_in, dict) else None
    note(request, shipment_id=sid, rate_id=rate_id, idempotency_key=sid)
    shipment = state.shipments.get(sid)
    if shipment is None:
        return _error(404, "NOT_FOUND", "The requested resource could not be found.")
    if shipment["postage_label"] is not None:
        state.recorder.duplicate("easypost.label", f"shipment {sid} bought again", refused=True)
        return _error(422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment.")
    rate = next((r for r in shipment["rates"] if r["id"] == rate_id), None)
    if rate is None:
        return _error(
            422,
            "SHIPMENT.RATE.INVALID",
            f"Rate {rate_id} is not a rate of shipment {sid}.",
            [{"field": "rate", "message": "is invalid"}],
        )
    ref = shipment.get("reference")
    state.recorder.side_effect("easypost.label", f"reference {ref}" if ref else f"shipment {sid}")
    return json_response(state.buy(shipment, rate))


async def _create_tracker(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    data = body.get("tracker") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("tracking_code"):
        return _error(
            422,
            "TRACKER.TRACKING_CODE.REQUIRED",
            "A tracking_code is required.",
            [{"field": "tracking_code", "message": "cannot be blank"}],
        )
    note(request, tracking_code=data["tracking_code"], carrier=data.get("carrier"))
    return json_response(state.create_tracker(str(data["tracking_code"]), str(data.get("carrier") or "USPS")))


async def _get_tracker(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tracker = state.trackers.get(request.match_info["id"])
    if tracker is None:
        return _error(404, "NOT_FOUND", "The requested resource could not be found.")
    return json_response(tracker)


async def _list_trackers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    size = int(request.query.get("page_size", 20))
    before = request.query.get("before_id")
    rows = sorted(state.trackers.values(), key=lambda t: t["created_at"] + t["id"], reverse=True)
    if before:
        ids = [t["id"] for t in rows]
        rows = rows[ids.index(before) + 1 :] if before in ids else []
    code = request.query.get("tracking_code")
    if code:
        rows = [t for t in rows if t["tracking_code"] == code]
    return json_response({"trackers": rows[:size], "has_more": len(rows) > size})
