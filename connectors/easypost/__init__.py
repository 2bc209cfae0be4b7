"""EasyPost connector (carrier)."""

from connectors.easypost._connector import EasyPostConnector, EasyPostSettings, signature

__all__ = ["EasyPostConnector", "EasyPostSettings", "signature"]
