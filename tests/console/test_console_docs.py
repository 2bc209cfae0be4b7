"""docs/console.md: its config example is valid and it documents every page of the console."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hub.config import HubConfig
from hub.console._views import NAV

DOC = Path(__file__).parents[2] / "docs" / "console.md"


def test_the_token_example_is_a_valid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block
    monkeypatch.setenv("ORDERHUB_OPS_TOKEN", "a-long-enough-ops-token-0123")
    cfg = HubConfig.model_validate(tomllib.loads(block.group(1)))
    assert cfg.api_tokens[0].scopes == ["read", "ops"]


def test_every_page_and_the_screenshot_are_documented() -> None:
    text = DOC.read_text()
    for _, _, label in NAV:
        assert f"**{label}.**" in text, label
    assert (DOC.parent / "img" / "console-dashboard.png").stat().st_size > 10_000
