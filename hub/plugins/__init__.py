"""Plugins: hookspecs, the plugin manager, and the connector base classes.

A connector package exposes a module with::

    from hub.plugins import hookimpl

    @hookimpl
    def orderhub_register_connectors(register):
        register(MyConnector)

and names it in its pyproject under ``[project.entry-points."orderhub.connectors"]``.
"""

from hub.plugins._base import (
    Capability,
    CarrierConnector,
    ChannelConnector,
    Connector,
    ConnectorSettings,
    ErpConnector,
    Kind,
    Label,
    Parcel,
    PollResult,
    Rate,
    RemoteResult,
    WmsConnector,
)
from hub.plugins._messages import (
    FulfillmentException,
    Ignored,
    InboundEvent,
    InventoryCounted,
    Message,
    OrderCancelled,
    OrderUpserted,
    RefundCreated,
    ReturnRequested,
    ShipmentConfirmed,
    TrackingUpdated,
)
from hub.plugins.manager import (
    ENTRY_POINT_GROUP,
    ConnectorInfo,
    PluginManager,
    Registry,
    hookimpl,
    load,
    settings_problems,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Capability",
    "CarrierConnector",
    "ChannelConnector",
    "Connector",
    "ConnectorInfo",
    "ConnectorSettings",
    "ErpConnector",
    "FulfillmentException",
    "Ignored",
    "InboundEvent",
    "InventoryCounted",
    "Kind",
    "Label",
    "Message",
    "OrderCancelled",
    "OrderUpserted",
    "Parcel",
    "PluginManager",
    "PollResult",
    "Rate",
    "RefundCreated",
    "Registry",
    "RemoteResult",
    "ReturnRequested",
    "ShipmentConfirmed",
    "TrackingUpdated",
    "WmsConnector",
    "hookimpl",
    "load",
    "settings_problems",
]
