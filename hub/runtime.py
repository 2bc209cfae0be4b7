"""The running hub: settings, config, store, Redis, plugins and connections in one object.

``Hub.open()`` is what ``orderhub serve``, ``orderhub worker``, the sandbox and the tests
use; everything the hub's services need is reached through it (no globals).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from hub.config import HubConfig, Settings, load_config
from hub.errors import ConfigError, NotFound
from hub.plugins import Connector, PluginManager, Registry, load, settings_problems
from hub.redis_server import PrivateRedis, ensure_redis_url
from hub.redis_urls import client as redis_client
from hub.store import Store
from hub.store.revision import at_head


@dataclass
class Hub:
    settings: Settings
    config: HubConfig
    store: Store
    redis: aioredis.Redis
    pm: PluginManager
    registry: Registry
    connections: dict[str, Connector] = field(default_factory=dict)
    private_redis: PrivateRedis | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def open(
        cls,
        settings: Settings | None = None,
        config: HubConfig | None = None,
        *,
        migrate: bool = True,
        extra_plugins: list[Any] | None = None,
        http_transport: Any = None,
        http_options: dict[str, Any] | None = None,
        role: str = "hub",
    ) -> Hub:
        """Load plugins, validate the config against them, open the database (migrated) and Redis.

        ``role`` names this process's database sessions (``orderhub-<role>`` in pg_stat_activity)."""
        settings = settings or Settings()
        extra = list(extra_plugins or [])
        for name in filter(None, (p.strip() for p in settings.plugins.split(","))):
            extra.append(importlib.import_module(name))
        pm, registry = load(extra_plugins=extra)
        if config is None:
            config = load_config(settings.config, lambda c: settings_problems(registry, c.connections))
        else:
            problems = settings_problems(registry, config.connections)
            if problems:
                raise ConfigError(problems)
        url = settings.effective_database_url()
        store = Store(url, application_name=f"orderhub-{role}")
        if migrate and not await at_head(store):
            from hub.store.migrate import upgrade_async  # alembic only where migrations run

            try:
                await upgrade_async(url)
            except BaseException:
                await store.close()
                raise
        redis_url, private = ensure_redis_url(settings.redis_url)
        redis = redis_client(redis_url)
        hub = cls(
            settings=settings, config=config, store=store, redis=redis, pm=pm, registry=registry, private_redis=private
        )
        hub.state["redis_url"] = redis_url
        hub.state["http_options"] = http_options or {}
        mapping_problems: list[tuple[str, str, str]] = []
        for i, conn_cfg in enumerate(config.connections):
            if conn_cfg.enabled:
                conn = hub._make_connection(conn_cfg.id, http_transport)
                hub.connections[conn_cfg.id] = conn
                for p in conn.mappings.problems() if conn.mappings is not None else []:
                    where = f"connections[{i}] ({conn_cfg.id}) mapping {p.get('file', '')}:{p.get('line', '')}"
                    mapping_problems.append((where, "", str(p.get("message", p))))
        if mapping_problems:
            await hub.close()
            raise ConfigError(mapping_problems)
        await hub._sync_locations()
        return hub

    def _make_connection(self, connection_id: str, transport: Any = None) -> Connector:
        from hub.http import client_for
        from hub.mapping import MappingSet

        cfg = self.config.connection(connection_id)
        cls = self.registry.get(cfg.connector)
        settings = cls.Settings.model_validate(cfg.settings)
        base = self.settings.config.parent
        overrides = {obj: str(base / path) for obj, path in cfg.mappings.items()}
        conn = cls(connection_id, settings, None, MappingSet.for_connector(cls.mapping_set or cls.name, overrides))
        conn.http = client_for(
            conn,
            transport=transport,
            redis=self.redis,
            prefix=self.settings.redis_prefix,
            rate_per_second=cfg.rate_per_second or cls.rate_per_second,
            max_concurrency=cfg.max_concurrency or cls.max_concurrency,
            **self.state.get("http_options", {}),
        )
        return conn

    def connector(self, connection_id: str) -> Connector:
        try:
            return self.connections[connection_id]
        except KeyError:
            raise NotFound(
                f"no connection {connection_id!r} is configured (orderhub.toml [[connections]])",
                connection=connection_id,
            ) from None

    def key(self, *parts: str) -> str:
        """A Redis key under this hub's prefix."""
        return ":".join((self.settings.redis_prefix, *parts))

    async def _sync_locations(self) -> None:
        from hub.store import locations

        async with self.store.begin() as conn:
            await locations.sync(conn, self.config.locations)

    async def close(self) -> None:
        intake = self.state.get("intake")  # the webhook batcher's connection goes back to the pool first
        if intake is not None:
            await intake.close()
        try:
            from hub import events

            await events.close(self)
        except ImportError:
            pass
        for c in self.connections.values():
            if c.http is not None and hasattr(c.http, "aclose"):
                await c.http.aclose()
        await self.redis.aclose()
        await self.store.close()
        if self.private_redis:
            self.private_redis.stop()


def freeze_startup_objects() -> None:
    """Move what start-up created (modules, config, compiled mappings, the app) out of the garbage
    collector's view: full collections otherwise re-scan it all and pause the process (100-240 ms
    measured in the API at 500 webhooks/s)."""
    import gc

    gc.collect()
    gc.freeze()


#: The garbage collector's thresholds in ``orderhub failures replay``'s processes, instead of Python's
#: (700, 10, 10): a page of replays keeps thousands of objects alive for a moment, which young
#: collections every 700 new objects promoted and the older generations' collections walked again
#: (1.02-1.14 s of a replaying child's 6.5-7.3 s of CPU for 5,000 replays, 0.53-0.60 s with these;
#: pauses up to 0.12 s).
BATCH_GC_THRESHOLDS = (50_000, 50, 100)

#: The thresholds in ``orderhub worker``: Python's young collections, but a full collection only
#: after 100 middle ones instead of 10 (22-23 full collections of 40-50 ms in each worker on an
#: 8,000-order ingest, 0.9-1.0 s of CPU, against 2-3). The batch thresholds above halved a worker's
#: collector CPU too, but cost a flash sale 15 % (714-735 orders/s against 845, alternating runs);
#: these gave it 583-608 against 530-543 (two alternating rounds each).
WORKER_GC_THRESHOLDS = (700, 10, 100)


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Set the garbage collector's thresholds for this process (:data:`BATCH_GC_THRESHOLDS` in a
    replay, :data:`WORKER_GC_THRESHOLDS` in a worker)."""
    import gc

    gc.set_threshold(*thresholds)
