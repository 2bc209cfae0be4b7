"""``flash-sale``: thousands of orders on three SKUs in a few seconds, with less stock than demand.

The hub must reserve every unit exactly once across three locations: the first orders are allocated, the
rest backordered, and no unit is oversold. When the sale is over a receipt arrives at the store and the
oldest backorders are allocated from it, in order.
"""

from __future__ import annotations

import random
from typing import ClassVar

from sandbox.scenarios._base import SKUS, STORE, THREE_PL, Driver, Scenario, SimSetup, Stock

SALE_SKUS = SKUS[:3]


class FlashSale(Scenario):
    """N orders at up to 600 a second on three SKUs; stock covers about 60 % of the demand."""

    name: ClassVar[str] = "flash-sale"
    summary: ClassVar[str] = (
        "thousands of orders on few SKUs in seconds; less stock than demand: backorders, no oversell"
    )
    default_orders: ClassVar[int] = 2000
    rate: ClassVar[float] = 600.0

    def setup(self, orders: int) -> SimSetup:
        return SimSetup(shipbob={"pick_pack_seconds": 0.5, "delivery_seconds": 0.5})

    def demand(self, orders: int) -> int:
        """Units the sale asks for (every order is 1 or 2 units of one SKU; about 1.5 on average)."""
        return orders * 3 // 2

    def stock(self, orders: int) -> Stock:
        per_sku = max(3, self.demand(orders) * 6 // 10 // len(SALE_SKUS))
        return {
            sku: {THREE_PL[0]: per_sku // 2, THREE_PL[1]: per_sku // 3, STORE: per_sku - per_sku // 2 - per_sku // 3}
            for sku in SALE_SKUS
        }

    async def drive(self, run: Driver, orders: int) -> None:
        rng = random.Random(11)
        demand: dict[str, int] = {}

        def place(i: int) -> None:
            sku = SALE_SKUS[rng.randrange(len(SALE_SKUS))]
            qty = 1 if rng.random() < 0.5 else 2
            demand[sku] = demand.get(sku, 0) + qty
            run.place_shopify([(sku, qty)])

        await run.pace(orders, self.rate, place, "flash sale: placing orders")
        stock = self.stock(orders)
        run.metric("units demanded", sum(demand.values()))
        run.metric("units in stock", sum(sum(v.values()) for v in stock.values()))
        await run.settle("flash sale: allocating and shipping")
        backordered = int(await run.scalar("SELECT count(DISTINCT order_id) FROM backorders") or 0)
        run.metric("backordered after sale", backordered)
        # after the sale: a receipt at the store serves the oldest backorders first
        receipt = max(1, min(backordered, orders // 10))
        await run.api(
            "POST",
            "/api/v1/inventory/adjustments",
            {"sku": SALE_SKUS[0], "location": STORE, "delta": receipt, "reason": "receipt: restock after the sale"},
        )
        run.note(f"a receipt of {receipt} x {SALE_SKUS[0]} at {STORE} re-allocated the oldest backorders")
        run.metric("units received after sale", receipt)
