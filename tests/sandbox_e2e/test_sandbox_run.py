"""``orderhub sandbox`` end to end: each scenario runs in-process against the five simulators (small N) and keeps
its invariants; one run goes through the real command in a subprocess.

The simulators speak the real wire formats (see docs/sandbox.md and shared/reference/FORMATS.md for the sources);
nothing here is mocked: the hub, its API, its worker, SQLite and a private redis-server all run for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.errors import InputError
from sandbox.run import Report, run_sandbox, sandbox_config, to_toml
from sandbox.scenarios import get_scenario, names
from sandbox.systems import start_all

ROOT = Path(__file__).resolve().parents[2]


def assert_invariants(report: Report) -> None:
    failed = [f"{i.name}: {i.detail}" for i in report.invariants if not i.ok]
    assert not failed, "\n".join(failed) + "\n\n" + report.text()
    assert {i.name for i in report.invariants} == {
        "settled",
        "units oversold = 0",
        "duplicate side effects = 0",
        "events lost = 0",
        "every inbound webhook accounted for",
    }


async def test_steady_run_ships_and_delivers_every_order_and_keeps_the_invariants(tmp_path: Path) -> None:
    report = await run_sandbox(16, "steady", home=tmp_path, worker_processes=0)
    assert_invariants(report)
    o = report.orders
    malformed = report.simulators["shopify"]["webhooks"]["faults"].get("malformed", 0)
    assert o["placed"] == 16 and o["placed_amazon"] >= 1
    assert o["received"] >= o["placed"] - malformed
    assert o["shipped"] == o["delivered"] == report.statuses.get("delivered", 0) == o["received"] - o["waiting"]
    assert report.returns["invoices"] == o["shipments"]  # one Odoo invoice per shipment, none twice
    assert report.partner["received"] == report.partner["events"] > 0
    assert report.sync["open"] == 0 or all("orders/" in k for k in report.sync["open_by_error"])


async def test_flash_sale_backorders_what_is_not_in_stock_and_oversells_nothing(tmp_path: Path) -> None:
    report = await run_sandbox(40, "flash-sale", home=tmp_path, worker_processes=0)
    assert_invariants(report)
    m = report.metrics
    assert m["units demanded"] > m["units in stock"]
    assert report.orders["backordered"] > 0 and m["backordered after sale"] > 0
    # every unit in stock went out (less any a ShipBob count took back while shipments were in flight)
    stocked = m["units in stock"] + m["units received after sale"] + report.orders["units_counted"]
    assert report.orders["units_shipped"] == stocked


async def test_3pl_outage_backlog_drains_by_itself_without_doubling_an_order(tmp_path: Path) -> None:
    report = await run_sandbox(16, "3pl-outage", home=tmp_path, worker_processes=0)
    assert_invariants(report)
    m = report.metrics
    assert m["calls refused (503)"] > 0 and m["backlog peak (submits)"] > 0
    shipbob = report.simulators["shipbob"]
    assert shipbob["side_effects"].get("shipbob.order", report.orders["shipments"]) >= 1
    assert report.orders["shipped"] == report.orders["received"] - report.orders["waiting"]


async def test_returns_wave_restocks_refunds_and_posts_credit_notes(tmp_path: Path) -> None:
    report = await run_sandbox(16, "returns-wave", home=tmp_path, worker_processes=0)
    assert_invariants(report)
    r = report.returns
    assert report.metrics["returns refunded"] > 0
    assert r["refunds"] == report.metrics["returns refunded"]  # one refund per return, however often it was asked
    assert r["credit_notes"] >= r["refunds"]  # every refund became a credit note in Odoo
    assert r["units_restocked"] > 0


def test_the_command_runs_the_smallest_sandbox_and_exits_0(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERHUB_")}
    proc = subprocess.run(
        [sys.executable, "-m", "hub", "sandbox", "--orders", "5", "--home", str(tmp_path / "home")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in (
        "[ok] settled",
        "[ok] units oversold = 0",
        "[ok] duplicate side effects = 0",
        "[ok] events lost = 0",
        "[ok] every inbound webhook accounted for",
        "all invariants hold",
    ):
        assert line in proc.stdout
    assert list((tmp_path / "home").glob("sandbox-*.db"))


def test_an_unknown_scenario_is_refused_with_the_known_names() -> None:
    with pytest.raises(InputError) as exc:
        get_scenario("black-friday")
    assert all(n in exc.value.detail for n in names())


async def test_the_generated_config_is_valid_toml_that_the_hub_accepts() -> None:
    systems = await start_all()
    try:
        doc = sandbox_config(systems, "sbx_" + "x" * 32)
        text = to_toml(doc)
        cfg = parse_config(tomllib.loads(text), "sandbox.toml")
        assert {c.id for c in cfg.connections} == {"shop", "amazon", "shipbob", "odoo", "easypost"}
        assert [loc.id for loc in cfg.locations] == ["shipbob-cicero", "shipbob-moreno", "store-louisville"]
        assert cfg.webhooks.allow_private_targets is True
        assert cfg.connection("shipbob").settings["base_url"] == systems.shipbob.url + "/2026-07"
    finally:
        await systems.stop()
