"""SSRF: partner webhook targets must be public http(s) addresses, checked at registration and at delivery."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import select
from webhook_helpers import MiniHub, Partner, emit, inventory

from hub import clock, events
from hub.errors import InputError
from hub.events._ssrf import address_problem
from hub.model import new_id
from hub.signing import new_secret
from hub.store import tables as t


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata service
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("0.0.0.0", "private"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused(addr: str, why: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) == why


@pytest.mark.parametrize("addr", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("https://10.0.0.5/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("ftp://example.com/hook", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com", "http or https"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("https:///hook", "no host"),
    ],
)
async def test_registration_refuses_unsafe_urls(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        await events.check_target(url, allow_private=False)


async def test_private_targets_can_be_allowed_but_not_other_schemes() -> None:
    await events.check_target("http://127.0.0.1:8080/hook", allow_private=True)
    with pytest.raises(InputError, match="http or https"):
        await events.check_target("file:///etc/passwd", allow_private=True)


async def _endpoint_row(hub: MiniHub, url: str) -> str:
    """An endpoint as if it had passed registration while its name resolved to a public address."""
    ts = clock.now()
    ep_id = new_id("whe")
    async with hub.store.begin() as conn:
        await conn.execute(
            t.webhook_endpoints.insert().values(
                id=ep_id, url=url, events=["*"], secret=new_secret(), status="active", created_at=ts, updated_at=ts
            )
        )
    return ep_id


@pytest.mark.postgres
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_delivery_refuses_a_target_that_now_resolves_to_loopback(
    make_hub: Any, partner: Partner, host: str
) -> None:
    """DNS rebinding: the address is checked again when the delivery connects."""
    hub = make_hub(allow_private_targets=False)
    url = partner.url().replace("127.0.0.1", host)
    await _endpoint_row(hub, url)
    await emit(hub, "inventory.changed", inventory(), object_id="A")

    assert await events.run_once(hub) == 1
    assert partner.received == []
    async with hub.store.connect() as conn:
        [attempt] = (await conn.execute(select(t.delivery_attempts))).all()
        [delivery] = (await conn.execute(select(t.webhook_deliveries))).all()
    assert attempt.status_code is None
    assert "loopback" in attempt.error and "refused" in attempt.error
    assert delivery.status == "pending", "refused attempts are retried (the name may resolve elsewhere later)"
