"""Amazon Selling Partner API connector (channel, polling)."""

from connectors.amazon._connector import AmazonConnector, AmazonSettings

__all__ = ["AmazonConnector", "AmazonSettings"]
