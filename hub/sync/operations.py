"""Outbound operations: what a sync job does, by its ``operation`` name.

Each is ``async def op(hub, job) -> dict`` (the result stored with the job). They read the
*current* state when they run (a retried or coalesced job never sends stale data) and
raise RetriableError/FatalError from the connector.

Some also have a batch form in ``BATCH_OPERATIONS`` (``async def op(hub, jobs) -> {job_id:
result or exception}``, the jobs of one connection), which the worker uses for the due jobs of a
connection: ``push_inventory`` (one channel call for many SKUs) and ``submit_fulfillment`` (one
load and one write for many requests, the calls concurrent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import FatalError, NotFound
from hub.model import FulfillmentRequest, Order, Refund, Shipment
from hub.plugins import ChannelConnector, ErpConnector, RemoteResult, WmsConnector
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import tables as t
from hub.store._any import one_of
from hub.store._combined import ArrayUpdate
from hub.store._pending import pending
from hub.sync.jobs import Inline

if TYPE_CHECKING:
    from hub.runtime import Hub

Operation = Callable[["Hub", Any], Awaitable[dict[str, Any]]]
OPERATIONS: dict[str, Operation] = {}


BatchOperation = Callable[["Hub", list[Any]], Awaitable[dict[str, "dict[str, Any] | Exception"]]]
BATCH_OPERATIONS: dict[str, BatchOperation] = {}


def batch_operation(name: str) -> Callable[[BatchOperation], BatchOperation]:
    def deco(fn: BatchOperation) -> BatchOperation:
        BATCH_OPERATIONS[name] = fn
        return fn

    return deco


def operation(name: str) -> Callable[[Operation], Operation]:
    def deco(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        return fn

    return deco


def _as(hub: Hub, job: Any, kind: type[Any]) -> Any:
    c = hub.connector(job.connection)
    if not isinstance(c, kind):
        raise FatalError(f"connection {job.connection} ({c.name}) cannot {job.operation}", connection=job.connection)
    return c


def _result(r: RemoteResult | None) -> dict[str, Any]:
    return {"external_id": r.external_id, **r.detail} if r else {}


async def _order(hub: Hub, order_id: str) -> Order:
    async with hub.store.connect() as conn:
        return await repo.get_order(conn, order_id)


@operation("push_inventory")
async def push_inventory(hub: Hub, job: Any) -> dict[str, Any]:
    """The channel ATP of the job's SKU, set at the channel (a batch of one: see :func:`push_inventory_batch`)."""
    outcome = (await push_inventory_batch(hub, [job]))[job.id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@batch_operation("push_inventory")
async def push_inventory_batch(hub: Hub, jobs: list[Any]) -> dict[str, dict[str, Any] | Exception]:
    """``push_inventory`` jobs of one connection as one batched push: the levels of all their SKUs in one
    query, then one :meth:`~hub.plugins.ChannelConnector.push_inventory_many`. Each job's outcome by job
    id: the result ``push_inventory`` would store, or the exception of its SKU."""
    from hub.allocation import atp_for_channel

    if not jobs:
        return {}
    connections = {j.connection for j in jobs}
    if len(connections) != 1:
        raise ValueError(f"push_inventory_batch takes the jobs of one connection, got {sorted(connections)}")
    connector: ChannelConnector = _as(hub, jobs[0], ChannelConnector)
    cid = jobs[0].connection
    skus = sorted({j.object_id for j in jobs})
    async with hub.store.connect() as conn:
        levels = await inv.levels(conn, skus)
    by_sku: dict[str, list[Any]] = {sku: [] for sku in skus}
    for lvl in levels:
        by_sku[lvl.sku].append(lvl)
    cfg = hub.config
    quantities = {
        sku: atp_for_channel(lv, cfg.locations, cid, cfg.allocation.channel_buffer) for sku, lv in by_sku.items()
    }
    pushed = await connector.push_inventory_many(quantities)
    out: dict[str, dict[str, Any] | Exception] = {}
    for j in jobs:
        r = pushed.get(j.object_id)
        if isinstance(r, Exception):
            out[j.id] = r
        elif r is None:
            out[j.id] = FatalError(
                f"connector {connector.name} returned no outcome for SKU {j.object_id!r} from push_inventory_many "
                "(it must answer every SKU it was given)",
                connection=cid,
            )
        else:
            out[j.id] = {"sku": j.object_id, "quantity": quantities[j.object_id], **_result(r)}
    return out


@operation("submit_fulfillment")
async def submit_fulfillment(hub: Hub, job: Any) -> dict[str, Any]:
    """Create the fulfilment request at the 3PL (a batch of one: see :func:`submit_fulfillment_batch`)."""
    outcome = (await submit_fulfillment_batch(hub, [job]))[job.id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


_F = t.fulfillments
# the 3PL's id, and pending -> submitted in the same row version (a shipment may have been confirmed
# meanwhile: only a pending request becomes submitted)
_SUBMITTED = (
    update(_F)
    .where(_F.c.id == bindparam("b_id"))
    .values(
        external_id=bindparam("b_ext"),
        updated_at=bindparam("b_ts"),
        status=case((_F.c.status == "pending", "submitted"), else_=_F.c.status),
    )
)


# PostgreSQL: :data:`_SUBMITTED` for a batch's rows in one statement
_SUBMITTED_MANY = ArrayUpdate(
    _F,
    ["id", "external_id"],
    "external_id = u.external_id, updated_at = :b_ts, "
    "status = CASE WHEN fulfillments.status = 'pending' THEN 'submitted' ELSE fulfillments.status END",
)


@batch_operation("submit_fulfillment")
async def submit_fulfillment_batch(hub: Hub, jobs: list[Any]) -> dict[str, dict[str, Any] | Exception]:
    """``submit_fulfillment`` jobs of one connection: their requests and orders loaded in two queries,
    the 3PL calls concurrent (the connection's HTTP client bounds them by ``max_concurrency``), the
    external ids written in one transaction. Each job's outcome by job id."""
    import asyncio

    if not jobs:
        return {}
    connections = {j.connection for j in jobs}
    if len(connections) != 1:
        raise ValueError(f"submit_fulfillment_batch takes the jobs of one connection, got {sorted(connections)}")
    connector: WmsConnector = _as(hub, jobs[0], WmsConnector)
    rows: dict[str, Any] = {}
    orders: dict[str, Order] = {}
    for j in jobs:  # written by this worker's own transaction a moment ago (jobs.run_inline)
        known: _Submit | None = getattr(j, "preloaded", None)
        if known is not None:
            rows[j.object_id] = known.row
            orders[known.row.order_id] = known.order
    wanted = {j.object_id for j in jobs} - rows.keys()
    if wanted:
        async with hub.store.connect() as conn:
            rows.update({r.id: r for r in (await conn.execute(select(_F).where(one_of(conn, _F.c.id, wanted)))).all()})
            orders.update(await repo.get_orders(conn, {r.order_id for r in rows.values()} - orders.keys()))
    out: dict[str, dict[str, Any] | Exception] = {}
    sent: dict[str, RemoteResult] = {}

    async def one(job: Any) -> None:
        row = rows.get(job.object_id)
        if row is None:
            out[job.id] = FatalError(f"fulfilment {job.object_id} does not exist", connection=job.connection)
            return
        if row.status == "cancelled":
            out[job.id] = {"skipped": "fulfilment was cancelled before it was sent"}
            return
        order = orders.get(row.order_id)
        if order is None:
            out[job.id] = FatalError(f"order {row.order_id} does not exist", connection=job.connection)
            return
        req = row.data if isinstance(row.data, FulfillmentRequest) else FulfillmentRequest.model_validate(row.data)
        try:
            sent[job.id] = await connector.submit_fulfillment(req, order)
        except Exception as exc:
            out[job.id] = exc

    await asyncio.gather(*(one(j) for j in jobs))
    if sent:
        by_job = {j.id: j for j in jobs}
        ts = now()
        async with hub.store.begin() as conn:
            if conn.dialect.name == "postgresql":  # one statement for the batch, not an execution per row
                ids = [{"id": by_job[jid].object_id, "external_id": r.external_id} for jid, r in sent.items()]
                await conn.execute(*_SUBMITTED_MANY.statement(conn.dialect, ids, b_ts=ts))
            else:
                await conn.execute(
                    _SUBMITTED,
                    [{"b_id": by_job[jid].object_id, "b_ext": r.external_id, "b_ts": ts} for jid, r in sent.items()],
                )
        out.update({jid: _result(r) for jid, r in sent.items()})
    return out


class _Submit(NamedTuple):
    """What ``submit_fulfillment`` reads, as the transaction that wrote it left it."""

    row: Any  # id, order_id, status and data (the FulfillmentRequest) of the fulfilments row
    order: Order


class _FulfillmentRow(NamedTuple):
    id: str
    order_id: str
    status: str
    data: FulfillmentRequest


def preload(conn: AsyncConnection, inline: Inline) -> None:
    """Before the commit of a transaction that collects inline jobs (``jobs.collect_inline``): keep
    the new fulfilment requests and orders it is about to write for its ``submit_fulfillment`` jobs,
    so that they run without reading them back (a request or order the transaction wrote earlier,
    or updated in place, is read back as usual)."""
    buf = pending(conn)
    if buf is None or not inline.jobs:
        return
    wanted = {v["object_id"] for v in inline.jobs if v["operation"] == "submit_fulfillment"}
    requests = {r["id"]: r for r in buf.rows(_F.name) if r["id"] in wanted}
    if not requests:
        return
    order_ids = {r["order_id"] for r in requests.values()}
    new_orders = {r["id"]: r["data"] for r in buf.rows(t.orders.name) if r["id"] in order_ids}
    for fid, r in requests.items():
        order = new_orders.get(r["order_id"])
        if isinstance(order, Order):
            req = FulfillmentRequest.model_validate_json(r["data"])
            inline.preloaded[fid] = _Submit(_FulfillmentRow(fid, r["order_id"], r["status"], req), order)


@operation("cancel_fulfillment")
async def cancel_fulfillment(hub: Hub, job: Any) -> dict[str, Any]:
    connector: WmsConnector = _as(hub, job, WmsConnector)
    async with hub.store.connect() as conn:
        row = (await conn.execute(select(t.fulfillments).where(t.fulfillments.c.id == job.object_id))).first()
    if row is None:
        raise FatalError(f"fulfilment {job.object_id} does not exist", connection=job.connection)
    if not row.external_id:
        return {"skipped": "never submitted to the 3PL"}
    req = FulfillmentRequest.model_validate(row.data).model_copy(update={"external_id": row.external_id})
    try:
        return _result(await connector.cancel_fulfillment(req))
    except FatalError as exc:
        # too late (picked, packed or shipped): the order carries the exception for ops
        async with hub.store.begin() as conn:
            await repo.add_timeline(
                conn, row.order_id, "exception", f"{job.connection} could not cancel {req.id}: {exc.detail}"
            )
            await conn.execute(
                update(t.kpi_facts).where(t.kpi_facts.c.order_id == row.order_id).values(had_exception=True)
            )
        raise


async def _shipment(hub: Hub, shipment_id: str) -> Shipment:
    async with hub.store.connect() as conn:
        row = (await conn.execute(select(t.shipments.c.data).where(t.shipments.c.id == shipment_id))).first()
    if row is None:
        raise NotFound(f"shipment {shipment_id} does not exist")
    return Shipment.model_validate(row.data)


@operation("push_fulfillment")
async def push_fulfillment(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ChannelConnector = _as(hub, job, ChannelConnector)
    order = await _order(hub, job.object_id)
    shipment = await _shipment(hub, job.payload["shipment_id"])
    return _result(await connector.push_fulfillment(order, shipment))


@operation("push_cancellation")
async def push_cancellation(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ChannelConnector = _as(hub, job, ChannelConnector)
    order = await _order(hub, job.object_id)
    return _result(await connector.push_cancellation(order, job.payload.get("reason")))


async def _refund(hub: Hub, refund_id: str) -> Refund:
    async with hub.store.connect() as conn:
        row = (await conn.execute(select(t.refunds.c.data).where(t.refunds.c.id == refund_id))).first()
    if row is None:
        raise NotFound(f"refund {refund_id} does not exist")
    return Refund.model_validate(row.data)


@operation("push_refund")
async def push_refund(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ChannelConnector = _as(hub, job, ChannelConnector)
    refund = await _refund(hub, job.payload["refund_id"])
    order = await _order(hub, refund.order_id)
    r = await connector.push_refund(order, refund)
    if r.external_id:
        # the channel's own id: its echo (e.g. Shopify refunds/create) is then recognised as this refund
        async with hub.store.begin() as conn:
            await conn.execute(
                update(t.refunds)
                .where(t.refunds.c.id == refund.id, t.refunds.c.external_id.is_(None))
                .values(external_id=r.external_id, connection=job.connection)
            )
    return _result(r)


@operation("post_invoice")
async def post_invoice(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ErpConnector = _as(hub, job, ErpConnector)
    order = await _order(hub, job.object_id)
    shipment = await _shipment(hub, job.payload["shipment_id"]) if job.payload.get("shipment_id") else None
    return _result(await connector.post_invoice(order, shipment))


@operation("post_credit_note")
async def post_credit_note(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ErpConnector = _as(hub, job, ErpConnector)
    refund = await _refund(hub, job.payload["refund_id"])
    order = await _order(hub, refund.order_id)
    return _result(await connector.post_credit_note(order, refund))


@operation("post_sales_order")
async def post_sales_order(hub: Hub, job: Any) -> dict[str, Any]:
    connector: ErpConnector = _as(hub, job, ErpConnector)
    return _result(await connector.post_sales_order(await _order(hub, job.object_id)))


@operation("track")
async def track(hub: Hub, job: Any) -> dict[str, Any]:
    """Register the shipment's tracking number with the carrier connection, so its tracking
    events (webhooks) reach the hub."""
    from hub.plugins import CarrierConnector

    connector: CarrierConnector = _as(hub, job, CarrierConnector)
    shipment = await _shipment(hub, job.payload["shipment_id"])
    if not shipment.tracking_number:
        return {"skipped": "no tracking number"}
    return _result(await connector.track(shipment.tracking_number, shipment.carrier))
