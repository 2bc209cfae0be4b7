"""``call()``: one outbound request with in-client retries and typed errors."""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from hub.errors import FatalError, RetriableError
from hub.http._client import DEFAULT_POLICY, HubClient, RetryPolicy
from hub.http._redact import request_snapshot, response_snapshot
from hub.http._retry_after import retry_after

#: Statuses worth another try: timeouts, too early, throttling and server errors
#: (not 501 Not Implemented / 505 HTTP Version Not Supported, which will not change).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524, 529})
#: Transport failures worth another try.
RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Transient(Exception):
    def __init__(self, response: httpx.Response, wait: float | None) -> None:
        self.response = response
        self.wait = wait


_RETRYABLE: tuple[type[Exception], ...] = (_Transient, *RETRY_EXCEPTIONS)


def _server_wait(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc.wait if isinstance(exc, _Transient) else None


def _stopper(policy: RetryPolicy) -> Any:
    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        wait = _server_wait(state)
        # The server wants a longer pause than we may spend here: give it back to the sync engine.
        return wait is not None and state.idle_for + wait > policy.budget

    return stop


def _waiter(policy: RetryPolicy) -> Any:
    def backoff(state: RetryCallState) -> float:
        # exponential, with jitter so that workers that failed together do not retry together
        base: float = policy.initial * 2.0 ** (state.attempt_number - 1)
        return min(policy.max_backoff, base + random.uniform(0, base))

    def wait(state: RetryCallState) -> float:
        server = _server_wait(state)
        delay = server if server is not None else backoff(state)
        return max(0.0, min(delay, policy.budget - state.idle_for))

    return wait


class _Where:
    """``METHOD scheme://host/path`` of a request, for error messages: resolved (a request built,
    which costs as much as sending one) only when a message is written."""

    def __init__(self, client: httpx.AsyncClient, method: str, url: str | httpx.URL) -> None:
        self.client, self.method, self.url = client, method, url

    def __str__(self) -> str:
        try:
            u = self.client.build_request(self.method, self.url).url
            return f"{self.method} {u.scheme}://{u.host}{u.path}"
        except Exception:
            return f"{self.method} {self.url}"


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    connection: str | None = None,
    retry: bool = True,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and return its (2xx/3xx) response, retrying what is transient.

    Timeouts, connection errors, 408/425/429 and 5xx are retried (``policy``, default the client's:
    3 attempts, exponential backoff with jitter, ``Retry-After``/``x-retry-after`` honoured, at most
    10 s of waiting); then :class:`~hub.errors.RetriableError` is raised with ``retry_after`` and
    redacted ``request``/``response`` snapshots. Any other 4xx raises :class:`~hub.errors.FatalError`
    at once. ``kwargs`` are those of ``httpx.AsyncClient.request`` (``json=``, ``params=``, ``headers=``...).
    Pass ``retry=False`` for a request that must not be repeated (a non-idempotent POST).
    """
    if policy is None:
        policy = client.retry if isinstance(client, HubClient) else DEFAULT_POLICY
    if "json" in kwargs:
        kwargs = _json_body(kwargs)
    if not retry:
        policy = RetryPolicy(attempts=1, initial=policy.initial, max_backoff=policy.max_backoff, budget=0)
    conn = connection or getattr(client, "connection", None)
    secrets: frozenset[str] = getattr(client, "secrets", frozenset())
    where = _Where(client, method, url)  # built only for an error message
    who = f" (connection {conn})" if conn else ""

    async def send() -> httpx.Response:
        """One attempt: the response if 2xx/3xx; raises _Transient (retry) or FatalError (do not)."""
        response = await client.request(method, url, **kwargs)
        status = response.status_code
        if status < 400:
            return response
        if status in RETRY_STATUSES:
            raise _Transient(response, retry_after(response.headers))
        raise _fatal(response, str(where), who, conn, secrets)

    # The first attempt goes straight out: most calls succeed at once, and tenacity's machinery
    # (an AsyncRetrying, its call state, futures and closures, in reference cycles that hold the
    # request and response until the garbage collector walks them) cost more than the rest of a
    # small call's bookkeeping. A transient failure enters tenacity as its first attempt's outcome,
    # so the waits and the stop rules are tenacity's, as for every later attempt.
    attempts = 1
    try:
        try:
            return await send()
        except _RETRYABLE as exc:
            first: BaseException | None = exc
        retrying = AsyncRetrying(
            stop=_stopper(policy), wait=_waiter(policy), retry=retry_if_exception_type(_RETRYABLE), reraise=True
        )
        async for attempt in retrying:
            with attempt:
                if first is not None:  # the first attempt's outcome, as if tenacity had made it
                    exc_, first = first, None
                    raise exc_
                attempts += 1
                return await send()
    except _Transient as exc:
        resp = exc.response
        wait = exc.wait
        raise RetriableError(
            f"{where}{who} answered {resp.status_code} {resp.reason_phrase} after {attempts} attempt(s)"
            + (f"; the server asks to wait {wait:g}s" if wait is not None else "")
            + ". The sync will retry later; if it keeps failing, check the external system's status.",
            connection=conn,
            request=request_snapshot(resp.request, secrets),
            response=response_snapshot(resp, secrets),
            retry_after=wait,
        ) from None
    except RETRY_EXCEPTIONS as exc:
        req = getattr(exc, "_request", None)
        raise RetriableError(
            f"{where}{who} failed after {attempts} attempt(s): {type(exc).__name__}"
            + (f" ({exc})" if str(exc) else "")
            + ". The sync will retry later; check that the external system is reachable.",
            connection=conn,
            request=request_snapshot(req, secrets) if isinstance(req, httpx.Request) else None,
            retry_after=None,
        ) from exc
    except RetriableError as exc:  # the rate limiter is saturated
        if exc.connection is None:
            exc.connection = conn
        raise
    raise AssertionError("unreachable")  # pragma: no cover


def _json_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``json=`` encoded once with orjson (httpx's ``json=`` uses the standard library's encoder, 3 % of
    a 3PL submission's CPU): the same compact UTF-8 JSON, sent as ``content`` with its Content-Type."""
    out = dict(kwargs)
    out["content"] = orjson.dumps(out.pop("json"), option=orjson.OPT_NON_STR_KEYS)
    headers = out.get("headers")
    if headers is None:
        out["headers"] = _JSON_TYPE
    elif type(headers) is dict and all(type(k) is str and k.lower() != "content-type" for k in headers):
        out["headers"] = {**headers, **_JSON_TYPE}  # a plain dict: no httpx.Headers built twice
    else:
        merged = httpx.Headers(headers)
        merged.setdefault("Content-Type", "application/json")
        out["headers"] = merged
    return out


_JSON_TYPE = {"Content-Type": "application/json"}


def _fatal(response: httpx.Response, where: str, who: str, conn: str | None, secrets: frozenset[str]) -> FatalError:
    status = response.status_code
    snap = response_snapshot(response, secrets)
    if status in (401, 403):
        advice = "check the connection's credentials and scopes in orderhub.toml"
    elif status == 404:
        advice = "the object or the URL does not exist there; check the ids and base_url"
    else:
        advice = "the request was refused as sent; retrying will not help, fix the data or the mapping"
    body = snap.get("body")
    excerpt = f" Response: {str(body)[:300]}" if body else ""
    return FatalError(
        f"{where}{who} was refused with {status} {response.reason_phrase}: {advice}.{excerpt}",
        connection=conn,
        request=request_snapshot(response.request, secrets),
        response=snap,
    )
