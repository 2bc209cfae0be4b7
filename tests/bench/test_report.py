"""bench._report: the newest run of each scenario by its own time, whatever its file is called, and its table."""

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


def test_the_table_shows_the_vm_speed_of_each_run() -> None:
    doc = {
        "benchmark": "replay",
        "at": "2026-12-03T09:00:00+00:00",
        "machine": {"cores": 2},
        "load_average_1m": 2.9,
        "settings": {"failures": 10000},
        "targets": [{"target": "replays/s", "goal": ">= 1000", "value": 705.7, "met": False}],
        "speed_probe_ms": {"before": 168.7, "after": 138.6},
    }
    row = _report.markdown_table({"replay": doc}).splitlines()[2]
    assert row.endswith("| 2026-12-03, 2 cores, load 2.9, probe 168.7 / 138.6 ms |")
    del doc["speed_probe_ms"]  # runs before session 9 did not time the probe
    assert _report.markdown_table({"replay": doc}).splitlines()[2].endswith("load 2.9 |")


def test_a_result_names_the_commit_it_measured_and_whether_the_tree_was_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    monkeypatch.setattr(_report, "__file__", str(repo / "bench" / "_report.py"))
    assert _report.code_revision() == {"commit": None, "uncommitted_changes": None}  # not a git checkout

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (repo / "f.txt").write_text("a")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert _report.code_revision() == {"commit": head, "uncommitted_changes": False}
    (repo / "README.md").write_text("notes")  # documentation, even tracked, does not count
    git("add", "README.md")
    assert _report.code_revision() == {"commit": head, "uncommitted_changes": False}
    (repo / "f.txt").write_text("b")
    assert _report.code_revision() == {"commit": head, "uncommitted_changes": True}
