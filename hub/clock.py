"""The hub's clock: always timezone-aware UTC. Tests may replace ``now``."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
