"""Mapping speed: `python -m bench.mapping` maps Shopify's example order N times and prints CPU time
per order (best of 5 rounds) for the mapping alone (``map_us``), with pydantic validation
(``map_and_validate_us``) and for the connector's whole parse step of an ``orders/create`` webhook
(``parse_us``: JSON, mapping, validation and the OrderUpserted message, as the worker runs it)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from hub.mapping import MappingSet
from hub.model import Order, new_id

FIXTURE = Path(__file__).parents[1] / "tests" / "connectors" / "shopify" / "fixtures" / "orders_create.json"


def _best(rounds: int, n: int, step: Callable[[], object]) -> float:
    """The lowest CPU seconds per call of ``step`` over ``rounds`` rounds of ``n`` calls."""
    best = 1.0
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            step()
        best = min(best, (time.process_time() - start) / n)
    return best


def main(rounds: int = 5, n: int = 200) -> dict[str, float]:
    from connectors.shopify import ShopifyConnector, ShopifySettings
    from hub.plugins import InboundEvent

    ms = MappingSet.for_connector("shopify")
    body = FIXTURE.read_bytes()
    payload = orjson.loads(body)
    settings = ShopifySettings(shop_domain="bench.myshopify.com", access_token="t", client_secret="s")
    connector = ShopifyConnector("c", settings, mappings=ms)
    event = InboundEvent(event_id="bench", topic="orders/create")

    def build() -> Order:
        return ms.build("order", payload, Order, extra={"id": new_id("ord"), "connection": "c"})

    def parse() -> object:
        return connector.parse_webhook(event, {}, body)

    for _ in range(50):
        build()
        parse()
    return {
        "map_us": round(_best(rounds, n, lambda: ms.map("order", payload)) * 1e6, 1),
        "map_and_validate_us": round(_best(rounds, n, build) * 1e6, 1),
        "parse_us": round(_best(rounds, n, parse) * 1e6, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
