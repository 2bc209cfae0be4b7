"""Console sessions: a random id in an HttpOnly, SameSite=Strict cookie; the session itself in Redis.

The API token typed at login is checked and forgotten: the session keeps only the token's *name*
and a CSRF token, under ``hub.key("console", "session", sha256(id))`` (so the Redis keys do not
reveal cookie values). Scopes are read from the current config on every request, so removing a
token from ``orderhub.toml`` ends its sessions at the next restart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from hub.api._routing import SCOPE_RANK

COOKIE = "orderhub_console"
#: How long a console session lives without being used again (seconds).
SESSION_TTL = 8 * 3600
#: Failed logins allowed per client address per window before the login answers 429.
LOGIN_FAILURES_ALLOWED = 20
LOGIN_WINDOW = 300


@dataclass(frozen=True)
class Session:
    """A logged-in console user: the API token's name, its best scope and the form CSRF token."""

    sid: str
    actor: str
    scope: str
    csrf: str

    def allows(self, scope: str) -> bool:
        """True when the session's token grants ``scope`` (read < ops < admin)."""
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[scope]

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time check of a form's CSRF token."""
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf.encode())


def _key(hub: Any, *parts: str) -> str:
    return str(hub.key("console", *parts))


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def match_token(hub: Any, presented: str) -> Any | None:
    """The configured API token equal to ``presented`` (each compared in constant time), else None."""
    match = None
    raw = presented.strip().encode()
    for tok in hub.config.api_tokens:
        if hmac.compare_digest(raw, tok.token.get_secret_value().encode()):
            match = tok
    return match


def best_scope(scopes: list[str]) -> str:
    return max(scopes, key=lambda s: SCOPE_RANK[s])


async def create(hub: Any, token: Any) -> Session:
    """A new session for the configured API token ``token``."""
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    doc = {"actor": token.name, "csrf": csrf}
    await hub.redis.set(_key(hub, "session", _digest(sid)), orjson.dumps(doc), ex=SESSION_TTL)
    return Session(sid, token.name, best_scope(list(token.scopes)), csrf)


async def load(hub: Any, sid: str | None) -> Session | None:
    """The session behind a cookie value, or None (unknown, expired, or its token was removed)."""
    if not sid or len(sid) > 128:
        return None
    key = _key(hub, "session", _digest(sid))
    raw = await hub.redis.get(key)
    if raw is None:
        return None
    doc = orjson.loads(raw)
    token = next((t for t in hub.config.api_tokens if t.name == doc["actor"]), None)
    if token is None:
        await hub.redis.delete(key)
        return None
    await hub.redis.expire(key, SESSION_TTL)
    return Session(sid, token.name, best_scope(list(token.scopes)), str(doc["csrf"]))


async def destroy(hub: Any, sid: str) -> None:
    """Log out: the session and its pending message are gone."""
    await hub.redis.delete(_key(hub, "session", _digest(sid)), _key(hub, "flash", _digest(sid)))


async def flash(hub: Any, session: Session, kind: str, message: str) -> None:
    """A message shown once on the next page (the result of a replay)."""
    doc = orjson.dumps({"kind": kind, "message": message})
    await hub.redis.set(_key(hub, "flash", _digest(session.sid)), doc, ex=120)


async def pop_flash(hub: Any, session: Session) -> dict[str, str] | None:
    """The pending message, removed (shown once)."""
    key = _key(hub, "flash", _digest(session.sid))
    raw = await hub.redis.getdel(key)
    return dict(orjson.loads(raw)) if raw else None


async def login_allowed(hub: Any, client: str) -> bool:
    """False once ``client`` failed :data:`LOGIN_FAILURES_ALLOWED` logins in the window."""
    raw = await hub.redis.get(_key(hub, "login_failures", client))
    return raw is None or int(raw) < LOGIN_FAILURES_ALLOWED


async def login_failed(hub: Any, client: str) -> None:
    key = _key(hub, "login_failures", client)
    n = await hub.redis.incr(key)
    if n == 1:
        await hub.redis.expire(key, LOGIN_WINDOW)
