"""bench._report.latest: the newest run of each scenario by its own time, whatever its file is called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import _report


def test_the_newest_run_wins_whatever_the_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_report, "RESULTS", tmp_path)
    runs = {
        "2026-12-02-ingest.json": "2026-12-02T04:44:03+00:00",
        "2026-12-02-session5-ingest.json": "2026-12-02T02:02:53+00:00",  # sorts after, ran before
        "2026-12-02-ingest-quick.json": "2026-12-02T05:00:00+00:00",  # a smoke run never counts
    }
    for name, at in runs.items():
        (tmp_path / name).write_text(json.dumps({"benchmark": "ingest", "at": at}))
    assert _report.latest()["ingest"]["at"] == "2026-12-02T04:44:03+00:00"
