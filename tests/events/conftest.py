"""Fixtures of the partner webhook tests: a hub on the real PostgreSQL and a local partner receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from webhook_helpers import MiniHub, Partner, make_config, running_partner

from hub import events
from hub.store import Store


@pytest.fixture
async def make_hub(pg_store: Store) -> AsyncIterator[Callable[..., MiniHub]]:
    """Hubs on the same test database with other [webhooks] settings (tiny retry schedule by default)."""
    made: list[MiniHub] = []

    def make(**webhooks: Any) -> MiniHub:
        h = MiniHub(store=pg_store, config=make_config(**webhooks))
        made.append(h)
        return h

    yield make
    for h in made:
        await events.close(h)


@pytest.fixture
def hub(make_hub: Callable[..., MiniHub]) -> MiniHub:
    return make_hub()


@pytest.fixture
async def partner() -> AsyncIterator[Partner]:
    """A partner's webhook receiver on loopback."""
    async with running_partner() as p:
        yield p
