"""The EasyPost simulator: shipments, rates, label purchase, trackers and signed tracker.updated Events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata
from typing import Any

from sandbox.easypost.app import STATE, EasyPostSettings, make_app, sign

from .conftest import Receiver, Serve, fixture

SETTINGS = EasyPostSettings(api_key="EZTK_test", webhook_secret="sécret", step_seconds=0.01)
BASIC = {"Authorization": "Basic " + base64.b64encode(b"EZTK_test:").decode()}
SHIPMENT = {
    "shipment": {
        "reference": "ful_001",
        "to_address": {
            "name": "Ada",
            "street1": "417 Montgomery St",
            "city": "San Francisco",
            "state": "CA",
            "zip": "94104",
            "country": "US",
        },
        "from_address": {
            "company": "Orderhub",
            "street1": "1 Main St",
            "city": "Louisville",
            "state": "KY",
            "zip": "40202",
            "country": "US",
        },
        "parcel": {"length": 10, "width": 8, "height": 4, "weight": 15.4},
    }
}


def reference_verify(secret: str, body: bytes, header: str) -> bool:
    """EasyPost/easypost-python util.validate_webhook, restated."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"hmac-sha256-hex={digest}", header)


def test_signature_reproduces_easyposts_published_test_vector() -> None:
    vector = fixture("easypost-webhook-vector.json")["webhooks"]
    body = json.dumps(fixture("easypost-event-body.json"), separators=(",", ":")).encode()
    assert sign(vector["secret"], body) == vector["hmac_signature"]


async def test_api_key_is_required_as_basic_or_bearer(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    resp = await client.post("/v2/shipments", json=SHIPMENT)
    body = await resp.json()
    assert resp.status == 401 and set(body["error"]) == set(fixture("easypost-catch-error.json")["error"])
    resp = await client.post("/v2/shipments", json=SHIPMENT, headers={"Authorization": "Bearer EZTK_test"})
    assert resp.status == 201


async def test_shipment_rates_and_bought_label_have_easyposts_shapes(serve: Serve) -> None:
    app = make_app(SETTINGS)
    client = await serve(app)
    resp = await client.post("/v2/shipments", json=SHIPMENT, headers=BASIC)
    shipment = await resp.json()
    created = fixture("easypost-shipments-create.json")
    assert resp.status == 201 and set(created) <= set(shipment)
    assert shipment["id"].startswith("shp_") and shipment["object"] == "Shipment" and shipment["reference"] == "ful_001"
    for rate in shipment["rates"]:
        assert set(created["rates"][0]) <= set(rate) and isinstance(rate["rate"], str)
    assert set(created["parcel"]) <= set(shipment["parcel"]) and set(created["to_address"]) <= set(
        shipment["to_address"]
    )
    cheapest = min(shipment["rates"], key=lambda r: float(r["rate"]))
    resp = await client.post(
        f"/v2/shipments/{shipment['id']}/buy", json={"rate": {"id": cheapest["id"]}}, headers=BASIC
    )
    bought = await resp.json()
    ref = fixture("easypost-shipments-buy.json")
    assert resp.status == 200 and set(ref) <= set(bought)
    assert set(ref["postage_label"]) <= set(bought["postage_label"])
    assert set(ref["selected_rate"]) <= set(bought["selected_rate"]) and bought["selected_rate"]["id"] == cheapest["id"]
    assert set(ref["tracker"]) - {"fees"} <= set(bought["tracker"])
    assert bought["tracking_code"] == bought["tracker"]["tracking_code"]
    assert set(fixture("easypost-trackers-create.json")) <= set(bought["tracker"])


async def test_buying_twice_is_refused_and_a_second_label_for_the_same_reference_is_a_duplicate(serve: Serve) -> None:
    app = make_app(EasyPostSettings(api_key="EZTK_test", auto_advance=False))
    state = app[STATE]
    client = await serve(app)

    async def create_and_buy() -> Any:
        s = await (await client.post("/v2/shipments", json=SHIPMENT, headers=BASIC)).json()
        return s, await client.post(
            f"/v2/shipments/{s['id']}/buy", json={"rate": {"id": s["rates"][0]["id"]}}, headers=BASIC
        )

    shipment, first = await create_and_buy()
    assert first.status == 200 and state.duplicate_side_effects == 0
    again = await client.post(
        f"/v2/shipments/{shipment['id']}/buy", json={"rate": {"id": shipment["rates"][0]["id"]}}, headers=BASIC
    )
    assert again.status == 422 and (await again.json())["error"]["code"] == "SHIPMENT.POSTAGE.EXISTS"
    assert state.refused_duplicates == 1 and state.duplicate_side_effects == 0
    _, other = await create_and_buy()  # a second label for the same reference (a retried fulfilment): paid twice
    assert other.status == 200 and state.duplicate_side_effects == 1


async def test_tracker_updates_are_signed_events_in_status_order(serve: Serve, receiver: Receiver) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    state.sender.set_target(receiver.url)
    resp = await client.post(
        "/v2/trackers", json={"tracker": {"tracking_code": "EZ4000000004", "carrier": "UPS"}}, headers=BASIC
    )
    tracker = await resp.json()
    again = await (
        await client.post(
            "/v2/trackers", json={"tracker": {"tracking_code": "EZ4000000004", "carrier": "UPS"}}, headers=BASIC
        )
    ).json()
    assert again["id"] == tracker["id"]  # de-duplicated on (tracking_code, carrier)
    assert await state.settle(5)
    events = receiver.json()
    assert [e["result"]["status"] for e in events] == ["in_transit", "out_for_delivery", "delivered"]
    assert [e["previous_attributes"]["status"] for e in events] == ["pre_transit", "in_transit", "out_for_delivery"]
    for hit, event in zip(receiver.hits, events, strict=True):
        assert reference_verify("sécret", hit.body, hit.headers["X-Hmac-Signature"])
        assert set(fixture("easypost-event-body.json")) <= set(event) and event["description"] == "tracker.updated"
        assert set(fixture("easypost-event-body.json")["result"]["tracking_details"][0]) <= set(
            event["result"]["tracking_details"][-1]
        )
    listed = await (await client.get("/v2/trackers", headers=BASIC)).json()
    assert listed["has_more"] is False and [t["status"] for t in listed["trackers"]] == ["delivered"]
