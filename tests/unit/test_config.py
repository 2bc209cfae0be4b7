from pathlib import Path

import pytest

from hub.config import load_config
from hub.errors import ConfigError

GOOD = """
[[locations]]
id = "berlin"
name = "Berlin DC"
kind = "warehouse"
country = "DE"
latitude = 52.52
longitude = 13.40
fulfilled_by = "shipbob"

[[connections]]
id = "shipbob"
connector = "shipbob"
[connections.settings]
access_token = "env:TEST_SHIPBOB_TOKEN"

[[api_tokens]]
name = "ops"
scopes = ["read", "ops"]
token = "env:TEST_OPS_TOKEN"
"""


def test_good_config_with_env_indirection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SHIPBOB_TOKEN", "sb-secret")
    monkeypatch.setenv("TEST_OPS_TOKEN", "0123456789abcdef-ops")
    p = tmp_path / "orderhub.toml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.connection("shipbob").settings["access_token"] == "sb-secret"
    assert cfg.api_tokens[0].token.get_secret_value() == "0123456789abcdef-ops"
    assert "0123456789abcdef-ops" not in repr(cfg)


def test_bad_config_lists_every_problem(tmp_path: Path) -> None:
    p = tmp_path / "orderhub.toml"
    p.write_text(
        """
[[locations]]
id = "x"
name = "X"
kind = "garage"
country = "ZZ"

[[connections]]
id = "Bad Id"
connector = "shopify"

[[api_tokens]]
name = "t"
scopes = ["root"]
token = "env:DEFINITELY_NOT_SET_123"
"""
    )
    with pytest.raises(ConfigError) as err:
        load_config(p)
    text = str(err.value)
    where = [w for w, _, _ in err.value.problems]
    assert any("locations[0].kind" in w for w in where)
    assert any("locations[0].country" in w for w in where)
    assert any("connections[0].id" in w for w in where)
    assert any("api_tokens[0].scopes" in w for w in where)
    assert "DEFINITELY_NOT_SET_123 is not set" in text
    assert str(p) in text


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "orderhub.toml"
    p.write_text("[[locations]\nid=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


def test_cli_prints_config_problems_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    p = tmp_path / "orderhub.toml"
    p.write_text('[allocation]\nstrategy = "random"\n')
    r = subprocess.run(
        [sys.executable, "-m", "hub", "config", "check"],
        capture_output=True,
        text=True,
        env={"ORDERHUB_CONFIG": str(p), "PATH": "/usr/bin"},
        check=False,
    )
    assert r.returncode == 2
    assert "allocation.strategy" in r.stderr
    assert "Traceback" not in r.stderr
