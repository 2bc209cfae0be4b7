"""Shopify batched inventory pushes: ``push_inventory_many`` resolves inventory items with one search per
chunk and sets up to 250 quantities per ``inventorySetQuantities`` (respx, and the simulated store).

Shapes follow shopify.dev/docs/api/admin-graphql/2026-07 (``productVariants``, ``inventorySetQuantities``
with ``userErrors { code field message }`` whose ``field`` is ``["input", "quantities", "<i>", ...]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from connectors.shopify import ShopifyConnector, ShopifySettings
from hub.errors import FatalError, RetriableError
from hub.http import RetryPolicy, client_for
from hub.plugins import RemoteResult
from sandbox.shopify.app import ShopifyStore

URL = "https://test-shop.myshopify.com/admin/api/2026-07/graphql.json"
COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}
_TERM = re.compile(r'sku:"((?:[^"\\]|\\.)*)"')


@pytest.fixture
async def conn() -> AsyncIterator[ShopifyConnector]:
    settings = ShopifySettings(
        shop_domain="test-shop.myshopify.com",
        access_token="shpat_test_token",
        client_secret="shpss_secret",
        location_map={"wh-east": "655441491"},
    )
    conn = ShopifyConnector("shop-us", settings)
    conn.http = client_for(conn, transport=httpx.AsyncHTTPTransport(), retry=RetryPolicy(attempts=1))
    async with conn.http:
        yield conn


def item_of(sku: str) -> str:
    return f"gid://shopify/InventoryItem/{sum(map(ord, sku)) * 1000 + len(sku)}"


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": {"cost": COST}})


Answer = Callable[[dict[str, Any]], httpx.Response]


class Shop:
    """A small Shopify: variants for ``known`` SKUs, ``inventorySetQuantities`` answered by ``mutations``
    in turn (then OK). Records each operation and each mutation's quantities."""

    def __init__(self, known: set[str], mutations: list[httpx.Response | Answer] | None = None) -> None:
        self.known = known
        self.mutations = list(mutations or [])
        self.ops: list[str] = []
        self.searches: list[list[str]] = []
        self.sent: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        op = doc["query"].strip().split("(", 1)[0].split()[-1]
        self.ops.append(op)
        variables = doc["variables"]
        if op in ("variantBySku", "variantsBySkus"):
            wanted = _TERM.findall(variables["query"])
            self.searches.append(wanted)
            nodes = [
                {"id": f"gid://shopify/ProductVariant/{i}", "sku": s, "inventoryItem": {"id": item_of(s)}}
                for i, s in enumerate(wanted)
                if s in self.known
            ]
            return ok({"productVariants": {"nodes": nodes, "pageInfo": {"hasNextPage": False}}})
        assert op == "inventorySetQuantities"
        self.sent.append(variables["input"]["quantities"])
        if self.mutations:
            answer = self.mutations.pop(0)
            return answer if isinstance(answer, httpx.Response) else answer(variables)
        group = {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{len(self.sent)}",
            "reason": "correction",
            "changes": [],
        }
        return ok({"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": []}})


def refused(*errors: dict[str, Any]) -> httpx.Response:
    return ok({"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": list(errors)}})


def skus(n: int) -> list[str]:
    return [f"SKU-{i:03d}" for i in range(n)]


@respx.mock
async def test_one_mutation_carries_every_quantity_and_items_are_searched_together_once(
    conn: ShopifyConnector,
) -> None:
    wanted = skus(30)
    shop = Shop(set(wanted))
    respx.post(URL).mock(side_effect=shop)
    quantities = {s: i for i, s in enumerate(wanted)}
    out = await conn.push_inventory_many(quantities, "wh-east")
    assert shop.ops == ["variantsBySkus", "inventorySetQuantities"]
    assert shop.searches == [wanted]
    assert shop.sent[0] == [
        {
            "inventoryItemId": item_of(s),
            "locationId": "gid://shopify/Location/655441491",
            "quantity": q,
            "changeFromQuantity": None,
        }
        for s, q in quantities.items()
    ]
    assert list(out) == wanted
    for s, q in quantities.items():
        r = out[s]
        assert isinstance(r, RemoteResult)
        assert r.external_id == "gid://shopify/InventoryAdjustmentGroup/1"
        assert r.detail == {"sku": s, "location": "wh-east", "quantity": q}
    # the inventory items are cached: the next push is the mutation alone
    await conn.push_inventory_many({s: 1 for s in wanted})
    assert shop.ops == ["variantsBySkus", "inventorySetQuantities", "inventorySetQuantities"]


@respx.mock
async def test_300_skus_take_two_mutations_of_at_most_250(conn: ShopifyConnector) -> None:
    wanted = skus(300)
    shop = Shop(set(wanted))
    respx.post(URL).mock(side_effect=shop)
    out = await conn.push_inventory_many(dict.fromkeys(wanted, 5))
    assert shop.ops.count("inventorySetQuantities") == 2
    assert [len(q) for q in shop.sent] == [250, 50]
    assert shop.ops.count("variantsBySkus") == 6  # 50 SKUs per search
    assert all(isinstance(r, RemoteResult) for r in out.values()) and len(out) == 300


@respx.mock
async def test_a_user_error_on_one_quantity_fails_that_sku_only_and_the_others_are_sent_again(
    conn: ShopifyConnector,
) -> None:
    a, b, c = skus(3)
    bad = refused(
        {
            "code": "INVALID_INVENTORY_ITEM",
            "field": ["input", "quantities", "1", "inventoryItemId"],
            "message": "The specified inventory item could not be found.",
        }
    )
    shop = Shop({a, b, c}, [bad])
    respx.post(URL).mock(side_effect=shop)
    out = await conn.push_inventory_many({a: 1, b: 2, c: 3})
    assert isinstance(out[a], RemoteResult) and isinstance(out[c], RemoteResult)
    err = out[b]
    assert isinstance(err, FatalError)
    assert f"SKU {b!r}" in err.detail
    assert "input.quantities.1.inventoryItemId: The specified inventory item could not be found." in err.detail
    # Shopify applied none of the refused call: the others went again, without the refused SKU
    assert [[q["quantity"] for q in sent] for sent in shop.sent] == [[1, 2, 3], [1, 3]]
    # an unknown inventory item is forgotten, so the next push of the SKU looks it up again
    await conn.push_inventory_many({b: 2})
    assert shop.searches[-1] == [b]


@respx.mock
async def test_a_user_error_of_the_whole_input_fails_every_sku_of_the_call(conn: ShopifyConnector) -> None:
    wanted = skus(3)
    bad = refused(
        {"code": "INVALID_REASON", "field": ["input", "reason"], "message": "The specified reason is invalid."}
    )
    shop = Shop(set(wanted), [bad])
    respx.post(URL).mock(side_effect=shop)
    out = await conn.push_inventory_many(dict.fromkeys(wanted, 4))
    assert len(shop.sent) == 1
    for s in wanted:
        err = out[s]
        assert isinstance(err, FatalError) and "input.reason: The specified reason is invalid." in err.detail


@respx.mock
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503),
        httpx.Response(
            200,
            json={
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": 10,
                        "actualQueryCost": None,
                        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 0, "restoreRate": 100.0},
                    }
                },
            },
        ),
    ],
    ids=["503", "throttled"],
)
async def test_a_failed_call_is_a_retriable_error_of_every_sku_each_holding_its_own_quantity(
    conn: ShopifyConnector, answer: httpx.Response
) -> None:
    wanted = skus(4)
    shop = Shop(set(wanted), [answer])
    respx.post(URL).mock(side_effect=shop)
    out = await conn.push_inventory_many({s: i for i, s in enumerate(wanted)})
    assert len(shop.sent) == 1  # not sent again by the connector: the sync engine retries the jobs
    for i, s in enumerate(wanted):
        err = out[s]
        assert isinstance(err, RetriableError)
        assert err.request is not None and err.request["sku"] == s
        assert err.request["quantity"]["quantity"] == i and err.request["quantities_in_call"] == 4
        assert "shpat_test_token" not in json.dumps(err.request)


@respx.mock
async def test_an_unknown_sku_fails_alone_and_is_not_sent(conn: ShopifyConnector) -> None:
    a, b, c = skus(3)
    shop = Shop({a, c, f"{b}-2"})
    respx.post(URL).mock(side_effect=shop)
    out = await conn.push_inventory_many({a: 1, b: 2, c: 3})
    err = out[b]
    assert isinstance(err, FatalError) and f"Shopify has no variant with SKU {b!r}" in err.detail
    assert isinstance(out[a], RemoteResult) and isinstance(out[c], RemoteResult)
    assert shop.ops == ["variantsBySkus", "inventorySetQuantities"]
    assert [q["inventoryItemId"] for q in shop.sent[0]] == [item_of(a), item_of(c)]


@respx.mock
async def test_a_full_search_page_asks_for_the_missing_sku_alone(conn: ShopifyConnector) -> None:
    a, b = skus(2)
    page = ok(
        {
            "productVariants": {
                "nodes": [{"id": "v1", "sku": a, "inventoryItem": {"id": item_of(a)}}],
                "pageInfo": {"hasNextPage": True},
            }
        }
    )
    alone = ok({"productVariants": {"nodes": [{"id": "v2", "sku": b, "inventoryItem": {"id": item_of(b)}}]}})
    group = {"id": "gid://shopify/InventoryAdjustmentGroup/7", "reason": "correction", "changes": []}
    set_ok = ok({"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": []}})
    route = respx.post(URL).mock(side_effect=[page, alone, set_ok])
    out = await conn.push_inventory_many({a: 1, b: 2})
    assert all(isinstance(r, RemoteResult) for r in out.values())
    assert json.loads(route.calls[1].request.content)["variables"] == {"query": f'sku:"{b}"'}
    sent = json.loads(route.calls[2].request.content)["variables"]["input"]["quantities"]
    assert [q["inventoryItemId"] for q in sent] == [item_of(a), item_of(b)]


@respx.mock
async def test_a_throttled_search_fails_its_skus_and_sends_nothing(conn: ShopifyConnector) -> None:
    throttled = httpx.Response(
        200, json={"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}], "extensions": {}}
    )
    route = respx.post(URL).mock(return_value=throttled)
    out = await conn.push_inventory_many(dict.fromkeys(skus(3), 1))
    assert route.call_count == 1
    assert all(isinstance(r, RetriableError) for r in out.values())


async def test_an_unmapped_location_fails_every_sku_without_a_call(conn: ShopifyConnector) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL)
        out = await conn.push_inventory_many(dict.fromkeys(skus(2), 1), "store-9")
        assert route.call_count == 0
    for r in out.values():
        assert isinstance(r, FatalError) and "hub location 'store-9' is not in the location_map" in r.detail


# ------------------------------------------------------------------------------- the simulated store


async def test_the_simulated_store_takes_many_quantities_in_one_mutation(
    shop: tuple[ShopifyConnector, ShopifyStore],
) -> None:
    conn, store = shop
    known = [f"SB-{i:04d}" for i in range(1, 11)]
    quantities = {s: 40 + i for i, s in enumerate(known)}
    out = await conn.push_inventory_many({**quantities, "NOT-IN-SHOPIFY": 3}, "wh-1")
    assert isinstance(out["NOT-IN-SHOPIFY"], FatalError)
    assert all(isinstance(out[s], RemoteResult) for s in known)
    assert {s: store.available(s) for s in known} == quantities
    calls = [c.fields for c in store.recorder.calls if c.fields.get("fields")]
    mutations = [f for f in calls if f["fields"] == ["inventorySetQuantities"]]
    searches = [f for f in calls if f["fields"] == ["productVariants"]]
    assert len(mutations) == 1 and len(mutations[0]["quantities"]) == len(known)
    assert len(searches) == 1
