"""The connector test kit (hub.testing) on the Odoo connector: settings, secrets, outbound shape and retries."""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.odoo import OdooConnector
from hub.testing import ConnectorKit, Outbound

# Request and response of the search_read example in odoo/documentation
# content/developer/reference/external_api.rst (JSON-2, Odoo 19), its domain cut to one condition (the kit
# checks list items against the first one, and a domain mixes strings and booleans).
_DOC_BODY = {
    "context": {"lang": "en_US"},
    "domain": [["name", "ilike", "%deco%"]],
    "fields": ["name"],
}


class TestOdooKit(ConnectorKit):
    connector = OdooConnector
    settings: ClassVar[dict[str, Any]] = {
        "url": "https://mycompany.example.com",
        "database": "mycompany",
        "username": "bot@mycompany.example.com",
        "api_key": "6578616d706c65206a736f6e20617069206b6579",
    }
    outbound: ClassVar[list[Outbound]] = [
        Outbound(
            name="search_read",
            call=lambda c: c.call("res.partner", "search_read", **_DOC_BODY),
            method="POST",
            url="/json/2/res.partner/search_read",
            response=(200, [{"id": 25, "name": "Deco Addict"}]),
            example=_DOC_BODY,
            source="odoo/documentation content/developer/reference/external_api.rst",
        ),
        Outbound(
            name="action_confirm",
            call=lambda c: c.call("sale.order", "action_confirm", ids=[42]),
            method="POST",
            url="/json/2/sale.order/action_confirm",
            response=(200, True),
            example={"ids": [42]},
            source="external_api.rst: ids of the records the method runs on",
        ),
    ]
