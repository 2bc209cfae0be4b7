"""Tables (SQLAlchemy Core). One schema for PostgreSQL and SQLite.

Rows keep the canonical object as JSON in ``data`` plus the columns the hub filters,
joins or locks on. Migrations in ``hub/store/migrations`` create them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from hub.store._types import UTCDateTime


def _partial_index(name: str, *columns: Any, where: str) -> Index:
    """An index of the rows matching ``where`` only (PostgreSQL and SQLite both support them)."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# plain json on PostgreSQL too: documents are written and read whole, never queried inside (migration 0007)
Json = JSON()
TS = UTCDateTime()
Id = String(40)
# A serial id that is a BIGINT on PostgreSQL and the rowid INTEGER on SQLite.
Serial = BigInteger().with_variant(Integer(), "sqlite")

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Numeric(20, 4), nullable=False),
    Column("email_hash", String(64), nullable=True),
    Column("placed_at", TS, nullable=False),
    Column("source_updated_at", TS, nullable=True),
    Column("data", Json, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("connection", "external_id", name="uq_orders_connection_external_id"),
)
Index("ix_orders_status_created", orders.c.status, orders.c.created_at)
Index("ix_orders_placed_at", orders.c.placed_at)
Index("ix_orders_email_hash_created", orders.c.email_hash, orders.c.created_at)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(128), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("cancelled_quantity", Integer, nullable=False, server_default="0"),
    Column("unit_price", Numeric(20, 4), nullable=False),
    Column("currency", String(3), nullable=False),
)
Index("ix_order_lines_sku", order_lines.c.sku)

locations = Table(
    "locations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", TS, nullable=False),
)

inventory_levels = Table(
    "inventory_levels",
    metadata,
    Column("sku", String(128), primary_key=True),
    Column("location", String(64), primary_key=True),
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("safety_stock", Integer, nullable=False, server_default="0"),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
)

inventory_ledger = Table(
    "inventory_ledger",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("sku", String(128), nullable=False),
    Column("location", String(64), nullable=False),
    Column("delta_on_hand", Integer, nullable=False, server_default="0"),
    Column("delta_reserved", Integer, nullable=False, server_default="0"),
    Column("cause", String(32), nullable=False),
    Column("ref", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("at", TS, nullable=False),
)
Index("ix_inventory_ledger_sku_location", inventory_ledger.c.sku, inventory_ledger.c.location)

expected_receipts = Table(
    "expected_receipts",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("sku", String(128), nullable=False),
    Column("location", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("expected_at", TS, nullable=False),
    Column("received", Boolean, nullable=False, server_default="0"),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("location", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("fulfillment_id", Id, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
Index("ix_allocations_order", allocations.c.order_id)
Index("ix_allocations_location_created", allocations.c.location, allocations.c.created_at)

backorders = Table(
    "backorders",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(128), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("priority", Numeric(20, 4), nullable=False, server_default="0"),
    Column("created_at", TS, nullable=False),
    Column("flagged_at", TS, nullable=True),
)
Index("ix_backorders_sku_created", backorders.c.sku, backorders.c.created_at)

fulfillments = Table(
    "fulfillments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("location", String(64), nullable=False),
    Column("connection", String(64), nullable=True),
    Column("external_id", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)
Index("ix_fulfillments_order", fulfillments.c.order_id)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, nullable=True),
    Column("fulfillment_id", Id, nullable=True),
    Column("connection", String(64), nullable=True),
    Column("external_id", String(128), nullable=True),
    Column("tracking_number", String(128), nullable=True),
    Column("status", String(24), nullable=False),
    Column("data", Json, nullable=False),
    Column("shipped_at", TS, nullable=False),
    Column("delivered_at", TS, nullable=True),
    UniqueConstraint("connection", "external_id", name="uq_shipments_connection_external_id"),
)
Index("ix_shipments_order", shipments.c.order_id)
Index("ix_shipments_tracking", shipments.c.tracking_number)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("topic", String(128), nullable=True),
    Column("object_key", String(200), nullable=True, comment="entity the event is about, for ordering"),
    Column("source_ts", TS, nullable=True),
    Column("headers", Json, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, comment="pending, processing, done, failed"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", TS, nullable=True),
    Column("error", Text, nullable=True),
    Column("received_at", TS, nullable=False),
    Column("processed_at", TS, nullable=True),
    UniqueConstraint("connection", "event_id", name="uq_inbox_connection_event_id"),
)
_partial_index("ix_inbox_pending", inbox.c.received_at, where="status = 'pending'")
_partial_index("ix_inbox_leased", inbox.c.lease_until, where="status = 'processing'")

sync_jobs = Table(
    "sync_jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("connection", String(64), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("object_id", String(128), nullable=True),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False, comment="pending, running, done, failed, superseded"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("errors", Json, nullable=False),
    Column("result", Json, nullable=True),
    Column("next_run_at", TS, nullable=False),
    Column("lease_until", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)
_partial_index("ix_sync_jobs_pending_due", sync_jobs.c.next_run_at, where="status = 'pending'")
_partial_index("ix_sync_jobs_leased", sync_jobs.c.lease_until, where="status = 'running'")
Index("ix_sync_jobs_object", sync_jobs.c.connection, sync_jobs.c.operation, sync_jobs.c.object_id)
_partial_index(
    "ix_sync_jobs_open_by_object",
    sync_jobs.c.connection,
    sync_jobs.c.object_id,
    sync_jobs.c.created_at,
    where="status IN ('pending', 'running')",
)

sync_failures = Table(
    "sync_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(16), nullable=False, comment="inbox or job"),
    Column("source_id", Id, nullable=False),
    Column("connection", String(64), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("object_id", String(128), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("errors", Json, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("request", Json, nullable=True),
    Column("response", Json, nullable=True),
    Column("status", String(16), nullable=False, comment="open, replaying, resolved"),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("source", "source_id", name="uq_sync_failures_source_source_id"),
)
Index("ix_sync_failures_status_created", sync_failures.c.status, sync_failures.c.created_at)

replays = Table(
    "replays",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("failure_id", Id, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", TS, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("result", String(32), nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_replays_failure", replays.c.failure_id)

cursors = Table(
    "cursors",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("id", Id, nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("object_id", String(128), nullable=True),
    Column("connection", String(64), nullable=True),
    Column("data", Json, nullable=False),
    Column("created_at", TS, nullable=False),
)
# The events still to fan out, by seq: written with each event (hub.store.outbox.emit), deleted by the
# fan-out that schedules its deliveries. The outbox itself is only ever appended to: marking each
# event dispatched rewrote its row (never a HOT update: every index took an entry again) and left a
# dead row for VACUUM, 0.58 s of PostgreSQL's statement time per 5 s at 500 orders/s.
outbox_pending = Table(
    "outbox_pending",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
)
Index("ix_outbox_object", outbox.c.object_id, outbox.c.seq)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Json, nullable=False),
    Column("connection", String(64), nullable=True),
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128), nullable=True),
    Column("previous_secret_expires_at", TS, nullable=True),
    Column("status", String(16), nullable=False, comment="active, disabled, deleted"),
    Column("failing_since", TS, nullable=True),
    Column("description", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Id, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("object_id", String(128), nullable=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, comment="pending, delivering, delivered, failed"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TS, nullable=True),
    Column("lease_until", TS, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_id_event_id"),
)
Index("ix_webhook_deliveries_status_next", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
Index("ix_webhook_deliveries_endpoint_object", webhook_deliveries.c.endpoint_id, webhook_deliveries.c.object_id)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("at", TS, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("response_snippet", Text, nullable=True),
    Column("error", Text, nullable=True),
)
Index("ix_delivery_attempts_delivery", delivery_attempts.c.delivery_id)

returns = Table(
    "returns",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("connection", String(64), nullable=True),
    Column("external_id", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("connection", "external_id", name="uq_returns_connection_external_id"),
)
Index("ix_returns_order", returns.c.order_id)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("return_id", Id, nullable=True),
    Column("connection", String(64), nullable=True),
    Column("external_id", String(128), nullable=True),
    Column("amount", Numeric(20, 4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("connection", "external_id", name="uq_refunds_connection_external_id"),
)
Index("ix_refunds_order", refunds.c.order_id)

payment_disputes = Table(
    "payment_disputes",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False, comment="chargeback or dispute"),
    Column("amount", Numeric(20, 4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", TS, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Json, nullable=True),
    Column("created_at", TS, nullable=False),
)

order_events = Table(
    "order_timeline",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("at", TS, nullable=False),
    Column("status", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=True),
)
Index("ix_order_timeline_order", order_events.c.order_id)

kpi_facts = Table(
    "kpi_facts",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("placed_at", TS, nullable=False),
    Column("shipped_at", TS, nullable=True),
    Column("delivered_at", TS, nullable=True),
    Column("promised_ship_by", TS, nullable=True),
    Column("promised_deliver_by", TS, nullable=True),
    Column("had_exception", Boolean, nullable=False, server_default="0"),
    Column("shipments", Integer, nullable=False, server_default="0"),
    Column("cost_to_serve", Numeric(20, 4), nullable=True),
    Column("complete", Boolean, nullable=False, server_default="1"),
    Column("refund_requested_at", TS, nullable=True),
    Column("refund_issued_at", TS, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=True),
    Column("detail", Json, nullable=True),
)
