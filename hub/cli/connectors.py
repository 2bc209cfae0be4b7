"""``orderhub connectors list`` and ``orderhub connector new NAME --kind KIND``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("connectors")
def connectors() -> None:
    """Installed connector plugins."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def connectors_list(as_json: bool) -> None:
    """Every connector discovered through the `orderhub.connectors` entry points: name, kind,
    capabilities and the package it came from; then the entry points that failed to load, with why."""
    from hub.plugins import load

    _, registry = load()
    infos = sorted(registry.connectors.values(), key=lambda i: i.name)
    if as_json:
        doc = {
            "connectors": [
                {"name": i.name, "kind": i.kind, "capabilities": list(i.capabilities), "source": i.source}
                for i in infos
            ],
            "errors": dict(sorted(registry.errors.items())),
        }
        click.echo(json.dumps(doc, indent=2))
        return
    if infos:
        rows = [("NAME", "KIND", "SOURCE", "CAPABILITIES")] + [
            (i.name, i.kind, i.source, ", ".join(i.capabilities) or "-") for i in infos
        ]
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        for r in rows:
            click.echo(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    else:
        click.echo("no connector is installed (see CONTRIBUTING.md to write one)")
    if registry.errors:
        click.echo("\nfailed to load:", err=True)
        for name, why in sorted(registry.errors.items()):
            click.echo(f"  {name}: {why}", err=True)


@click.group("connector")
def connector() -> None:
    """Write a new connector."""


@connector.command("new")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["channel", "wms", "erp", "carrier"]),
    help="channel (orders in, stock out), wms (3PL/warehouse), erp, carrier.",
)
@click.option(
    "--dir",
    "dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package directory.",
)
def connector_new(name: str, kind: str, dest: Path) -> None:
    """Scaffold an installable connector package NAME of KIND whose tests pass the connector test kit."""
    from hub.scaffold import generate

    root = generate(name, kind, dest)
    click.echo(f"created {root}")
    click.echo("next:")
    click.echo(f"  cd {root}")
    click.echo("  pip install -e '.[test]'")
    click.echo("  orderhub connectors list")
    click.echo("  pytest")


COMMANDS = [connectors, connector]
