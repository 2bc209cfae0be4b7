"""Structured logs: one JSON object a line, with ids, never secrets or personal data."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

#: Keys whose values are never logged.
SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|api[-_]?key|authorization|signature|hmac|cookie|refresh|credential)",
    re.I,
)
#: Keys that hold personal data (names, addresses, emails, phones).
PII_KEYS = re.compile(
    r"^(email|phone|name|first_name|last_name|address\d?|line1|line2|street|city|zip|postal_code|"
    r"shipping_address|billing_address|customer|contact_email|buyer_email|buyer_name)$",
    re.I,
)
REDACTED = "[redacted]"

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("orderhub_log_ctx", default=None)


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with secret and personal fields replaced by ``[redacted]``."""
    if key and (SECRET_KEYS.search(key) or PII_KEYS.match(key)):
        return REDACTED if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def bind(**ids: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add ids (order_id, connection, job_id, correlation_id...) to every log line in this context."""
    cur = dict(_context.get() or {})
    cur.update({k: v for k, v in ids.items() if v is not None})
    return _context.set(cur)


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


def context() -> dict[str, Any]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_context.get() or {})
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(redact(fields))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Send every ``orderhub``/``hub`` log record to ``stream`` as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "arq.worker", "arq.jobs", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """``log.info("order imported", extra={"fields": {...}})`` or ``event(log, msg, **fields)``."""
    return logging.getLogger(name)


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields`` (redacted)."""
    logger.log(level, msg, extra={"fields": fields})
