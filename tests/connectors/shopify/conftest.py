"""Fixtures shared by the Shopify connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.test_utils import TestServer

from connectors.shopify import ShopifyConnector, ShopifySettings
from hub.http import RetryPolicy, client_for
from sandbox.shopify.app import STATE, ShopifyStore, make_app


@pytest.fixture
async def shop() -> AsyncIterator[tuple[ShopifyConnector, ShopifyStore]]:
    """A Shopify connection to the simulated store (sandbox/shopify), served in-process."""
    app = make_app()
    async with TestServer(app) as server:
        store: ShopifyStore = app[STATE]
        settings = ShopifySettings(
            shop_domain=store.settings.shop_domain,
            access_token=store.settings.access_token,
            client_secret=store.settings.client_secret,
            base_url=str(server.make_url("")),
            location_map={"wh-1": "655441491"},
        )
        conn = ShopifyConnector("sbx", settings)
        conn.http = client_for(conn, transport=httpx.AsyncHTTPTransport(), retry=RetryPolicy(attempts=1))
        async with conn.http:
            yield conn, store
