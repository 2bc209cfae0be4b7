"""Partner events: normalized, signed webhooks (Standard Webhooks) to partner endpoints.

Services write events with :func:`hub.store.outbox.emit` in the transaction of the change.
The worker runs :func:`serve` as a background task (it keeps claiming while slow partners
are still answering) and :func:`close` at shutdown::

    stop = asyncio.Event()
    task = asyncio.create_task(hub.events.serve(hub, stop))
    ...
    stop.set(); await task; await hub.events.close(hub)

or, in a simple polling loop, :func:`run_once` (= :func:`fan_out` + :func:`deliver_due`)::

    while not stopping:
        if not await hub.events.run_once(hub):
            await asyncio.sleep(1)

See docs/partner-webhooks.md for what partners receive.
"""

from __future__ import annotations

from hub.events._endpoints import (
    create_endpoint,
    delete_endpoint,
    get_delivery,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    replay_delivery,
    replay_endpoint,
    rotate_secret,
)
from hub.events._engine import RESPONSE_LIMIT, close, deliver_due, fan_out, run_once, serve, session
from hub.events._hub import HubLike
from hub.events._models import (
    Attempt,
    Delivery,
    DeliveryDetail,
    Endpoint,
    EndpointIn,
    EndpointWithSecret,
    ReplayIn,
    ReplayResult,
)
from hub.events._ssrf import check_target

__all__ = [
    "RESPONSE_LIMIT",
    "Attempt",
    "Delivery",
    "DeliveryDetail",
    "Endpoint",
    "EndpointIn",
    "EndpointWithSecret",
    "HubLike",
    "ReplayIn",
    "ReplayResult",
    "check_target",
    "close",
    "create_endpoint",
    "delete_endpoint",
    "deliver_due",
    "fan_out",
    "get_delivery",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "replay_delivery",
    "replay_endpoint",
    "rotate_secret",
    "run_once",
    "serve",
    "session",
]
