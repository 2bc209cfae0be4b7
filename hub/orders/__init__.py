"""The order service: what the hub does when orders, shipments, tracking and stock change."""
