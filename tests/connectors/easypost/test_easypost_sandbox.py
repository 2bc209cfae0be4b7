"""The EasyPost connector against the sandbox EasyPost simulator, over real HTTP (hub.http.client_for)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.easypost import EasyPostConnector, EasyPostSettings
from hub.http import client_for
from hub.model import Address
from hub.plugins import Parcel, TrackingUpdated
from sandbox.easypost.app import STATE, EasyPostState, make_app
from sandbox.easypost.app import EasyPostSettings as SimSettings
from sandbox.systems import Running, start

FROM = Address(name="Warehouse", line1="417 Montgomery Street", city="San Francisco", region="CA",
               postal_code="94104", country="US")  # fmt: skip
TO = Address(name="Ann Buyer", line1="179 N Harbor Dr", city="Redondo Beach", region="CA",
             postal_code="90277", country="US")  # fmt: skip


@pytest.fixture
async def sim() -> AsyncIterator[Running[EasyPostState]]:
    app = make_app(SimSettings(auto_advance=False))
    running = await start(app, app[STATE], "easypost")
    yield running
    await running.stop()


@pytest.fixture
async def conn(sim: Running[EasyPostState]) -> AsyncIterator[EasyPostConnector]:
    s = sim.state.settings
    c = EasyPostConnector(
        "easypost", EasyPostSettings(api_key=s.api_key, webhook_secret=s.webhook_secret, base_url=sim.url + "/v2")
    )
    c.http = client_for(c)
    yield c
    await c.http.aclose()


async def test_rates_label_and_tracker_webhook(sim: Running[EasyPostState], conn: EasyPostConnector) -> None:
    rates = await conn.rates(FROM, TO, Parcel(weight_grams=900))
    assert rates and rates == sorted(rates, key=lambda r: r.amount.amount)
    label = await conn.buy_label(FROM, TO, Parcel(weight_grams=900), reference="ful_1")
    assert label.tracking_number and label.label_url and label.cost == min(r.amount for r in rates)
    assert sim.state.duplicate_side_effects == 0

    tracker = await conn.track(label.tracking_number, label.carrier)
    assert tracker.external_id is not None
    sim.state.advance(tracker.external_id)
    held = sim.state.sender.held[-1]
    headers = held.sign(held.body)
    conn.verify_webhook(headers, held.body)
    [msg] = conn.parse_webhook(conn.webhook_event(headers, held.body), headers, held.body)
    assert isinstance(msg, TrackingUpdated) and msg.event.tracking_number == label.tracking_number
