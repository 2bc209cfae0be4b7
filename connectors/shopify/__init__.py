"""Shopify channel connector: signed order/refund/return webhooks in; inventory, fulfilments, cancellations
and refunds out through the GraphQL Admin API. See docs/connectors/shopify.md."""

from connectors.shopify._connector import ShopifyConnector, ShopifySettings, discounts, gid, throttle_wait

__all__ = ["ShopifyConnector", "ShopifySettings", "discounts", "gid", "throttle_wait"]
