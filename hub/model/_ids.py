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


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit value as two digits


def _encode(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value`` as ``length`` (even) Crockford base32 digits, two
    at a time (this runs for every id the hub makes: several per order)."""
    return "".join([_PAIRS[(value >> s) & 1023] for s in range(5 * length - 10, -1, -10)])


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
    return f"{prefix}_{_encode((ms << 80) | (rand & ((1 << 80) - 1)), 26)}"
