"""bench.ab: the alternation of the two sides and the medians it reports (the runs themselves are faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import ab


def test_flatten_keeps_figures_and_leaves_settings_out() -> None:
    doc = {
        "benchmark": "ingest",
        "settings": {"orders": 20000},
        "machine": {"cores": 2},
        "max_throughput": {"orders_per_second": 500, "ack_ms": {"p99": 12.5}, "ok": True},
        "checks": {"oversold_units": 0, "note": "text"},
    }
    assert dict(ab.flatten(doc)) == {
        "max_throughput.orders_per_second": 500.0,
        "max_throughput.ack_ms.p99": 12.5,
        "checks.oversold_units": 0.0,
    }


def test_sides_alternate_which_goes_first() -> None:
    assert ab.order_of_rounds(3) == ["base", "head", "head", "base", "base", "head"]


def test_compare_runs_each_side_in_its_own_directory_and_reports_medians(tmp_path: Path) -> None:
    base_dir, head_dir = tmp_path / "base", tmp_path / "head"
    seen: list[tuple[str, Path, list[str]]] = []
    rates = {"base": iter([100.0, 300.0, 200.0]), "head": iter([260.0, 240.0, 250.0])}

    def fake(side: str, where: Path, args: list[str]) -> dict[str, Any]:
        seen.append((side, where, args))
        return {
            "max_throughput": {"orders_per_second": next(rates[side]), "cpu_ms_per_order": {"hub_total": 4.0}},
            "speed_probe_ms": {"before": 120.0},
        }

    runs = ab.compare(base_dir, head_dir, ["ingest", "--orders", "10"], rounds=3, run=fake)
    assert [s for s, _, _ in seen] == ["base", "head", "head", "base", "base", "head"]
    assert all(where == (base_dir if side == "base" else head_dir) for side, where, _ in seen)
    assert all(args == ["ingest", "--orders", "10"] for _, _, args in seen)

    rows = {r["figure"]: r for r in ab.summarise(runs, ab.DEFAULT_FIGURES)}
    rate = rows["max_throughput.orders_per_second"]
    assert rate["base"] == [100.0, 300.0, 200.0] and rate["head"] == [260.0, 240.0, 250.0]
    assert (rate["median_base"], rate["median_head"], rate["head_vs_base"]) == (200.0, 250.0, 1.25)
    assert rows["max_throughput.cpu_ms_per_order.hub_total"]["head_vs_base"] == 1.0
    assert "speed_probe_ms.before" in rows
    assert "max_throughput.orders_per_second" in ab.render(list(rows.values()))


def test_a_figure_only_one_side_has_is_not_compared() -> None:
    runs = {"base": [{"a": {"orders_per_second": 1}}], "head": [{"b": {"orders_per_second": 2}}]}
    assert ab.summarise(runs, ["orders_per_second"]) == []


def test_the_benchmark_must_follow_a_double_dash(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ab.main(["--base", "HEAD"])
    assert exc.value.code == 2
    assert "give the benchmark after --" in capsys.readouterr().err


def test_an_unknown_revision_is_refused_before_any_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert ab.main(["--base", "no-such-revision-xyz", "--", "ingest"]) == 2
    assert "cannot check out 'no-such-revision-xyz'" in capsys.readouterr().err


def test_each_side_can_get_its_own_options(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    def fake(side: str, where: Path, args: list[str]) -> dict[str, Any]:
        seen[side] = args
        return {}

    ab.compare(tmp_path, tmp_path, ["ingest"], rounds=1, run=fake, extra=(["--inbox-gather-ms", "0"], []))
    assert seen == {"base": ["ingest", "--inbox-gather-ms", "0"], "head": ["ingest"]}
