"""``3pl-outage``: ShipBob answers 503 to everything for a while (and holds its webhooks back).

Fulfilment requests made during the outage are retried with backoff; a backlog builds and drains by itself
when ShipBob recovers, each order created once at ShipBob (the report's duplicate side effects stay 0).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import ClassVar

from sandbox.scenarios._base import SKUS, Driver, Scenario, SimSetup


class ThreePlOutage(Scenario):
    """N orders at about 40 a second; ShipBob is down from the first order for a few seconds."""

    name: ClassVar[str] = "3pl-outage"
    summary: ClassVar[str] = "ShipBob answers 503 for a window; the backlog drains by itself when it recovers"
    default_orders: ClassVar[int] = 100
    rate: ClassVar[float] = 40.0

    def outage_seconds(self, orders: int) -> float:
        """How long ShipBob is down: most of the time the orders take to arrive, at least 3 s."""
        return max(3.0, min(20.0, orders / self.rate * 0.7))

    def setup(self, orders: int) -> SimSetup:
        return SimSetup(shipbob={"pick_pack_seconds": 0.3, "delivery_seconds": 0.4})

    async def drive(self, run: Driver, orders: int) -> None:
        rng = random.Random(23)
        down = self.outage_seconds(orders)
        # down before the first order: with 16 orders (0.4 s at 40/s) an outage that began half a second
        # later could find every request already made, and nothing to back up
        run.systems.shipbob.state.faults.update({"outage_in": 0.0, "outage_for": down})
        sql = (
            "SELECT count(*) FROM sync_jobs WHERE connection = 'shipbob' "
            "AND operation = 'submit_fulfillment' AND status IN ('pending', 'running')"
        )
        peak = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, int(await run.scalar(sql) or 0))
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())

        def place(i: int) -> None:
            run.place_shopify([(sku, rng.randint(1, 2)) for sku in rng.sample(SKUS, rng.randint(1, 2))])

        await run.pace(orders, self.rate, place, "placing orders (ShipBob is down)")
        end = run.systems.shipbob.state.faults.outage_end or time.time()

        async def recovered() -> bool:
            return time.time() >= end

        await run.wait_for("waiting for ShipBob to recover", recovered, max_wait=down + 5)
        recovered_at = time.monotonic()

        async def drained() -> bool:
            return int(await run.scalar(sql) or 0) == 0

        await run.wait_for("backlog draining", drained, max_wait=120)
        sampling = False
        await sampler
        outage_calls = sum(1 for c in run.systems.shipbob.state.recorder.calls if c.fault == "outage")
        run.metric("outage seconds", round(down, 1))
        run.metric("calls refused (503)", outage_calls)
        run.metric("backlog peak (submits)", peak)
        run.metric("drained after recovery s", round(time.monotonic() - recovered_at, 1))
        run.note(
            f"ShipBob was down for {down:.1f} s: {outage_calls} calls got 503, up to {peak} fulfilment "
            "requests waited; each was created once when it came back"
        )
