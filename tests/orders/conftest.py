from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from hub.config import HubConfig, Settings
from hub.http import RetryPolicy
from hub.runtime import Hub
from tests.conftest import _fresh_pg
from tests.sync import toy
from tests.sync.conftest import CONFIG, make_router

NETWORK: dict[str, Any] = {
    **CONFIG,
    "locations": [
        {
            "id": "berlin",
            "name": "Berlin",
            "country": "DE",
            "postal_code": "10115",
            "latitude": 52.52,
            "longitude": 13.40,
            "priority": 1,
            "fulfilled_by": "wms",
        },
        {
            "id": "munich",
            "name": "Munich",
            "country": "DE",
            "postal_code": "80331",
            "latitude": 48.14,
            "longitude": 11.58,
            "priority": 2,
            "fulfilled_by": "wms",
        },
        {
            "id": "paris",
            "name": "Paris",
            "country": "FR",
            "postal_code": "75001",
            "latitude": 48.86,
            "longitude": 2.35,
            "priority": 3,
            "fulfilled_by": "wms",
        },
    ],
}


@pytest.fixture
def router() -> respx.Router:
    return make_router()


@pytest.fixture
async def net_hub(pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router) -> AsyncIterator[Hub]:
    """A hub with three locations and no stock, on the real PostgreSQL."""
    store = await _fresh_pg(pg_url)
    await store.close()
    toy.STRICT["on"] = True
    settings = Settings(database_url=pg_url, redis_url=redis_url, redis_prefix=redis_prefix, plugins="tests.sync.toy")
    h = await Hub.open(
        settings,
        HubConfig.model_validate(NETWORK),
        migrate=False,
        http_transport=httpx.MockTransport(router.async_handler),
        http_options={"retry": RetryPolicy(attempts=1, initial=0.01, max_backoff=0.01, budget=0.0)},
    )
    yield h
    await h.close()
