"""``orderhub connectors list``: what is installed, and what failed to load with why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import hub.plugins
from hub.cli import main
from hub.plugins import ChannelConnector, ConnectorInfo, Registry


class Fake(ChannelConnector):
    name = "fakeshop"


def _registry() -> Registry:
    reg = Registry()
    reg.connectors["fakeshop"] = ConnectorInfo(
        name="fakeshop",
        kind="channel",
        capabilities=("push_inventory", "webhooks"),
        source="orderhub-fakeshop 1.2.0",
        cls=Fake,
    )
    reg.errors["brokenshop"] = "ModuleNotFoundError: No module named 'brokenshop_sdk'"
    return reg


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.plugins, "load", lambda **kw: (None, _registry()))


def test_list_shows_name_kind_source_capabilities_and_load_failures(fake_registry: None) -> None:
    res = CliRunner().invoke(main, ["connectors", "list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SOURCE", "CAPABILITIES"]
    assert lines[1].split() == ["fakeshop", "channel", "orderhub-fakeshop", "1.2.0", "push_inventory,", "webhooks"]
    assert "failed to load:" in res.output
    assert "brokenshop: ModuleNotFoundError: No module named 'brokenshop_sdk'" in res.output


def test_list_json(fake_registry: None) -> None:
    res = CliRunner().invoke(main, ["connectors", "list", "--json"])
    doc = json.loads(res.output)
    assert doc["connectors"] == [
        {
            "name": "fakeshop",
            "kind": "channel",
            "capabilities": ["push_inventory", "webhooks"],
            "source": "orderhub-fakeshop 1.2.0",
        }
    ]
    assert doc["errors"] == {"brokenshop": "ModuleNotFoundError: No module named 'brokenshop_sdk'"}


def test_list_shows_the_built_in_connectors_of_this_checkout() -> None:
    res = CliRunner().invoke(main, ["connectors", "list", "--json"])
    doc = json.loads(res.output)
    for info in doc["connectors"]:
        assert info["name"] and info["kind"] in {"channel", "wms", "erp", "carrier"} and info["source"]
