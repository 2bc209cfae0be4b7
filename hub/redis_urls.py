"""``ORDERHUB_REDIS_URL``: one Redis server, or a Redis Sentinel group for failover.

- ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS): one server.
- ``redis+sentinel://[[user]:password@]host1:26379[,host2:26379...]/service[/db]``
  (``rediss+sentinel://`` for TLS): the sentinels to ask, the name of the monitored service
  (``sentinel monitor <service> ...`` in their configuration) and the database number. The
  credentials are the Redis server's; sentinels that require a password of their own take
  ``?sentinel_password=...``. Every process (API nodes, workers) asks the sentinels for the
  current master and follows a failover.

The hub's client (:func:`client`) and arq's settings (:func:`arq_settings`) come from the same
URL, so the queue and the rest of the hub (rate limiter, coalescing keys) always use one server.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import redis.asyncio as aioredis
from arq.connections import RedisSettings
from redis.asyncio.sentinel import Sentinel

__all__ = ["SentinelTarget", "arq_settings", "client", "parse_sentinel"]

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS
_EXAMPLE = "redis+sentinel://:password@sentinel-1:26379,sentinel-2:26379/orderhub/0"


@dataclass(frozen=True)
class SentinelTarget:
    """A Redis Sentinel URL, parsed."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def parse_sentinel(url: str) -> SentinelTarget | None:
    """The sentinel group ``url`` names; None for a plain ``redis://`` URL. Raises ValueError
    (with an example of a good URL) when a sentinel URL is malformed."""
    scheme, _, rest = url.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        return None
    userinfo, _, hostpart = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    hosts, _, path = hostpart.partition("/")
    path, _, query = path.partition("?")
    sentinels: list[tuple[str, int]] = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit():
            raise ValueError(f"Redis sentinel address {item!r} is not host:port (e.g. {_EXAMPLE})")
        sentinels.append((host.strip("[]"), int(port)))
    if not sentinels:
        raise ValueError(f"Redis sentinel URL names no sentinel (e.g. {_EXAMPLE})")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError(f"Redis sentinel URL names no service (the monitored master's name; e.g. {_EXAMPLE})")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"Redis sentinel URL path must be /service or /service/db (e.g. {_EXAMPLE})")
    user, _, password = userinfo.partition(":")
    sentinel_password = parse_qs(query).get("sentinel_password", [None])[0]
    return SentinelTarget(
        sentinels=sentinels,
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
        sentinel_password=sentinel_password,
        ssl=SENTINEL_SCHEMES[scheme],
    )


def _sentinel(target: SentinelTarget) -> Sentinel:
    auth = {"password": target.sentinel_password} if target.sentinel_password else {}
    return Sentinel(  # type: ignore[no-untyped-call]
        target.sentinels,
        sentinel_kwargs={"socket_connect_timeout": 2, **auth},
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        socket_connect_timeout=2,
    )


def client(url: str) -> aioredis.Redis:
    """A Redis client for ``url``: the current master of a sentinel group, or the one server."""
    target = parse_sentinel(url)
    if target is None:
        plain: aioredis.Redis = aioredis.from_url(url)  # type: ignore[no-untyped-call]
        return plain
    master: aioredis.Redis = _sentinel(target).master_for(target.service)
    return master


def arq_settings(url: str) -> RedisSettings:
    """arq's settings for the same server(s) as :func:`client`."""
    target = parse_sentinel(url)
    if target is None:
        return RedisSettings.from_dsn(url)
    return RedisSettings(
        host=target.sentinels,  # arq takes the sentinel list here
        sentinel=True,
        sentinel_master=target.service,
        database=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
    )
