"""The per-connection client: an ``httpx.AsyncClient`` over the httpx-aiohttp transport, with the
connection's rate limiter, concurrency cap and request logs in a transport wrapper (so plain
``client.get(...)`` is limited and logged too)."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from httpx._client import ClientState, UseClientDefault
from httpx._exceptions import request_context

from hub.http._limiter import RateLimiter
from hub.http._redact import secret_values
from hub.http._retry_after import rate_limit_header, retry_after
from hub.http._transport import HubTransport
from hub.logging import event

log = logging.getLogger("hub.http")
_httpx_log = logging.getLogger("httpx")  # httpx's own request line, kept on the short path


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

    def __init__(
        self,
        *,
        connection: str,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = DEFAULT_POLICY,
        secrets: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        self._merged: dict[Any, tuple[list[Any], Any]] = {}
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)
        self._urls: dict[str, tuple[httpx.URL, httpx.URL]] = {}
        self.connection = connection
        self.limiter = limiter
        self.retry = retry
        self.secrets = secrets

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

    def _merge_headers(self, headers: Any = None) -> Any:
        """As httpx's, with the merge of the client's headers and a small dict of the request's (or
        none) memoised: the same few combinations repeat on every call, and merging builds two
        ``httpx.Headers``. ``httpx.Request`` copies what it is given, so the memo is never changed;
        a change of the client's headers, even in place, is seen (their items are compared)."""
        if headers is None:
            key: Any = None
        elif type(headers) is dict and len(headers) <= 4 and all(type(v) is str for v in headers.values()):
            key = tuple(headers.items())
        else:
            return super()._merge_headers(headers)
        current = self._headers._list
        hit = self._merged.get(key)
        if hit is not None and hit[0] == current:
            return hit[1]
        merged = super()._merge_headers(headers)
        if len(self._merged) < 64:
            self._merged[key] = (list(current), merged)
        return merged

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        """As httpx's, with a response read whole out of any reference cycle and a shorter path for
        the common request.

        httpx wraps the body's stream in one that points back at the response, which keeps the
        response, its request, headers and body alive until the garbage collector walks them (half
        the garbage of a replay); once the body is read, a plain stream of it breaks the cycle and they
        go when the last reference does. A request read whole, from a client with no auth, no event
        hooks and no redirect following (every connection's client), goes straight to the transport:
        httpx's auth, redirect and stream-binding layers (a fifth of a small call's CPU) have nothing to
        do for it; the response is the same (``request``, ``elapsed``, ``next_request``, cookies)."""
        auth = kwargs.get("auth", httpx.USE_CLIENT_DEFAULT)
        follow = kwargs.get("follow_redirects", httpx.USE_CLIENT_DEFAULT)
        if (
            stream
            or not isinstance(auth, UseClientDefault)
            or not (follow is False or isinstance(follow, UseClientDefault))
            or not self._plain()
            or request.url.userinfo  # user:password@ is basic auth
        ):
            response = await super().send(request, stream=stream, **kwargs)
            if not stream:
                response.stream = httpx.ByteStream(response.content)
            return response
        if self._state is ClientState.CLOSED:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._state = ClientState.OPENED
        self._set_timeout(request)
        start = time.perf_counter()
        with request_context(request=request):
            response = await self._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        try:
            await response.aread()  # a no-op for a body the transport read whole; a streamed one is read now
        except BaseException:
            await response.aclose()
            raise
        if not isinstance(response.stream, httpx.ByteStream):
            response.stream = httpx.ByteStream(response.content)
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
        self._cookies.extract_cookies(response)
        response.default_encoding = self._default_encoding
        if response.has_redirect_location:
            response.next_request = self._build_redirect_request(request, response)
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response

    def _plain(self) -> bool:
        """No auth, no event hooks, no redirect following: nothing for httpx's send layers to do."""
        hooks = self._event_hooks
        return self._auth is None and not self.follow_redirects and not hooks["request"] and not hooks["response"]


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
