"""The connector test kit: the standard suite every connector runs on its recorded fixtures.

In a connector's tests::

    from hub.testing import ConnectorKit, Outbound

    class TestAcme(ConnectorKit):
        connector = AcmeConnector
        settings = {"api_key": "test", "webhook_secret": "whsec_..."}
        webhooks_dir = Path(__file__).parent / "fixtures" / "webhooks"
        order_created = "order_created"

        def sign(self, body, headers): ...

Every ``test_kit_*`` method then runs: settings, webhook signatures, mapping of every fixture to
valid canonical messages, idempotent parsing, stable event ids, outbound request shapes, retries,
and the commerce cases (re-import, update, cancel, partial shipment, refund) on a throwaway SQLite
store. The pytest plugin (``hub.testing.plugin``) provides the ``orderhub_kit_db`` fixture.
See CONTRIBUTING.md.
"""

from hub.testing._fixtures import Outbound, WebhookFixture, load_webhooks, sample_order, sample_shipment
from hub.testing._kit import KIT_RETRY, ConnectorKit, normalize_ids, run, shape_problems

__all__ = [
    "KIT_RETRY",
    "ConnectorKit",
    "Outbound",
    "WebhookFixture",
    "load_webhooks",
    "normalize_ids",
    "run",
    "sample_order",
    "sample_shipment",
    "shape_problems",
]
