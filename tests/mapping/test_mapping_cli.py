"""`orderhub mappings check` and `orderhub mappings apply` (the click group, as hub.cli registers it)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hub.cli.mappings import mappings
from hub.mapping import mappings_dir

SHOPIFY = Path(__file__).resolve().parents[1] / "connectors" / "shopify" / "fixtures"


def test_check_without_arguments_validates_every_shipped_mapping() -> None:
    result = CliRunner().invoke(mappings, ["check"])
    assert result.exit_code == 0, result.output
    shipped = [p for p in mappings_dir().glob("*/*.yaml") if not p.parent.name.startswith("_")]
    assert f"{len(shipped)} mapping file(s) OK" in result.output


def test_check_prints_file_line_and_message_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "order.yaml"
    bad.write_text("mapping: order\nfields:\n  total: {path: total, type: money}\n  sku: {path: sku, colour: red}\n")
    result = CliRunner().invoke(mappings, ["check", str(bad)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{bad}:4: fields.sku: ") and "colour" in lines[0]
    assert lines[-1] == "1 problem(s) in 1 of 1 file(s)"
    good = tmp_path / "good.yaml"
    good.write_text("mapping: order\nfields:\n  total: {path: total, type: money, currency: cur}\n")
    assert CliRunner().invoke(mappings, ["check", str(good)]).exit_code == 0


def test_apply_prints_the_canonical_order_with_placeholder_ids() -> None:
    result = CliRunner().invoke(mappings, ["apply", "shopify", "order", str(SHOPIFY / "orders_create.json")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["connection"] == "dry-run"
    assert doc["id"].startswith("ord_")
    assert doc["totals"]["total"] == {"amount": "598.94", "currency": "USD"}


def test_apply_prints_every_error_with_file_line_field_and_value() -> None:
    path = SHOPIFY / "invalid" / "order_450789469_as_documented.json"
    result = CliRunner().invoke(mappings, ["apply", "shopify", "order", str(path)])
    assert result.exit_code == 1
    assert result.output == (
        f"{mappings_dir() / 'shopify' / 'order.yaml'}:119: totals.subtotal: "
        'totals.subtotal is 597.00 but the lines add up to 587.00 USD (value: "597.00")\n'
    )


def test_apply_fills_the_order_id_of_a_refund(tmp_path: Path) -> None:
    result = CliRunner().invoke(mappings, ["apply", "shopify", "refund", str(SHOPIFY / "refunds_create.json")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["id"].startswith("ref_") and doc["order_id"] == "450789469"


def test_apply_with_an_unknown_object_mapping_explains(tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    result = CliRunner().invoke(mappings, ["apply", "shopify", "tracking", str(payload)])
    assert result.exit_code == 1
    assert "connector shopify has no 'tracking' mapping" in result.output
