"""Typed errors of Orderhub.

Every error carries a message a person can act on. The HTTP API turns them into
``application/problem+json`` (RFC 9457) using ``status`` and ``title``.

The hierarchy::

    OrderhubError
    ├── ConfigError                 bad orderhub.toml or environment (lists every problem)
    ├── InputError (422)            a request or payload that cannot be accepted
    │   ├── MappingError            a mapping could not produce a canonical object
    │   └── TotalsMismatch          order totals that do not add up
    ├── CurrencyMismatch (422)      money arithmetic across currencies
    ├── NotFound (404)
    ├── Conflict (409)
    │   ├── IllegalTransition       an order status change the state machine refuses
    │   └── InsufficientStock       a reservation that would oversell
    ├── AuthError (401)
    │   └── Forbidden (403)
    ├── Backpressure (429)          the hub is saturated; retry after ``retry_after`` seconds
    └── ConnectorError              an external system failed
        ├── RetriableError          timeouts, 5xx, 429: try again later
        └── FatalError              4xx validation: do not retry
"""

from __future__ import annotations

from typing import Any


class OrderhubError(Exception):
    """Base of every error Orderhub raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        doc: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        doc.update({k: v for k, v in self.context.items() if v is not None})
        return doc


class ConfigError(OrderhubError):
    """The configuration is invalid; ``problems`` lists every (where, value, why)."""

    title = "Invalid configuration"

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"  {where}: {why}" + (f" (got {value})" if value else "") for where, value, why in problems]
        super().__init__(f"{len(problems)} configuration problem(s):\n" + "\n".join(lines))


class InputError(OrderhubError):
    status = 422
    title = "Unprocessable input"


class MappingError(InputError):
    """A mapping failed; ``errors`` holds dicts with file, line, field, value, message."""

    title = "Mapping failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **context: Any) -> None:
        super().__init__(detail, errors=errors or [], **context)
        self.errors = errors or []


class TotalsMismatch(InputError):
    title = "Order totals do not add up"


class CurrencyMismatch(OrderhubError):
    status = 422
    title = "Currency mismatch"


class NotFound(OrderhubError):
    status = 404
    title = "Not found"


class Conflict(OrderhubError):
    status = 409
    title = "Conflict"


class IllegalTransition(Conflict):
    title = "Illegal status transition"

    def __init__(self, current: str, target: str, order_id: str | None = None) -> None:
        who = f"order {order_id}" if order_id else "order"
        super().__init__(
            f"{who} cannot go from '{current}' to '{target}'",
            current=current,
            target=target,
            order_id=order_id,
        )
        self.current = current
        self.target = target


class InsufficientStock(Conflict):
    title = "Insufficient stock"


class AuthError(OrderhubError):
    status = 401
    title = "Unauthorized"


class Forbidden(AuthError):
    status = 403
    title = "Forbidden"


class Backpressure(OrderhubError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class ConnectorError(OrderhubError):
    """An external system failed. ``request``/``response`` are redacted snapshots."""

    status = 502
    title = "External system error"

    def __init__(
        self,
        detail: str,
        *,
        connection: str | None = None,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, connection=connection)
        self.connection = connection
        self.request = request
        self.response = response
        self.retry_after = retry_after


class RetriableError(ConnectorError):
    """Transient: a timeout, a 5xx, a 429. The sync engine retries with backoff."""


class FatalError(ConnectorError):
    """Permanent: the external system refused the request. Retrying will not help."""
