"""Recorded webhook fixtures, outbound cases, and small canonical samples for connector tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from hub.model import Money, Order, OrderLine, Shipment, ShipmentLine, Totals, new_id


@dataclass(frozen=True)
class WebhookFixture:
    """One recorded delivery: the raw body bytes exactly as received, and its headers (unsigned:
    the kit signs them with the test secret through ``ConnectorKit.sign``)."""

    name: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    source: str | None = None


def load_webhooks(folder: str | Path) -> list[WebhookFixture]:
    """Every ``NAME.json`` in ``folder`` (the raw body) with its optional ``NAME.headers.json``
    (a JSON object of headers; an optional ``"_source"`` key says where the recording comes from)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"webhook fixtures folder {folder} does not exist")
    out: list[WebhookFixture] = []
    for body_file in sorted(folder.glob("*.json")):
        if body_file.name.endswith(".headers.json"):
            continue
        name = body_file.name[: -len(".json")]
        headers: dict[str, Any] = {}
        hfile = body_file.with_name(f"{name}.headers.json")
        if hfile.exists():
            headers = orjson.loads(hfile.read_bytes())
        source = headers.pop("_source", None)
        out.append(
            WebhookFixture(
                name=name,
                body=body_file.read_bytes().rstrip(b"\n"),
                headers={str(k): str(v) for k, v in headers.items()},
                source=str(source) if source else None,
            )
        )
    return out


@dataclass(frozen=True)
class Outbound:
    """One outbound operation and the shape the real API expects.

    ``call`` runs the operation on a connector (``lambda c: c.push_inventory("SKU-1", 3)``);
    ``method`` and ``url`` (a path under the connection's base URL, or a full URL; a regex when
    ``regex``) name the one request it must send; ``response`` is the real API's answer (status, JSON);
    ``schema`` (a JSON Schema) or ``example`` (a real request body: same keys, same JSON types)
    describes the body. ``source`` notes where the example/schema comes from.
    """

    name: str
    call: Callable[[Any], Awaitable[Any]]
    method: str
    url: str
    response: tuple[int, Any] = (200, {})
    schema: dict[str, Any] | None = None
    example: Any = None
    regex: bool = False
    source: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.method} {self.url})"


def sample_order(
    connection: str = "test",
    external_id: str = "1001",
    lines: Iterable[tuple[str, int, str]] = (("SKU-1", 2, "10.00"),),
    currency: str = "EUR",
    placed_at: datetime | None = None,
) -> Order:
    """A valid canonical order (lines are (sku, quantity, unit price)) with totals that add up."""
    order_lines = [
        OrderLine(line_no=i, sku=sku, quantity=qty, unit_price=Money(amount=Decimal(price), currency=currency))
        for i, (sku, qty, price) in enumerate(lines, start=1)
    ]
    subtotal = Money.sum((ln.net for ln in order_lines), currency)
    zero = Money.zero(currency)
    return Order(
        id=new_id("ord"),
        connection=connection,
        external_id=external_id,
        placed_at=placed_at or datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        currency=currency,
        lines=order_lines,
        totals=Totals(subtotal=subtotal, shipping=zero, tax=zero, discount=zero, total=subtotal),
    )


def sample_shipment(
    order: Order, quantities: dict[str, int] | None = None, tracking: str = "1Z999AA10123456784"
) -> Shipment:
    """A shipment of ``order`` (all of it, or ``quantities`` by sku)."""
    qty = quantities or {ln.sku: ln.quantity for ln in order.lines}
    return Shipment(
        id=new_id("shp"),
        order_id=order.id,
        external_order_id=order.external_id,
        carrier="UPS",
        tracking_number=tracking,
        lines=[ShipmentLine(sku=sku, quantity=q) for sku, q in qty.items()],
        shipped_at=datetime(2026, 7, 2, 9, 30, tzinfo=UTC),
    )
