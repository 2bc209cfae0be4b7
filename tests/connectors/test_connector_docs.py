"""Each connector page's connection example in docs/connectors/ is a valid orderhub.toml, and each
connector is installed through the entry point."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.plugins import load, settings_problems

DOCS = Path(__file__).parents[2] / "docs" / "connectors"


@pytest.mark.parametrize("name", ["amazon", "easypost", "shipbob"])
def test_the_connection_example_validates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = DOCS / f"{name}.md"
    doc = path.read_text(encoding="utf-8")
    for var in set(re.findall(r'"env:([A-Z_]+)"', doc)):
        monkeypatch.setenv(var, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    (toml,) = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    _, registry = load()
    cfg = parse_config(tomllib.loads(toml), str(path), lambda c: settings_problems(registry, c.connections))
    (conn,) = cfg.connections
    assert conn.connector == name
    registry.get(name).Settings.model_validate(conn.settings)


@pytest.mark.parametrize("name", ["amazon", "easypost", "shipbob"])
def test_registered_through_the_entry_point(name: str) -> None:
    _, registry = load()
    info = registry.connectors[name]
    assert info.source.startswith("orderhub") and name not in registry.errors
