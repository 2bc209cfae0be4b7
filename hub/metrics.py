"""Prometheus metrics. Counters and histograms are process-local; gauges that describe
shared state (queue depth, lag, orders by status) are computed at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

webhooks_received = Counter(
    "orderhub_webhooks_received_total", "Inbound webhook deliveries", ["connection", "outcome"], registry=REGISTRY
)
jobs_total = Counter("orderhub_jobs_total", "Jobs run", ["job", "outcome"], registry=REGISTRY)
job_latency = Histogram(
    "orderhub_job_latency_seconds",
    "Job run time",
    ["job"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
sync_failures = Counter(
    "orderhub_sync_failures_total",
    "Syncs dead-lettered after their last attempt",
    ["connection", "operation"],
    registry=REGISTRY,
)
sync_retries = Counter(
    "orderhub_sync_retries_total", "Sync attempts that will be retried", ["connection", "operation"], registry=REGISTRY
)
allocation_latency = Histogram(
    "orderhub_allocation_latency_seconds",
    "Time to allocate one order (plan + atomic reservation)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    registry=REGISTRY,
)
webhook_deliveries = Counter(
    "orderhub_webhook_deliveries_total", "Partner webhook delivery attempts", ["outcome"], registry=REGISTRY
)
queue_depth = Gauge("orderhub_queue_depth", "Items waiting, by queue", ["queue"], registry=REGISTRY)
oldest_age = Gauge(
    "orderhub_queue_oldest_age_seconds", "Age of the oldest waiting item, by queue", ["queue"], registry=REGISTRY
)
orders_by_status = Gauge("orderhub_orders", "Orders by status", ["status"], registry=REGISTRY)
