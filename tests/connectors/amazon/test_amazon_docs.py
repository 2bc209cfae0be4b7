"""The connection example in docs/connectors/amazon.md is a valid orderhub.toml, and the connector is installed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.plugins import load, settings_problems

DOC_PATH = Path(__file__).parents[3] / "docs" / "connectors" / "amazon.md"
DOC = DOC_PATH.read_text(encoding="utf-8")


def test_the_connection_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(re.findall(r'"env:([A-Z_]+)"', DOC)):
        monkeypatch.setenv(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    (toml,) = re.findall(r"```toml\n(.*?)```", DOC, flags=re.S)
    _, registry = load()
    cfg = parse_config(tomllib.loads(toml), str(DOC_PATH), lambda c: settings_problems(registry, c.connections))
    (conn,) = cfg.connections
    assert conn.connector == "amazon"
    registry.get("amazon").Settings.model_validate(conn.settings)


def test_registered_through_the_entry_point() -> None:
    _, registry = load()
    info = registry.connectors["amazon"]
    assert info.source.startswith("orderhub") and "amazon" not in registry.errors
