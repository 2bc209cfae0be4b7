"""Fake Shopify GraphQL Admin API and fake ShipBob Orders API for the benchmarks: fast, counting.

    python -m bench._fake --port P

- ``POST /shopify/admin/api/{version}/graphql.json``: ``productVariants`` (one variant per SKU searched,
  ``sku:"A" OR sku:"B"`` too, inventory item ``gid://shopify/InventoryItem/{n}``) and ``inventorySetQuantities``
  (one call per mutation, whatever the number of quantities; remembers the last quantity per SKU); other
  operations answer an empty ``data``. Shapes as in shopify.dev/docs/api/admin-graphql/2026-07.
- ``POST /shipbob/order`` (``reference_id`` = the hub's fulfilment id): 201 with a ShipBob order, or
  ``422`` ProblemDetails while ``mode`` is ``reject``; a second create for the same ``reference_id`` is
  counted as a duplicate (and answered 422 "existing ReferenceId", as ShipBob does).
  ``GET /shipbob/order?ReferenceIds=..`` finds it.
- ``GET /_stats``: call counts, last pushed quantity per SKU, ShipBob orders and duplicates.
  ``POST /_mode`` ``{"shipbob": "ok"|"reject"}``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import orjson
from aiohttp import web

_SKU = re.compile(r'sku:"((?:[^"\\]|\\.)*)"')


class State:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.items: dict[str, str] = {}  # sku -> item gid
        self.item_sku: dict[str, str] = {}
        self.quantities: dict[str, int] = {}
        self.pushes: dict[str, int] = {}
        self.shipbob_mode = "ok"
        self.shipbob_orders: dict[str, int] = {}  # reference_id -> ShipBob order id
        self.shipbob_creates: dict[str, int] = {}  # reference_id -> successful creates (duplicates when > 1)
        self.shipbob_rejected = 0

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def make_app() -> web.Application:
    st = State()
    cost = {
        "requestedQueryCost": 10,
        "actualQueryCost": 10,
        "throttleStatus": {"maximumAvailable": 20000.0, "currentlyAvailable": 19990.0, "restoreRate": 1000.0},
    }

    async def graphql(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        query: str = doc.get("query") or ""
        variables: dict[str, Any] = doc.get("variables") or {}
        if "productVariants" in query:
            st.count("productVariants")
            nodes: list[dict[str, Any]] = []
            for m in _SKU.finditer(variables.get("query") or ""):  # sku:"A" OR sku:"B" ...
                sku = m.group(1).replace('\\"', '"').replace("\\\\", "\\")
                if sku not in st.items:
                    n = 900_000 + len(st.items)
                    st.items[sku] = f"gid://shopify/InventoryItem/{n}"
                    st.item_sku[st.items[sku]] = sku
                node = {"id": f"gid://shopify/ProductVariant/{st.items[sku][-6:]}", "sku": sku}
                node["inventoryItem"] = {"id": st.items[sku]}
                nodes.append(node)
            page = {"nodes": nodes, "pageInfo": {"hasNextPage": False}}
            return _json({"data": {"productVariants": page}, "extensions": {"cost": cost}})
        if "inventorySetQuantities" in query:
            st.count("inventorySetQuantities")
            changes = []
            for q in (variables.get("input") or {}).get("quantities") or []:
                sku = st.item_sku.get(q.get("inventoryItemId"), "?")
                st.quantities[sku] = int(q["quantity"])
                st.pushes[sku] = st.pushes.get(sku, 0) + 1
                changes.append({"name": "available", "delta": 0, "quantityAfterChange": int(q["quantity"])})
            group: dict[str, Any] = {
                "id": f"gid://shopify/InventoryAdjustmentGroup/{sum(st.pushes.values())}",
                "reason": "correction",
                "changes": changes,
            }
            result = {"inventoryAdjustmentGroup": group, "userErrors": []}
            return _json({"data": {"inventorySetQuantities": result}, "extensions": {"cost": cost}})
        st.count("other")
        return _json({"data": {}, "extensions": {"cost": cost}})

    async def shipbob_create(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        ref = str(body.get("reference_id"))
        st.count("shipbob_create")
        if st.shipbob_mode == "reject":
            st.shipbob_rejected += 1
            problem = {
                "type": "https://developer.shipbob.com/problem/validation",
                "title": "One or more validation errors occurred.",
                "status": 422,
                "errors": {"Recipient.Address.Country": ["The bench asked for a rejection."]},
            }
            return _json(problem, 422)
        if ref in st.shipbob_orders:
            st.shipbob_creates[ref] += 1
            return _json({"title": "Order with existing ReferenceId", "status": 422}, 422)
        st.shipbob_orders[ref] = 100_000_000 + len(st.shipbob_orders)
        st.shipbob_creates[ref] = 1
        return _json({"id": st.shipbob_orders[ref], "reference_id": ref, "status": "Processing"}, 201)

    async def shipbob_find(request: web.Request) -> web.Response:
        ref = request.query.get("ReferenceIds", "")
        st.count("shipbob_find")
        if ref in st.shipbob_orders:
            return _json([{"id": st.shipbob_orders[ref], "reference_id": ref, "status": "Processing"}])
        return _json([])

    async def stats(request: web.Request) -> web.Response:
        return _json(
            {
                "calls": st.calls,
                "quantities": st.quantities,
                "pushes": st.pushes,
                "shipbob_orders": len(st.shipbob_orders),
                "shipbob_duplicate_creates": sum(n - 1 for n in st.shipbob_creates.values() if n > 1),
                "shipbob_rejected": st.shipbob_rejected,
            }
        )

    async def mode(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        st.shipbob_mode = str(doc.get("shipbob", st.shipbob_mode))
        return _json({"shipbob": st.shipbob_mode})

    app = web.Application()
    app.router.add_post("/shopify/admin/api/{version}/graphql.json", graphql)
    app.router.add_post("/shipbob/order", shipbob_create)
    app.router.add_get("/shipbob/order", shipbob_find)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_mode", mode)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
