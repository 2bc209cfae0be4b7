"""Odoo ERP connector (JSON-2 for Odoo 19+, JSON-RPC for 17-18). See docs/connectors/odoo.md."""

from connectors.odoo.connector import OdooConnector, OdooSettings

__all__ = ["OdooConnector", "OdooSettings"]
