"""``python -m bench --quick`` as CI runs it: correctness only (never timing).

The quick runs start the real hub (``orderhub serve --no-worker`` + one ``orderhub worker``) on a fresh
PostgreSQL database and a unique Redis prefix, drive it with signed Shopify ``orders/create`` webhooks
(REST Order JSON from the sandbox Shopify store) and check the invariants that must hold at any speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_quick(scenario: str, *extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", scenario, "--quick", "--json", "--no-record", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_flash_sale_never_oversells_and_decides_every_order() -> None:
    doc = run_quick("flash-sale")
    checks = doc["checks"]
    assert checks["oversold_units"] == 0
    assert checks["reserved_equals_allocated"] is True
    assert all(level["reserved"] <= level["on_hand"] for level in doc["levels"])
    # 80 % of the orders' units are in stock: exactly that many are allocated, the rest backordered
    assert checks["stock_sold_out"] is True
    # the machine's speed before and after, to compare runs of drifting VMs (never asserted on)
    assert set(doc["speed_probe_ms"]) == {"before", "after"}
    assert checks["all_decided"] is True


def test_replay_of_dead_lettered_fulfilments_creates_each_3pl_order_once() -> None:
    doc = run_quick("replay", "--replay-processes", "2")  # orderhub failures replay --processes 2
    assert "--processes 2" in doc["settings"]["how"]
    checks = doc["checks"]
    n = doc["settings"]["failures"]
    assert checks["rejected_before_fix"] >= n  # every fulfilment was refused (422) and dead-lettered
    assert checks["duplicates"] == 0
    assert checks["threepl_orders"] == n
    assert checks["resolved"] == n
    assert checks["still_open"] == 0
    assert checks["submit_jobs_done"] == n
