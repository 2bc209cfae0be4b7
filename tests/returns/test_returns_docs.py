"""The examples in docs/returns.md run and say what the code does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from hub.config import ReturnsConfig

DOC = (Path(__file__).parents[2] / "docs" / "returns.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def test_the_returns_config_example_is_valid() -> None:
    (toml,) = _blocks("toml")
    cfg = ReturnsConfig.model_validate(tomllib.loads(toml)["returns"])
    assert cfg.window_days == 30 and cfg.restocking_fee_percent == {"changed_mind": 10}


def test_the_python_examples_run() -> None:
    blocks = _blocks("python")
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/returns.md", "exec"), {})
