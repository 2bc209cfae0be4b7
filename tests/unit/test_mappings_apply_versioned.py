import json
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main

FIX = Path(__file__).parents[1] / "connectors" / "amazon" / "fixtures"


def test_mappings_apply_runs_a_versioned_mapping_with_the_connectors_preparation(tmp_path: Path) -> None:
    order = json.loads((FIX / "getOrders_200.json").read_text())["payload"]["Orders"][0]
    order["OrderItems"] = json.loads((FIX / "getOrderItems_200.json").read_text())["payload"]["OrderItems"]
    p = tmp_path / "amazon-order.json"
    p.write_text(json.dumps(order))
    r = CliRunner().invoke(main, ["mappings", "apply", "amazon", "order_v0", str(p)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["external_id"] == order["AmazonOrderId"]
    assert doc["lines"][0]["sku"] == order["OrderItems"][0]["SellerSKU"]


def test_mappings_apply_names_the_objects_on_a_typo(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{}")
    r = CliRunner().invoke(main, ["mappings", "apply", "shopify", "oder", str(p)])
    assert r.exit_code != 0 and "OBJECT is one of order" in r.output
