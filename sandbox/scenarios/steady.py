"""``steady``: orders at a moderate rate from Shopify (webhooks) and Amazon (polled), with mild faults.

Faults: Shopify throttles some GraphQL calls, delivers some webhooks twice or out of order and a few as
garbage (signed, so they are kept and become visible sync failures); ShipBob and Odoo answer some calls
500/503, and ShipBob loses some replies after creating the order (the hub's retry must find it, not
create it again). Every retry is the hub's job; the report shows that nothing was done twice.
"""

from __future__ import annotations

import random
from typing import ClassVar

from sandbox.scenarios._base import SKUS, Driver, Scenario, SimSetup


class Steady(Scenario):
    """N orders at about 40 a second, mild faults."""

    name: ClassVar[str] = "steady"
    summary: ClassVar[str] = "orders at a moderate rate, mild faults (429s, duplicate/out-of-order/malformed webhooks)"
    default_orders: ClassVar[int] = 100
    rate: ClassVar[float] = 40.0

    def setup(self, orders: int) -> SimSetup:
        return SimSetup(
            shipbob={"pick_pack_seconds": 0.3, "delivery_seconds": 1.0},
            faults={
                "shopify": {
                    "rate_429": 0.05,
                    "webhook_duplicate": 0.05,
                    "webhook_out_of_order": 0.05,
                    # one or two garbage bodies per run (none below 50 orders: the hub retries a body that
                    # is not UTF-8 five times, about 30 s, before it becomes a visible failure)
                    "webhook_malformed": min(0.01, 2.0 / orders) if orders >= 50 else 0.0,
                },
                # ShipBob's and Odoo's 429s carry Retry-After (ShipBob: up to 30 s) that pauses the whole
                # connection, which would make the run long; their faults here are 5xx and lost replies
                "shipbob": {"rate_5xx": 0.03, "rate_lost_reply": 0.02},
                "odoo": {"rate_5xx": 0.03},
            },
        )

    async def drive(self, run: Driver, orders: int) -> None:
        rng = random.Random(7)
        amazon_every = 10  # one order in ten comes from Amazon (its getOrderItems quota is small)
        amazon_max = 25

        def place(i: int) -> None:
            lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(SKUS, rng.randint(1, 3))]
            if i % amazon_every == amazon_every - 1 and i // amazon_every < amazon_max:
                run.place_amazon(lines)
            else:
                run.place_shopify(lines)

        await run.pace(orders, self.rate, place, "placing orders")
