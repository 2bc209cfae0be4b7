"""bench.fsync_probe: every call is timed, and a slow fdatasync is reported as a stall with its time."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench import fsync_probe


def test_every_call_is_measured_and_slow_ones_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = os.fdatasync

    def sometimes_slow(fd: int) -> None:
        calls["n"] += 1
        real(fd)
        if calls["n"] == 5:
            time.sleep(0.03)  # one call held 30 ms, as a stalled disk does

    monkeypatch.setattr(os, "fdatasync", sometimes_slow)
    out: dict[str, Any] = fsync_probe.probe(tmp_path, seconds=0.2, rate=100)
    assert calls["n"] == 20
    assert [s["ms"] >= 30 for s in out["stalls_over_20ms"]] == [True]
    assert out["fdatasync_ms"]["max"] >= 30 and out["fdatasync_ms"]["p50"] < 30
    assert list(tmp_path.iterdir()) == []  # the scratch file is removed
