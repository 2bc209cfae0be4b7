"""Connector base classes: a connector is a small class with class attributes and overrides."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hub.errors import AuthError
from hub.model import FulfillmentRequest, Money, Order, Refund, Shipment
from hub.plugins._messages import InboundEvent, Message

if TYPE_CHECKING:
    import httpx


class Kind(StrEnum):
    CHANNEL = "channel"
    WMS = "wms"  # also 3PLs
    ERP = "erp"
    CARRIER = "carrier"


class Capability(StrEnum):
    """What a connector can do; the hub calls only what a connector declares."""

    WEBHOOKS = "webhooks"
    POLL_ORDERS = "poll_orders"
    PUSH_INVENTORY = "push_inventory"
    PUSH_FULFILLMENT = "push_fulfillment"
    PUSH_CANCELLATION = "push_cancellation"
    PUSH_REFUND = "push_refund"
    SUBMIT_FULFILLMENT = "submit_fulfillment"
    CANCEL_FULFILLMENT = "cancel_fulfillment"
    INVENTORY_SNAPSHOT = "inventory_snapshot"
    POST_SALES_ORDER = "post_sales_order"
    POST_INVOICE = "post_invoice"
    POST_CREDIT_NOTE = "post_credit_note"
    POST_INVENTORY_ADJUSTMENT = "post_inventory_adjustment"
    RATES = "rates"
    LABELS = "labels"
    TRACKING = "tracking"


class ConnectorSettings(BaseModel):
    """Base of every connector's settings model. Secrets are ``SecretStr``; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None


@dataclass
class PollResult:
    """Orders found by a poll and the cursor to resume from (stored only after they are safe)."""

    orders: list[Order]
    cursor: str | None
    more: bool = False


@dataclass
class Rate:
    carrier: str
    service: str
    amount: Money
    delivery_days: int | None = None
    rate_id: str | None = None


@dataclass
class Label:
    tracking_number: str
    label_url: str | None
    carrier: str
    service: str
    cost: Money
    shipment_external_id: str | None = None


@dataclass
class Parcel:
    weight_grams: int
    length_cm: float | None = None
    width_cm: float | None = None
    height_cm: float | None = None


@dataclass
class RemoteResult:
    """What an outbound call produced at the external system (stored with the sync job)."""

    external_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Connector:
    """Base of every connector. Subclass one of the kind bases below.

    Class attributes describe it; an instance is one *connection* (a connector + settings).
    ``http`` is the connection's outbound client (``hub.http``), ``mappings`` its mapping set.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    #: Outbound requests per second and in flight per connection (overridable per connection).
    rate_per_second: ClassVar[float] = 10.0
    max_concurrency: ClassVar[int] = 8
    #: Whether the system's rate headers (``x-amzn-RateLimit-Limit``...) describe the whole
    #: connection (True) or one operation (False: the connector handles them itself).
    learn_rate_from_headers: ClassVar[bool] = True
    #: Requests that may go out at once before the rate applies (None: the limiter's default).
    rate_burst: ClassVar[float | None] = None
    #: The connector's own mapping folder name under ``mappings/`` (default: ``name``).
    mapping_set: ClassVar[str | None] = None
    #: Default base URL of the real system.
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        connection_id: str,
        settings: ConnectorSettings,
        http: httpx.AsyncClient | Any | None = None,
        mappings: Any = None,
    ) -> None:
        self.connection_id = connection_id
        self.settings = settings
        self.http = http
        self.mappings = mappings

    # -- inbound ---------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise :class:`~hub.errors.AuthError` unless the delivery is authentic. Runs before parsing."""
        raise AuthError(f"connector {self.name} does not accept webhooks")

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        """Identity of an authentic delivery (dedup key, topic, entity, source time). Must not fail on a bad body
        beyond raising :class:`~hub.errors.InputError`; the hub then keys the delivery by a hash of the body."""
        raise NotImplementedError

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        """Map an authentic delivery to canonical messages. Pure: no I/O; raise MappingError/InputError."""
        raise NotImplementedError

    def base_url(self) -> str:
        url = self.settings.base_url or self.default_base_url
        if not url:
            raise ValueError(f"connection {self.connection_id}: base_url is required")
        return url.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """Headers the outbound client adds to every request (tokens)."""
        return {}


class ChannelConnector(Connector):
    kind = Kind.CHANNEL

    async def poll_orders(self, cursor: str | None) -> PollResult:
        raise NotImplementedError

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        """Set the channel's sellable quantity of ``sku`` (absolute, never a delta)."""
        raise NotImplementedError

    async def push_inventory_many(
        self, quantities: dict[str, int], location: str | None = None
    ) -> dict[str, RemoteResult | Exception]:
        """Set the sellable quantity of several SKUs (absolute); the sync engine sends the due pushes of a
        connection through this. Returns every SKU's outcome: its :class:`RemoteResult`, or the exception
        its push raised (a failed SKU never fails the others; this method itself does not raise for them).

        The default calls :meth:`push_inventory` per SKU, at most ``max_concurrency`` at once, so a
        connector that only implements ``push_inventory`` keeps working. Override it when the system takes
        many quantities in one call (Shopify: one ``inventorySetQuantities`` per 250 SKUs)."""
        slots = asyncio.Semaphore(max(1, int(self.max_concurrency or 1)))

        async def one(sku: str, quantity: int) -> RemoteResult | Exception:
            async with slots:
                try:
                    return await self.push_inventory(sku, quantity, location)
                except Exception as exc:  # the SKU's outcome, recorded on its own sync job
                    return exc

        outcomes = await asyncio.gather(*(one(sku, qty) for sku, qty in quantities.items()))
        return dict(zip(quantities, outcomes, strict=True))

    async def push_fulfillment(self, order: Order, shipment: Shipment) -> RemoteResult:
        raise NotImplementedError

    async def push_cancellation(self, order: Order, reason: str | None = None) -> RemoteResult:
        raise NotImplementedError

    async def push_refund(self, order: Order, refund: Refund) -> RemoteResult:
        raise NotImplementedError


class WmsConnector(Connector):
    kind = Kind.WMS

    async def submit_fulfillment(self, request: FulfillmentRequest, order: Order) -> RemoteResult:
        """Create the order at the WMS/3PL; ``external_id`` is its id there. Must be idempotent per request.id."""
        raise NotImplementedError

    async def cancel_fulfillment(self, request: FulfillmentRequest) -> RemoteResult:
        """Cancel; raise :class:`~hub.errors.FatalError` when it is too late (picked/shipped)."""
        raise NotImplementedError

    async def inventory_snapshot(self) -> list[tuple[str, str, int]]:
        """(sku, hub location id, on_hand) for every stocked SKU."""
        raise NotImplementedError


class ErpConnector(Connector):
    kind = Kind.ERP

    async def post_sales_order(self, order: Order) -> RemoteResult:
        raise NotImplementedError

    async def post_invoice(self, order: Order, shipment: Shipment | None = None) -> RemoteResult:
        raise NotImplementedError

    async def post_credit_note(self, order: Order, refund: Refund) -> RemoteResult:
        raise NotImplementedError

    async def post_inventory_adjustment(self, sku: str, location: str, delta: int, reason: str | None) -> RemoteResult:
        raise NotImplementedError


class CarrierConnector(Connector):
    kind = Kind.CARRIER

    async def rates(self, ship_from: Any, ship_to: Any, parcel: Parcel) -> list[Rate]:
        raise NotImplementedError

    async def buy_label(
        self, ship_from: Any, ship_to: Any, parcel: Parcel, service: str | None = None, reference: str | None = None
    ) -> Label:
        raise NotImplementedError

    async def track(self, tracking_number: str, carrier: str | None = None) -> RemoteResult:
        raise NotImplementedError


__all__ = [
    "Capability",
    "CarrierConnector",
    "ChannelConnector",
    "Connector",
    "ConnectorSettings",
    "ErpConnector",
    "Kind",
    "Label",
    "Parcel",
    "PollResult",
    "Rate",
    "RemoteResult",
    "WmsConnector",
]
