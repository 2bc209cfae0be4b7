"""The per-connection client: an ``httpx.AsyncClient`` over the httpx-aiohttp transport, with the
connection's rate limiter, concurrency cap and request logs in a transport wrapper (so plain
``client.get(...)`` is limited and logged too)."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx

from hub.http._limiter import RateLimiter
from hub.http._redact import secret_values
from hub.http._retry_after import rate_limit_header, retry_after
from hub.http._transport import HubTransport
from hub.logging import event

log = logging.getLogger("hub.http")


@dataclass(frozen=True)
class RetryPolicy:
    """How :func:`hub.http.call` retries inside one job.

    At most ``attempts`` tries; between them exponential backoff from ``initial`` seconds up to
    ``max_backoff`` with full jitter, or the server's ``Retry-After``. Never more than ``budget``
    seconds of waiting in total: a longer ``Retry-After`` ends the attempts at once and the
    :class:`~hub.errors.RetriableError` carries it, so the sync engine re-queues the job instead.
    """

    attempts: int = 3
    initial: float = 0.5
    max_backoff: float = 4.0
    budget: float = 10.0


DEFAULT_POLICY = RetryPolicy()


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The verifying TLS context every connection's transport shares: httpx's default (certifi's CA
    bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once per process instead of once per
    connection (loading the bundle takes 20-30 ms each time)."""
    return httpx.create_ssl_context()


class ConnectionTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport: concurrency cap, rate limiter, rate headers, one log line per request."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        connection: str,
        limiter: RateLimiter | None = None,
        max_concurrency: int | None = None,
        learn_rate: bool = True,
    ) -> None:
        self.inner = inner
        self.connection = connection
        self.limiter = limiter
        self.learn_rate = learn_rate
        self._sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._sem is None:
            return await self._send(request)
        async with self._sem:
            return await self._send(request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        limiter = self.limiter
        if limiter is not None:
            await limiter.acquire()
        start = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            if log.isEnabledFor(logging.WARNING):
                event(
                    log,
                    "http request failed",
                    logging.WARNING,
                    connection=self.connection,
                    method=request.method,
                    path=request.url.path,
                    error=type(exc).__name__,
                    latency_ms=round((time.perf_counter() - start) * 1000, 1),
                )
            raise
        status = response.status_code
        if limiter is not None:
            headers = response.headers
            if status == 429:
                wait = retry_after(headers)
                if wait:
                    await limiter.pause(wait)
            rate = rate_limit_header(headers) if self.learn_rate else None
            if rate is not None:
                await limiter.learn(rate)
        if log.isEnabledFor(logging.INFO):
            event(
                log,
                "http request",
                logging.WARNING if status >= 500 or status == 429 else logging.INFO,
                connection=self.connection,
                method=request.method,
                path=request.url.path,
                status=status,
                latency_ms=round((time.perf_counter() - start) * 1000, 1),
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, skipping the (costly) extraction when a response sets no cookie."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class HubClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that knows its connection: id, rate limiter, retry policy and secrets
    (the values redacted from snapshots). Use it like any httpx client, or through :func:`hub.http.call`."""

    #: the headers last given as a dict (``headers=`` or ``client.headers = {...}``): :func:`hub.http.call`
    #: leaves out a request's ``headers=`` equal to them, which the client sends anyway (merging them
    #: again is a fifth of building a request). Change headers by assigning, not in place.
    default_headers: dict[str, str] | None = None

    def __init__(
        self,
        *,
        connection: str,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = DEFAULT_POLICY,
        secrets: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)
        self._urls: dict[str, tuple[httpx.URL, httpx.URL]] = {}
        self.connection = connection
        self.limiter = limiter
        self.retry = retry
        self.secrets = secrets

    @property
    def headers(self) -> httpx.Headers:
        """As httpx's (setting it replaces :attr:`default_headers` too)."""
        return self._headers

    @headers.setter
    def headers(self, headers: Any) -> None:
        httpx.AsyncClient.headers.fset(self, headers)  # type: ignore[attr-defined]
        self.default_headers = dict(headers) if isinstance(headers, dict) else None

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        """As httpx's, with the parsed, base-merged URL of a string path memoised (httpx URL parsing
        is a large share of a request's CPU; the same few paths repeat)."""
        if isinstance(url, str):
            base = self.base_url
            hit = self._urls.get(url)
            if hit is not None and hit[0] is base:
                url = hit[1]
            else:
                merged = self._merge_url(url)
                if len(self._urls) < 1024:
                    self._urls[url] = (base, merged)
                url = merged
        return super().build_request(method, url, **kwargs)

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """As httpx's; a response read whole no longer sits in a reference cycle. httpx wraps the
        body's stream in one that points back at the response, which keeps the response, its request,
        headers and body alive until the garbage collector walks them (half the garbage of a replay);
        once the body is read, a plain stream of it breaks the cycle and they go when the last
        reference does."""
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:
            response.stream = httpx.ByteStream(response.content)
        return response


def client_for(
    connector: Any,
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    redis: Any = None,
    prefix: str = "orderhub",
    rate_per_second: float | None = None,
    max_concurrency: int | None = None,
    retry: RetryPolicy = DEFAULT_POLICY,
) -> HubClient:
    """The outbound client of one connection: base URL, auth headers, timeouts, limiter, logs.

    ``transport`` replaces the httpx-aiohttp transport (tests pass a respx router's or an
    ``httpx.MockTransport``); the limiter and logs still apply. With ``redis`` the connection is
    limited to ``rate_per_second`` (default: the connector class's ``rate_per_second``) across every
    process sharing that Redis and ``prefix``; without ``redis`` there is no rate limit. At most
    ``max_concurrency`` requests are in flight (default: the connector class's ``max_concurrency``).
    """
    try:
        base = connector.base_url()
    except ValueError:
        base = ""
    headers = connector.auth_headers()
    connection = str(getattr(connector, "connection_id", None) or getattr(connector, "name", "unknown"))
    rate = rate_per_second if rate_per_second is not None else getattr(connector, "rate_per_second", None)
    limiter = None
    if redis is not None and rate:
        limiter = RateLimiter(
            redis,
            prefix=prefix,
            connection=connection,
            rate_per_second=float(rate),
            burst=getattr(connector, "rate_burst", None),
        )
    max_conc = max_concurrency or getattr(connector, "max_concurrency", None)
    inner = transport or HubTransport(
        limits=httpx.Limits(max_connections=max(int(max_conc or 0), 100), max_keepalive_connections=100),
        verify=default_ssl_context(),
    )
    return HubClient(
        connection=connection,
        limiter=limiter,
        retry=retry,
        secrets=secret_values(getattr(connector, "settings", None), headers),
        base_url=base,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        transport=ConnectionTransport(
            inner,
            connection=connection,
            limiter=limiter,
            max_concurrency=int(max_conc) if max_conc else None,
            # a connector whose rate headers describe one operation (Amazon) keeps them out of the
            # connection's shared limiter
            learn_rate=bool(getattr(connector, "learn_rate_from_headers", True)),
        ),
    )
