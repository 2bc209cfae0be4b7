"""``ChannelConnector.push_inventory_many`` by default: one ``push_inventory`` per SKU, each SKU's own outcome."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from hub.errors import FatalError, RetriableError
from hub.plugins import ChannelConnector, ConnectorSettings, RemoteResult


class OnePerCall(ChannelConnector):
    """Implements ``push_inventory`` only, as a third-party connector may."""

    name = "one-per-call"
    max_concurrency: ClassVar[int] = 2

    def __init__(self, failures: dict[str, Exception] | None = None) -> None:
        super().__init__("c1", ConnectorSettings())
        self.failures = failures or {}
        self.calls: list[tuple[str, int, str | None]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        self.calls.append((sku, quantity, location))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let the other pushes start
            if sku in self.failures:
                raise self.failures[sku]
            return RemoteResult(external_id=f"set-{sku}", detail={"quantity": quantity})
        finally:
            self.in_flight -= 1


async def test_each_sku_is_pushed_and_a_failing_one_does_not_fail_the_others() -> None:
    down = RetriableError("channel answered 503", connection="c1")
    unknown = FatalError("no such SKU", connection="c1")
    c = OnePerCall({"B": down, "D": unknown})
    out = await c.push_inventory_many({"A": 1, "B": 2, "C": 3, "D": 4, "E": 0}, "w1")
    assert list(out) == ["A", "B", "C", "D", "E"]
    assert out["B"] is down and out["D"] is unknown
    for sku, qty in (("A", 1), ("C", 3), ("E", 0)):
        r = out[sku]
        assert isinstance(r, RemoteResult) and r.external_id == f"set-{sku}" and r.detail == {"quantity": qty}
    assert sorted(c.calls) == [("A", 1, "w1"), ("B", 2, "w1"), ("C", 3, "w1"), ("D", 4, "w1"), ("E", 0, "w1")]


async def test_no_more_pushes_at_once_than_the_connector_allows() -> None:
    c = OnePerCall()
    out = await c.push_inventory_many({f"S{i}": i for i in range(10)})
    assert len(out) == 10 and all(isinstance(r, RemoteResult) for r in out.values())
    assert c.most_in_flight == 2


async def test_an_unexpected_error_is_the_outcome_of_its_sku_too() -> None:
    out = await OnePerCall({"X": ValueError("bug in the connector")}).push_inventory_many({"X": 1, "Y": 2})
    assert isinstance(out["X"], ValueError) and isinstance(out["Y"], RemoteResult)


async def test_nothing_to_push_makes_no_call() -> None:
    c = OnePerCall()
    assert await c.push_inventory_many({}) == {}
    assert c.calls == []
