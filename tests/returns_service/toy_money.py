"""A channel that takes refund pushes and an ERP that takes credit notes, for the returns service tests
(loaded through ORDERHUB_PLUGINS next to tests.sync.toy)."""

from __future__ import annotations

from typing import Any, ClassVar

from hub.model import Order, Refund
from hub.plugins import Capability, ConnectorSettings, ErpConnector, RemoteResult, hookimpl
from tests.sync.toy import ToyChannel, ToySettings


class RefundingChannel(ToyChannel):
    """The toy channel (webhooks, inventory, fulfilment, cancellation) that also takes refunds."""

    name = "toy-refund-channel"
    capabilities = ToyChannel.capabilities | {Capability.PUSH_REFUND}

    async def push_refund(self, order: Order, refund: Refund) -> RemoteResult:
        return RemoteResult(external_id=f"R-{refund.id}")


class ToyErp(ErpConnector):
    name = "toy-erp"
    capabilities = frozenset({Capability.POST_CREDIT_NOTE})
    Settings: ClassVar[type[ConnectorSettings]] = ToySettings
    default_base_url = "https://toy-erp.test"

    async def post_credit_note(self, order: Order, refund: Refund) -> RemoteResult:
        return RemoteResult(external_id=f"CN-{refund.id}")


@hookimpl
def orderhub_register_connectors(register: Any) -> None:
    register(RefundingChannel)
    register(ToyErp)
