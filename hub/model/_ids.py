"""Prefixed, time-sortable ids: ``ord_01JD...`` (a ULID after the prefix)."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
PREFIXES = {"ord", "ful", "shp", "ret", "ref", "evt", "loc", "inb", "job", "fail", "whe", "dlv", "hld", "rpl"}

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A new id such as ``ord_01JDXR5V6M3Y2Q9W8K7T6S5R4P``.

    Ids made later sort after ids made earlier, also within the same millisecond
    (the random part is incremented, as monotonic ULIDs do).
    """
    global _last_ms, _last_rand
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}; known: {sorted(PREFIXES)}")
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_rand = ms, rand
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand & ((1 << 80) - 1), 16)}"
