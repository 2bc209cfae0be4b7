"""Standard Webhooks signatures (https://www.standardwebhooks.com/), used both ways:
to sign the hub's partner events and to verify inbound deliveries signed the same way
(ShipBob). ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), secrets ``whsec_`` + base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

from hub.errors import AuthError

TOLERANCE_SECONDS = 5 * 60
PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret:
        raise ValueError("empty webhook secret")
    raw = secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    if "." in msg_id or "." in str(timestamp):
        raise ValueError("webhook id and timestamp must not contain '.'")
    content = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secrets_: Iterable[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1`` per secret, space-separated)."""
    ts = int(time.time()) if timestamp is None else timestamp
    sigs = " ".join(sign(s, msg_id, ts, body) for s in secrets_)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sigs}


def verify(
    secret: str, hdrs: Mapping[str, str], body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> str:
    """Check a Standard Webhooks delivery; returns its ``webhook-id`` or raises AuthError (why, never the secret)."""
    lower = {k.lower(): v for k, v in hdrs.items()}
    msg_id = lower.get("webhook-id")
    ts_raw = lower.get("webhook-timestamp")
    sig_header = lower.get("webhook-signature")
    if not msg_id or not ts_raw or not sig_header:
        raise AuthError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise AuthError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise AuthError("webhook-timestamp is outside the 5-minute tolerance (replayed or clock skew)")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for part in sig_header.split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return msg_id
    raise AuthError("no valid v1 signature in webhook-signature")
