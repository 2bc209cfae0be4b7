"""The connection example in docs/connectors/odoo.md is a valid orderhub.toml for the odoo connector."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.plugins import load, settings_problems

DOC = (Path(__file__).parents[3] / "docs" / "connectors" / "odoo.md").read_text(encoding="utf-8")


def test_the_connection_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODOO_API_KEY", "6578616d706c65206a736f6e20617069206b6579")
    (toml,) = re.findall(r"```toml\n(.*?)```", DOC, flags=re.S)
    _, registry = load()
    cfg = parse_config(
        tomllib.loads(toml), "docs/connectors/odoo.md", lambda c: settings_problems(registry, c.connections)
    )
    settings = registry.get("odoo").Settings.model_validate(cfg.connection("odoo").settings)
    assert settings.model_dump()["tax_map"] == {"0.2": 1, "TVA 5.5%": 6}
