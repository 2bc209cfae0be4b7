"""Fixtures of the Odoo connector tests: a fake Odoo (odoo_fake.py) behind respx."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

# make ``connectors`` resolve to the real package, not to the ``tests/connectors`` folder (see shipbob's conftest)
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
_cached = sys.modules.get("connectors")
if _cached is not None and getattr(_cached, "__file__", None) is None:
    for _name in [m for m in sys.modules if m == "connectors" or m.startswith("connectors.")]:
        del sys.modules[_name]

from odoo_fake import URL, FakeOdoo, make_connector, make_order  # noqa: E402

from connectors.odoo import OdooConnector  # noqa: E402
from hub.http import HubClient, RetryPolicy  # noqa: E402
from hub.model import Order  # noqa: E402

FAST_RETRY = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)


@pytest.fixture
def fake() -> FakeOdoo:
    return FakeOdoo()


@pytest.fixture
async def http(fake: FakeOdoo) -> AsyncIterator[httpx.AsyncClient]:
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.post(path__regex=r"^/json/2/[\w.]+/\w+$").mock(side_effect=lambda request: fake.json2(request))
        router.post("/jsonrpc").mock(side_effect=fake.jsonrpc)
        async with HubClient(connection="odoo-main", retry=FAST_RETRY) as client:
            yield client


@pytest.fixture
def odoo(http: httpx.AsyncClient) -> OdooConnector:
    """A JSON-2 (Odoo 19+) connection."""
    return make_connector(http)


@pytest.fixture
def odoo_rpc(http: httpx.AsyncClient) -> OdooConnector:
    """A JSON-RPC (Odoo 17-18) connection."""
    return make_connector(http, api="jsonrpc")


@pytest.fixture
def order() -> Order:
    return make_order()
