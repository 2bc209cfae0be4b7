import asyncio
from datetime import UTC, datetime, timedelta

from hub.model import Order, new_id
from hub.store import Store, outbox
from hub.store import orders as repo


def make_order(ext: str = "1001", qty: int = 1, updated: datetime | None = None, connection: str = "shop") -> Order:
    price = "10.00"
    total = f"{10 * qty}.00"
    m = lambda a: {"amount": a, "currency": "EUR"}  # noqa: E731
    return Order.model_validate(
        {
            "id": new_id("ord"),
            "connection": connection,
            "external_id": ext,
            "placed_at": datetime(2026, 1, 1, tzinfo=UTC),
            "source_updated_at": updated or datetime(2026, 1, 1, tzinfo=UTC),
            "currency": "EUR",
            "lines": [{"line_no": 1, "sku": "A", "quantity": qty, "unit_price": m(price)}],
            "totals": {"subtotal": m(total), "shipping": m("0"), "tax": m("0"), "discount": m("0"), "total": m(total)},
        }
    )


async def test_upsert_is_idempotent_by_connection_and_external_id(store: Store) -> None:
    async with store.begin() as c:
        first = await repo.upsert_order(c, make_order())
    async with store.begin() as c:
        again = await repo.upsert_order(c, make_order())
    assert first.created and again.outcome == "unchanged"
    assert again.order.id == first.order.id
    async with store.connect() as c:
        items, nxt = await repo.list_orders(c)
    assert len(items) == 1 and nxt is None


async def test_newer_update_wins_and_older_is_ignored(store: Store) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with store.begin() as c:
        created = await repo.upsert_order(c, make_order(qty=1, updated=t0))
        newer = await repo.upsert_order(c, make_order(qty=3, updated=t0 + timedelta(minutes=2)))
        older = await repo.upsert_order(c, make_order(qty=2, updated=t0 + timedelta(minutes=1)))
    assert newer.outcome == "updated" and older.outcome == "unchanged"
    async with store.connect() as c:
        got = await repo.get_order(c, created.order.id)
    assert got.lines[0].quantity == 3


async def test_same_external_id_on_two_connections_are_two_orders(store: Store) -> None:
    async with store.begin() as c:
        a = await repo.upsert_order(c, make_order(connection="shop-eu"))
        b = await repo.upsert_order(c, make_order(connection="shop-us"))
    assert a.created and b.created and a.order.id != b.order.id


async def test_concurrent_upserts_of_one_order_make_one_order(store: Store) -> None:
    async def one() -> str:
        async with store.begin() as c:
            return (await repo.upsert_order(c, make_order("race"))).order.id

    ids = await asyncio.gather(*(one() for _ in range(30)))
    assert len(set(ids)) == 1


async def test_list_orders_pages_with_cursor(store: Store) -> None:
    async with store.begin() as c:
        for i in range(7):
            await repo.upsert_order(c, make_order(str(i)))
    seen: list[str] = []
    cursor = None
    async with store.connect() as c:
        while True:
            items, cursor = await repo.list_orders(c, limit=3, cursor=cursor)
            seen += [o.external_id for o in items]
            if cursor is None:
                break
    assert seen == [str(i) for i in reversed(range(7))]


async def test_outbox_event_rolls_back_with_its_change(store: Store) -> None:
    o = make_order("rb")
    try:
        async with store.begin() as c:
            await repo.upsert_order(c, o)
            await outbox.emit(c, "order.created", o, object_id=o.id)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with store.connect() as c:
        assert await outbox.events_for(c, o.id) == []
        assert await repo.get_by_external(c, "shop", "rb") is None


async def test_models_are_stored_as_their_json_text_and_read_back_equal(store: Store) -> None:
    """Order documents and partner events are written as pydantic's JSON text (``document``), not
    through a dict: what is read back is the model's JSON form, Decimals as strings included."""
    o = make_order("doc", qty=3)
    async with store.begin() as c:
        res = await repo.upsert_order(c, o)
        await outbox.emit(c, "order.created", o, object_id=o.id)
        await outbox.emit(c, "inventory.changed", {"sku": "A", "available": 2}, object_id=o.id)
    async with store.connect() as c:
        created, changed = await outbox.events_for(c, o.id)
        stored = await repo.get_by_external(c, "shop", "doc")
    assert created.data == o.to_json()
    assert created.data["totals"]["total"] == {"amount": "30.00", "currency": "EUR"}
    assert changed.data == {"sku": "A", "available": 2}
    assert stored == res.order
