"""Redacted snapshots of requests and responses, for logs and for errors.

Secrets are removed three ways: by header name (``Authorization``, ``X-Shopify-Access-Token``,
``x-api-key``...), by key name in JSON bodies and query strings (``hub.logging.redact``), and by
value (every secret of the connection's settings and auth headers is replaced wherever it appears,
e.g. the password inside an Odoo JSON-RPC ``args`` list).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import BaseModel, SecretBytes, SecretStr

from hub.logging import PII_KEYS, REDACTED, SECRET_KEYS, redact

#: Header names whose values are never shown (in addition to ``hub.logging.SECRET_KEYS``).
_SECRET_HEADER = re.compile(r"(auth|token|key|secret|signature|hmac|cookie|session|password|credential)", re.I)
_NOT_SECRET = frozenset({"idempotency-key", "idempotency_key"})
#: Bodies are cut to this many characters in snapshots.
BODY_LIMIT = 2000


def is_secret_name(name: str) -> bool:
    """True for a header/field/query name whose value must not be logged (``X-Api-Key``, ``access_token``...)."""
    if name.lower() in _NOT_SECRET:
        return False
    norm = name.replace("-", "_")
    return bool(SECRET_KEYS.search(norm) or _SECRET_HEADER.search(name))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with the values of secret-bearing ones replaced by ``[redacted]``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in items}


def redact_url(url: str | httpx.URL) -> str:
    """The URL without user info, with secret query parameters redacted."""
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret_name(k) or PII_KEYS.match(k) else v) for k, v in pairs], safe="[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secret_values(*sources: Any) -> frozenset[str]:
    """Every secret string found in pydantic settings (``SecretStr`` fields) and auth-header dicts."""
    out: set[str] = set()
    for src in sources:
        if isinstance(src, BaseModel):
            for name in type(src).model_fields:
                v = getattr(src, name, None)
                if isinstance(v, SecretStr):
                    out.add(v.get_secret_value())
                elif isinstance(v, SecretBytes):
                    out.add(v.get_secret_value().decode(errors="replace"))
        elif isinstance(src, Mapping):
            for k, v in src.items():
                if isinstance(v, str) and is_secret_name(str(k)):
                    out.add(v)
                    # "Bearer abc" -> also "abc"
                    if " " in v:
                        out.add(v.split(" ", 1)[1])
    return frozenset(s for s in out if len(s) >= 4)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced."""
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def _body(content: bytes, content_type: str, secrets: Iterable[str]) -> Any:
    if not content:
        return None
    if "json" in content_type or content[:1] in (b"{", b"["):
        try:
            return _scrub_tree(redact(orjson.loads(content)), secrets)
        except orjson.JSONDecodeError:
            pass
    if "x-www-form-urlencoded" in content_type:
        pairs = parse_qsl(content.decode(errors="replace"), keep_blank_values=True)
        return {k: (REDACTED if is_secret_name(k) or PII_KEYS.match(k) else scrub(v, secrets)) for k, v in pairs}
    text = content[:BODY_LIMIT].decode(errors="replace")
    if len(content) > BODY_LIMIT:
        text += f"... ({len(content)} bytes)"
    return scrub(text, secrets)


def _scrub_tree(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub_tree(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_tree(v, secrets) for v in value]
    return value


def request_snapshot(request: httpx.Request, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """``{"method", "url", "headers", "body"}`` of a request, redacted."""
    try:
        content = request.content
    except httpx.RequestNotRead:
        content = b""
    return {
        "method": request.method,
        "url": scrub(redact_url(request.url), secrets),
        "headers": redact_headers(request.headers.items()),
        "body": _body(content, request.headers.get("content-type", ""), secrets),
    }


def response_snapshot(response: httpx.Response, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """``{"status", "headers", "body"}`` of a response, redacted (the body must have been read)."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    return {
        "status": response.status_code,
        "headers": redact_headers(response.headers.items()),
        "body": _body(content, response.headers.get("content-type", ""), secrets),
    }
