"""Odoo wire details: JSON with exact Decimals, the two APIs' envelopes, and error mapping."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hub.errors import ConnectorError, FatalError, RetriableError

#: Exceptions that will not go away by retrying (validation, access, missing records, bad requests).
FATAL_NAMES = frozenset(
    {
        "odoo.exceptions.ValidationError",
        "odoo.exceptions.UserError",
        "odoo.exceptions.AccessError",
        "odoo.exceptions.AccessDenied",
        "odoo.exceptions.MissingError",
        "odoo.exceptions.RedirectWarning",
        "werkzeug.exceptions.Unauthorized",
        "werkzeug.exceptions.Forbidden",
        "werkzeug.exceptions.NotFound",
        "werkzeug.exceptions.BadRequest",
        "werkzeug.exceptions.UnprocessableEntity",
    }
)
#: Exceptions of a busy database or server: the same call later will work.
RETRIABLE_NAMES = frozenset(
    {
        "odoo.exceptions.ConcurrencyError",
        "psycopg2.errors.SerializationFailure",
        "psycopg2.errors.LockNotAvailable",
        "psycopg2.errors.DeadlockDetected",
        "psycopg2.OperationalError",
        "werkzeug.exceptions.ServiceUnavailable",
        "werkzeug.exceptions.TooManyRequests",
    }
)


def dumps(value: Any) -> bytes:
    """JSON where ``Decimal`` is written as an exact JSON number (Odoo wants numbers; floats never appear)."""
    return _enc(value).encode()


def _enc(v: Any) -> str:
    if v is None or isinstance(v, (bool, str)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"cannot send {v} to Odoo")
        return format(v, "f")
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_enc(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _enc(x) for k, x in v.items()) + "}"
    raise TypeError(f"cannot encode {type(v).__name__} for Odoo")


def loads(content: bytes) -> Any:
    """Parse a response; numbers with a fraction become ``Decimal``."""
    return json.loads(content, parse_float=Decimal)


def _advice(name: str, model: str) -> str:
    if name in ("werkzeug.exceptions.Unauthorized", "odoo.exceptions.AccessDenied"):
        return (
            "the API key or login was refused: API keys last at most 3 months; create a new one under "
            "Preferences > Account Security in Odoo and update the connection's api_key (and username/database)"
        )
    if name == "odoo.exceptions.AccessError":
        return f"the Odoo user of this connection lacks access rights to {model}; grant them and replay"
    if name == "odoo.exceptions.MissingError":
        return "a record it refers to was deleted in Odoo; fix the reference and replay"
    if name in ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError"):
        return "Odoo refused the data; fix it in the hub or in Odoo (products, taxes, partner) and replay"
    if name == "werkzeug.exceptions.NotFound":
        return (
            f"the model {model} or the method does not exist on this database; check its /doc page and the api setting"
        )
    return "the sync will not retry this; check the Odoo logs for the traceback and replay once fixed"


def odoo_error(
    *,
    status: int | None,
    error: dict[str, Any] | None,
    model: str,
    method: str,
    where: str,
    connection: str,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> ConnectorError:
    """A typed error from an Odoo error object (``{name, message, arguments, context, debug}``)."""
    err = error or {}
    name = str(err.get("name") or "")
    message = str(err.get("message") or "").strip() or "no message"
    retriable = name in RETRIABLE_NAMES or (
        name not in FATAL_NAMES and status is not None and (status >= 500 or status in (408, 429))
    )
    code = f" {status}" if status is not None else ""
    what = f"Odoo {model}.{method} ({where}, connection {connection}) failed{code}: {name or 'error'}: {message}"
    if retriable:
        return RetriableError(
            f"{what}. Odoo is busy or unavailable; the sync will retry later.",
            connection=connection,
            request=request,
            response=response,
            retry_after=retry_after,
        )
    return FatalError(f"{what}. {_advice(name, model)}.", connection=connection, request=request, response=response)
