"""Shopify returns webhooks: returns/request and returns/approve become ReturnRequested, returns/decline is
ignored, a return line without a SKU is refused with a message naming the line item.

Fixtures: tests/connectors/shopify/fixtures/returns_*.json (Shopify's returns/* webhook payload shape; see
the README there for the sources and for the one field, ``line_item.sku``, that no source confirms).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.errors import AuthError
from hub.model import ReturnStatus
from hub.plugins import Ignored, ReturnRequested
from tests.connectors.shopify.test_shopify_inbound import FIXTURES, body_of, connector, headers, sign


def receive(body: bytes, topic: str) -> list[Any]:
    c = connector()
    h = headers(body, topic)
    c.verify_webhook(h, body)
    return c.parse_webhook(c.webhook_event(h, body), h, body)


def test_a_signed_returns_request_is_accepted_and_a_wrong_signature_refused() -> None:
    body = body_of("returns_request")
    connector().verify_webhook(headers(body, "returns/request"), body)
    bad = {**headers(body, "returns/request"), "X-Shopify-Hmac-Sha256": sign(body, "another-secret")}
    with pytest.raises(AuthError, match="signature does not match"):
        connector().verify_webhook(bad, body)


def test_a_returns_request_is_keyed_to_its_order() -> None:
    body = body_of("returns_request")
    event = connector().webhook_event(headers(body, "returns/request"), body)
    assert event.object_key == "order:450789469"
    assert event.source_ts == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_a_returns_request_becomes_a_requested_return_with_its_lines() -> None:
    (msg,) = receive(body_of("returns_request"), "returns/request")
    assert isinstance(msg, ReturnRequested)
    assert msg.external_order_id == "450789469"
    ret = msg.ret
    assert (ret.external_id, ret.order_id, ret.status) == ("945000954", "450789469", ReturnStatus.REQUESTED)
    assert [(ln.sku, ln.quantity, ln.reason) for ln in ret.lines] == [
        ("IPOD2008GREEN", 1, "defective"),
        ("IPOD2008RED", 1, "unwanted"),
    ]
    assert ret.requested_at == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # X-Shopify-Triggered-At
    assert ret.id.startswith("ret_")


def test_a_returns_approve_becomes_an_approved_return() -> None:
    (msg,) = receive(body_of("returns_approve"), "returns/approve")
    assert isinstance(msg, ReturnRequested)
    assert (msg.ret.external_id, msg.ret.status) == ("945000954", ReturnStatus.APPROVED)
    assert len(msg.ret.lines) == 2


def test_a_returns_decline_is_ignored() -> None:
    (msg,) = receive(body_of("returns_decline"), "returns/decline")
    assert isinstance(msg, Ignored)
    assert "returns/decline" in msg.reason


def test_a_return_line_in_the_published_shape_carries_the_line_item_id_for_the_hub_to_resolve() -> None:
    body = (FIXTURES / "invalid" / "returns_request_as_documented.json").read_bytes()
    (msg,) = receive(body, "returns/request")
    assert isinstance(msg, ReturnRequested)
    assert next((ln.sku, ln.external_line_id) for ln in msg.ret.lines) == ("", "466157049")
