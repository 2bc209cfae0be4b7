from __future__ import annotations

import pytest
from pydantic import SecretStr

from hub.plugins import ChannelConnector, ConnectorSettings


class DemoSettings(ConnectorSettings):
    shop_domain: str = "demo.myshopify.com"
    access_token: SecretStr = SecretStr("shpat_0123456789abcdef")


class DemoConnector(ChannelConnector):
    """A Shopify-like connector: token in X-Shopify-Access-Token (FORMATS.md 1.4)."""

    name = "demo"
    Settings = DemoSettings
    default_base_url = "https://demo.myshopify.com/admin/api/2026-07"
    rate_per_second = 50.0
    max_concurrency = 64

    def auth_headers(self) -> dict[str, str]:
        assert isinstance(self.settings, DemoSettings)
        return {"X-Shopify-Access-Token": self.settings.access_token.get_secret_value()}


@pytest.fixture
def demo() -> DemoConnector:
    """A connection ``shop-eu`` of the demo connector."""
    return DemoConnector("shop-eu", DemoSettings())
