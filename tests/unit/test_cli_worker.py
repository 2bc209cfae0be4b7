"""``orderhub worker --nice``: the worker lowers its own CPU priority before it starts, and sets the
collector's thresholds for a worker (``hub.runtime.WORKER_GC_THRESHOLDS``)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from hub.cli import main


def test_worker_nice_lowers_priority_before_running(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setenv("ORDERHUB_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr("os.nice", lambda n: calls.append(("nice", n)) or n)
    monkeypatch.setattr("gc.set_threshold", lambda *t: calls.append(("gc", t)))

    class _Worker:
        def run(self) -> None:
            calls.append(("run",))

    monkeypatch.setattr("hub.sync.worker.make_worker", lambda *a, **k: _Worker())
    result = CliRunner().invoke(main, ["worker", "--nice", "10"])
    assert result.exit_code == 0, result.output
    assert calls == [("nice", 10), ("gc", (700, 10, 100)), ("run",)]  # then the worker's collector thresholds
    result = CliRunner().invoke(main, ["worker", "--nice", "25"])
    assert result.exit_code != 0 and "25" in result.output


def test_worker_runs_one_job_at_a_time_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each drain applies its chunks concurrently already; more drains interleave chunks that meet at
    the stock rows (measured in hub.sync.worker.DEFAULT_CONCURRENCY's comment)."""
    seen: list[int] = []
    monkeypatch.setenv("ORDERHUB_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr("gc.set_threshold", lambda *t: None)

    class _Worker:
        def run(self) -> None:
            pass

    def fake_make_worker(*_a: Any, concurrency: int, **_k: Any) -> _Worker:
        seen.append(concurrency)
        return _Worker()

    monkeypatch.setattr("hub.sync.worker.make_worker", fake_make_worker)
    for args in (["worker"], ["worker", "--concurrency", "3"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    assert seen == [1, 3]
    assert CliRunner().invoke(main, ["worker", "--concurrency", "0"]).exit_code != 0
