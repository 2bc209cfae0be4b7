"""EasyPost connector: the HMAC test vector, tracker webhooks through mappings/easypost/tracking.yaml,
rates and labels request shapes. Fixtures are EasyPost's own (fixtures/README.md); HTTP mocked with respx."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.easypost import EasyPostConnector, EasyPostSettings, signature
from hub.errors import AuthError, FatalError, InputError, MappingError, RetriableError
from hub.http import RetryPolicy, client_for
from hub.mapping import MappingSet
from hub.model import Address, Money, TrackingStatus
from hub.plugins import Ignored, Parcel, TrackingUpdated

FIX = Path(__file__).parent / "fixtures"
BASE = "https://easypost.test/v2"
#: hub.http retries without real waiting in tests.
FAST = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)


def fx(name: str) -> Any:
    return json.loads((FIX / name).read_text())


VECTOR = fx("client-library-fixtures.json")["webhooks"]
#: The signed body of the vector: event-body.json without its trailing newline.
VECTOR_BODY = (FIX / "event-body.json").read_bytes().rstrip(b"\n")


@pytest.fixture
async def conn() -> AsyncIterator[EasyPostConnector]:
    settings = EasyPostSettings(api_key="EZTK-secret-key", webhook_secret=VECTOR["secret"], base_url=BASE)
    conn = EasyPostConnector("easypost-1", settings, None, MappingSet.for_connector("easypost"))
    conn.http = client_for(conn, transport=httpx.MockTransport(respx.mock.async_handler), retry=FAST)
    async with conn.http:
        yield conn


def event(result: dict[str, Any], description: str = "tracker.updated") -> bytes:
    body = copy.deepcopy(fx("event-body.json"))
    body["description"] = description
    body["result"] = result
    return json.dumps(body).encode()


# -- signatures ----------------------------------------------------------------------------


def test_signature_matches_easyposts_test_vector() -> None:
    """client-library-fixtures.json `webhooks`: secret "sécret" (NFKD-normalised), body event-body.json."""
    assert signature(VECTOR["secret"], VECTOR_BODY) == VECTOR["hmac_signature"]


def test_signed_delivery_is_accepted_and_tampering_refused(conn: EasyPostConnector) -> None:
    conn.verify_webhook({"X-Hmac-Signature": VECTOR["hmac_signature"]}, VECTOR_BODY)
    with pytest.raises(AuthError):
        conn.verify_webhook({"X-Hmac-Signature": VECTOR["hmac_signature"]}, VECTOR_BODY.replace(b"FedEx", b"UPS"))
    with pytest.raises(AuthError):
        conn.verify_webhook({"X-Hmac-Signature": VECTOR["hmac_signature"][:-1] + "0"}, VECTOR_BODY)
    with pytest.raises(AuthError, match="X-Hmac-Signature"):
        conn.verify_webhook({}, VECTOR_BODY)


def test_secret_is_normalised_nfkd_before_use() -> None:
    composed, decomposed = "s\u00e9cret", "se\u0301cret"
    assert signature(composed, VECTOR_BODY) == signature(decomposed, VECTOR_BODY) == VECTOR["hmac_signature"]


# -- tracker webhooks ------------------------------------------------------------------------


def test_event_id_is_the_dedup_key_and_tracking_code_the_object(conn: EasyPostConnector) -> None:
    ev = conn.webhook_event({}, VECTOR_BODY)
    assert ev.event_id == "evt_1" and ev.topic == "tracker.updated" and ev.object_key == "tracking:1"
    assert ev.source_ts == datetime(2024, 8, 2, 19, 26, 51, tzinfo=UTC)


def test_tracker_updated_becomes_tracking_updated(conn: EasyPostConnector) -> None:
    ev = conn.webhook_event({}, VECTOR_BODY)
    [msg] = conn.parse_webhook(ev, {}, VECTOR_BODY)
    assert isinstance(msg, TrackingUpdated)
    t = msg.event
    assert (t.tracking_number, t.carrier, t.status) == ("1", "FedEx", TrackingStatus.IN_TRANSIT)
    assert t.message == "Arrived at FedEx location" and t.location == "EDISON, NJ, US"
    assert t.occurred_at == datetime(2024, 8, 2, 18, 50, tzinfo=UTC) and t.external_id == "trk_1"


def test_delivered_tracker_from_the_tracking_guide(conn: EasyPostConnector) -> None:
    body = (FIX / "tracking-webhook.json").read_bytes()
    [msg] = conn.parse_webhook(conn.webhook_event({}, body), {}, body)
    assert isinstance(msg, TrackingUpdated) and msg.event.status is TrackingStatus.DELIVERED
    assert msg.event.message == "DELIVERED" and msg.event.location == "SAN FRANCISCO, CA, US"


@pytest.mark.parametrize(
    ("easypost", "canonical"),
    [
        ("pre_transit", TrackingStatus.PRE_TRANSIT),
        ("in_transit", TrackingStatus.IN_TRANSIT),
        ("out_for_delivery", TrackingStatus.OUT_FOR_DELIVERY),
        ("delivered", TrackingStatus.DELIVERED),
        ("available_for_pickup", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("return_to_sender", TrackingStatus.RETURN_TO_SENDER),
        ("failure", TrackingStatus.FAILURE),
        ("cancelled", TrackingStatus.CANCELLED),
        ("error", TrackingStatus.UNKNOWN),
        ("unknown", TrackingStatus.UNKNOWN),
        ("something_new", TrackingStatus.UNKNOWN),
    ],
)
def test_every_tracker_status_maps(conn: EasyPostConnector, easypost: str, canonical: TrackingStatus) -> None:
    tracker = fx("event-body.json")["result"]
    tracker["status"] = easypost
    body = event(tracker)
    [msg] = conn.parse_webhook(conn.webhook_event({}, body), {}, body)
    assert isinstance(msg, TrackingUpdated) and msg.event.status is canonical


def test_tracker_without_scans_uses_its_own_time_and_detail(conn: EasyPostConnector) -> None:
    tracker = fx("event-body.json")["result"]
    tracker["tracking_details"] = []
    body = event(tracker, "tracker.created")
    [msg] = conn.parse_webhook(conn.webhook_event({}, body), {}, body)
    assert isinstance(msg, TrackingUpdated)
    assert msg.event.occurred_at == datetime(2024, 8, 2, 19, 26, 51, tzinfo=UTC)
    assert msg.event.message == "arrived_at_facility" and msg.event.location is None


def test_tracker_without_code_is_a_mapping_error_with_file_and_line(conn: EasyPostConnector) -> None:
    tracker = fx("event-body.json")["result"]
    del tracker["tracking_code"]
    body = event(tracker)
    with pytest.raises(MappingError) as exc:
        conn.parse_webhook(conn.webhook_event({}, body), {}, body)
    err = exc.value.errors[0]
    assert err["file"].endswith("tracking.yaml") and err["line"] and err["field"] == "tracking_number"


def test_other_events_are_ignored_and_bad_bodies_refused(conn: EasyPostConnector) -> None:
    body = event(fx("shipments-buy.json"), "batch.created")
    [msg] = conn.parse_webhook(conn.webhook_event({}, body), {}, body)
    assert isinstance(msg, Ignored)
    with pytest.raises(InputError):
        conn.webhook_event({}, b"[1, 2]")


# -- rates and labels ------------------------------------------------------------------------

FROM = Address(name="EasyPost", line1="417 Montgomery Street", line2="5th Floor", city="San Francisco",
               region="CA", postal_code="94104", country="US", phone="4153334445")  # fmt: skip
TO = Address(name="Dr. Steve Brule", line1="179 N Harbor Dr", city="Redondo Beach", region="CA",
             postal_code="90277", country="US")  # fmt: skip
PARCEL = Parcel(weight_grams=1868, length_cm=51.3, width_cm=27.7, height_cm=12.7)


@respx.mock
async def test_rates_request_shape_and_money(conn: EasyPostConnector) -> None:
    route = respx.post(f"{BASE}/shipments").mock(return_value=httpx.Response(201, json=fx("shipments-create.json")))
    rates = await conn.rates(FROM, TO, PARCEL)
    req = route.calls[0].request
    assert req.headers["Authorization"] == "Basic RVpUSy1zZWNyZXQta2V5Og=="  # base64("EZTK-secret-key:")
    shipment = json.loads(req.content)["shipment"]
    assert shipment["parcel"] == {"weight": 65.9, "length": 20.2, "width": 10.9, "height": 5.0}  # oz, inches
    assert shipment["from_address"]["street1"] == "417 Montgomery Street" and shipment["to_address"]["zip"] == "90277"
    amounts = [r.amount.amount for r in rates]
    assert amounts == sorted(amounts) and all(isinstance(a, Decimal) for a in amounts)
    express = next(r for r in rates if r.service == "Express")
    assert express.amount == Money.of("51.20", "USD") and express.rate_id == "rate_9c291b87bdec47a0b3ed151c60b21fb4"


@respx.mock
async def test_buy_label_buys_the_requested_service_once(conn: EasyPostConnector) -> None:
    created = fx("shipments-create.json")
    respx.post(f"{BASE}/shipments").mock(return_value=httpx.Response(201, json=created))
    buy = respx.post(f"{BASE}/shipments/{created['id']}/buy").mock(
        return_value=httpx.Response(200, json=fx("shipments-buy.json"))
    )
    wanted = next(r for r in created["rates"] if r["service"] == "GroundAdvantage" and r["carrier"] == "USPS")
    label = await conn.buy_label(FROM, TO, PARCEL, service="usps:groundadvantage", reference="ful_1")
    assert json.loads(buy.calls[0].request.content) == {"rate": {"id": wanted["id"]}}
    assert label.tracking_number == "9434600208303109842228" and label.carrier == "USPS"
    assert label.cost == Money.of("8.20", "USD") and label.label_url and label.label_url.endswith(".png")


@respx.mock
async def test_failed_purchase_is_not_resent(conn: EasyPostConnector) -> None:
    created = fx("shipments-create.json")
    respx.post(f"{BASE}/shipments").mock(return_value=httpx.Response(201, json=created))
    buy = respx.post(f"{BASE}/shipments/{created['id']}/buy").mock(return_value=httpx.Response(503))
    with pytest.raises(RetriableError):
        await conn.buy_label(FROM, TO, PARCEL)
    assert buy.call_count == 1, "a second purchase could pay twice"


@respx.mock
async def test_unknown_service_is_fatal_and_lists_the_offered_ones(conn: EasyPostConnector) -> None:
    respx.post(f"{BASE}/shipments").mock(return_value=httpx.Response(201, json=fx("shipments-create.json")))
    with pytest.raises(FatalError, match="USPS:Express"):
        await conn.buy_label(FROM, TO, PARCEL, service="Teleport")


@respx.mock
async def test_easypost_error_code_is_in_the_message(conn: EasyPostConnector) -> None:
    respx.post(f"{BASE}/shipments").mock(return_value=httpx.Response(422, json=fx("catch-error.json")))
    with pytest.raises(FatalError, match=r"ADDRESS.VERIFY.FAILURE: Address not found \(.*street1: House number"):
        await conn.rates(FROM, TO, PARCEL)


@respx.mock
async def test_track_creates_a_tracker(conn: EasyPostConnector) -> None:
    route = respx.post(f"{BASE}/trackers").mock(return_value=httpx.Response(201, json=fx("trackers-create.json")))
    result = await conn.track("EZ1000000001", "USPS")
    assert json.loads(route.calls[0].request.content) == {
        "tracker": {"tracking_code": "EZ1000000001", "carrier": "USPS"}
    }
    assert result.external_id == "trk_9135862729734d96ad2f9ed0f0565a27"


def test_secrets_stay_out_of_reprs() -> None:
    s = EasyPostSettings(api_key="EZTK-secret-key", webhook_secret="whsecret")
    assert "EZTK-secret-key" not in repr(s) and "whsecret" not in repr(s)
