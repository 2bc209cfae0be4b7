"""The worked example of docs/mappings.md, run as written (payload, mapping, result, errors)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli.mappings import mappings
from hub.mapping import ENV_DIR, MappingSet
from hub.model import Order, new_id

DOC = Path(__file__).resolve().parents[2] / "docs" / "mappings.md"


def blocks() -> dict[str, str]:
    text = DOC.read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)```", text, re.S)}


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    b = blocks()
    root = tmp_path / "mappings"
    (root / "marketplace").mkdir(parents=True)
    (root / "marketplace" / "order.yaml").write_text(b["mapping"])
    monkeypatch.setenv(ENV_DIR, str(root))
    return tmp_path, b


def test_the_worked_example_gives_the_documented_result(example: tuple[Path, dict[str, str]]) -> None:
    _, b = example
    payload = json.loads(b["payload"])
    ms = MappingSet.for_connector("marketplace")
    assert ms.apply("order", payload) == json.loads(b["result"])
    order = ms.build("order", payload, Order, extra={"id": new_id("ord"), "connection": "mp"})
    assert str(order.totals.total) == "41.80 EUR"


def _dry_run(tmp: Path, payload: dict[str, object]) -> tuple[int, str]:
    path = tmp / "payload.json"
    path.write_text(json.dumps(payload))
    result = CliRunner().invoke(mappings, ["apply", "marketplace", "order", str(path)])
    return result.exit_code, result.output.replace(f"{tmp}/", "")


def test_the_documented_errors_are_what_the_dry_run_prints(example: tuple[Path, dict[str, str]]) -> None:
    tmp, b = example
    payload = json.loads(b["payload"])
    no_sku = copy.deepcopy(payload)
    del no_sku["items"][1]["sku"]
    assert _dry_run(tmp, no_sku) == (1, b["errors"])
    bad_total = copy.deepcopy(payload)
    bad_total["sums"]["items"] = "37.60"
    assert _dry_run(tmp, bad_total) == (1, b["totals-error"])


def test_the_example_mapping_passes_check(example: tuple[Path, dict[str, str]]) -> None:
    tmp, _ = example
    result = CliRunner().invoke(mappings, ["check", str(tmp / "mappings" / "marketplace" / "order.yaml")])
    assert result.exit_code == 0, result.output
