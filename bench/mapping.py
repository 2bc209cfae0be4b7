"""Mapping speed: `python -m bench.mapping` maps Shopify's example order N times and prints
CPU time per order for the mapping alone and with pydantic validation (best of 5 rounds)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson

from hub.mapping import MappingSet
from hub.model import Order, new_id

FIXTURE = Path(__file__).parents[1] / "tests" / "connectors" / "shopify" / "fixtures" / "orders_create.json"


def main(rounds: int = 5, n: int = 200) -> dict[str, float]:
    ms = MappingSet.for_connector("shopify")
    payload = orjson.loads(FIXTURE.read_bytes())
    for _ in range(50):
        ms.build("order", payload, Order, extra={"id": new_id("ord"), "connection": "c"})
    best_map = best_build = 1.0
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            ms.map("order", payload)
        best_map = min(best_map, (time.process_time() - start) / n)
        start = time.process_time()
        for _ in range(n):
            ms.build("order", payload, Order, extra={"id": new_id("ord"), "connection": "c"})
        best_build = min(best_build, (time.process_time() - start) / n)
    return {"map_us": round(best_map * 1e6, 1), "map_and_validate_us": round(best_build * 1e6, 1)}


if __name__ == "__main__":
    print(json.dumps(main()))
