from __future__ import annotations

import click

from hub.config import Settings, load_config


@click.group("config")
def config() -> None:
    """Configuration (orderhub.toml and ORDERHUB_* environment)."""


@config.command("check")
def check() -> None:
    """Validate ORDERHUB_CONFIG (default ./orderhub.toml) and list every problem."""
    path = Settings().config
    cfg = load_config(path)
    click.echo(f"{path}: ok ({len(cfg.locations)} locations, {len(cfg.connections)} connections)")


COMMANDS = [config]
