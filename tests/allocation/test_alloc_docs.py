"""The examples in docs/allocation.md run and say what the code does."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alloc_factories import HAMBURG, PARIS, POTSDAM, levels, loc, order

from hub import policies
from hub.config import HubConfig
from hub.model import OrderStatus
from hub.plugins.manager import PluginManager

DOC = (Path(__file__).parents[2] / "docs" / "allocation.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def example() -> dict[str, Any]:
    config = HubConfig(
        locations=[
            loc("potsdam", coords=POTSDAM, priority=30, shipment_cost="9.00"),
            loc("hamburg", coords=HAMBURG, priority=20, shipment_cost="5.00"),
            loc("paris", country="FR", coords=PARIS, ships_to=["FR"]),
        ],
        allocation={"strategy": "nearest"},
    )
    pm = PluginManager()
    pm.register(policies, name="orderhub.defaults")
    return {
        "order": order([("A", 2)]),
        "stock": levels({("A", "potsdam"): 2, ("A", "hamburg"): 2, ("A", "paris"): 5}),
        "config": config,
        "plugins": pm,
        "now": datetime(2026, 3, 2, 10, tzinfo=UTC),
    }


def test_the_python_example_runs() -> None:
    ns = example()
    exec(blocks("python")[0], ns)
    assert ns["plan"].status is OrderStatus.ALLOCATED


def test_the_explanation_example_is_what_the_example_plan_explains() -> None:
    ns = example()
    exec(blocks("python")[0], ns)
    assert json.loads(blocks("json")[0]) == ns["plan"].explanation()
