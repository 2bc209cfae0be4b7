"""``returns-wave``: orders are delivered, then a wave of returns comes in through the API.

Stock is a little short, so some orders wait as backorders. After delivery, returns are requested
(``POST /api/v1/returns``), received with a condition per line (``/receive``: new and opened units are
restocked, damaged and defective ones are not), and refunded (``/refund``). Restocked units re-allocate the
waiting backorders; each refund goes back to Shopify and becomes a credit note in Odoo.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, ClassVar

from sandbox.scenarios._base import SKUS, STORE, THREE_PL, Driver, Scenario, SimSetup, Stock

CONDITIONS = ("new", "new", "opened", "damaged", "defective")
REASONS = ("changed_mind", "defective", "wrong_item", "damaged")


class ReturnsWave(Scenario):
    """N orders delivered, then returns for about half of them."""

    name: ClassVar[str] = "returns-wave"
    summary: ClassVar[str] = "after delivery, many returns: received with conditions, restocked, refunded, credited"
    default_orders: ClassVar[int] = 100
    rate: ClassVar[float] = 50.0
    share: ClassVar[float] = 0.5

    def setup(self, orders: int) -> SimSetup:
        return SimSetup(shipbob={"pick_pack_seconds": 0.2, "delivery_seconds": 0.3})

    def stock(self, orders: int) -> Stock:
        # each order is one line of one unit: stock covers about 85 % of them
        per_sku = max(2, orders * 85 // 100 // len(SKUS))
        return {
            sku: {THREE_PL[0]: per_sku // 2, THREE_PL[1]: per_sku // 4, STORE: per_sku - per_sku // 2 - per_sku // 4}
            for sku in SKUS
        }

    async def drive(self, run: Driver, orders: int) -> None:
        rng = random.Random(31)

        def place(i: int) -> None:
            run.place_shopify([(SKUS[i % len(SKUS)], 1)])

        await run.pace(orders, self.rate, place, "placing orders")
        await run.settle("shipping and delivering")
        waiting_before = int(await run.scalar("SELECT count(DISTINCT order_id) FROM backorders") or 0)
        delivered: list[str] = []
        cursor: str | None = None
        while True:
            page = await run.api(
                "GET", "/api/v1/orders?status=delivered&limit=200" + (f"&cursor={cursor}" if cursor else "")
            )
            delivered += [o["id"] for o in page["items"]]
            cursor = page.get("next")
            if not cursor:
                break
        chosen = rng.sample(delivered, int(len(delivered) * self.share))
        run.metric("delivered before returns", len(delivered))
        run.metric("backorders before returns", waiting_before)
        sem = asyncio.Semaphore(8)
        outcome: dict[str, int] = {}

        async def one(order_id: str) -> None:
            async with sem:
                order = await run.api("GET", f"/api/v1/orders/{order_id}")
                lines = [
                    {"sku": ln["sku"], "quantity": ln["quantity"], "reason": rng.choice(REASONS)}
                    for ln in order["lines"]
                ]
                ret = await run.api("POST", "/api/v1/returns", {"order_id": order_id, "lines": lines})
                if ret["status"] == "requested":
                    ret = await run.api("POST", f"/api/v1/returns/{ret['id']}/approve", {"reason": "sandbox ops"})
                if ret["status"] != "approved":
                    outcome[ret["status"]] = outcome.get(ret["status"], 0) + 1
                    return
                received: dict[str, Any] = {
                    "lines": [{"sku": ln["sku"], "condition": rng.choice(CONDITIONS)} for ln in lines]
                }
                ret = await run.api("POST", f"/api/v1/returns/{ret['id']}/receive", received)
                if ret.get("flags"):
                    await run.api("POST", f"/api/v1/returns/{ret['id']}/approve", {"reason": "sandbox ops: checked"})
                await run.api("POST", f"/api/v1/returns/{ret['id']}/refund", {})
                outcome["refunded"] = outcome.get("refunded", 0) + 1

        await asyncio.gather(*(one(oid) for oid in chosen))
        run.metric("returns refunded", outcome.get("refunded", 0))
        for k, v in sorted(outcome.items()):
            if k != "refunded":
                run.note(f"{v} returns ended {k} (policy)")
        await run.settle("restocking, re-allocating, refunding")
        waiting_after = int(await run.scalar("SELECT count(DISTINCT order_id) FROM backorders") or 0)
        run.metric("backorders after restock", waiting_after)
