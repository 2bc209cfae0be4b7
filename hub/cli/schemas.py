from __future__ import annotations

from pathlib import Path

import click

from hub import schemas as s


@click.group("schemas")
def schemas() -> None:
    """JSON Schemas of the canonical model and partner events."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write the JSON Schema of every canonical object and event type into DIRECTORY."""
    files = s.export(directory)
    click.echo(f"wrote {len(files)} schemas to {directory}")


COMMANDS = [schemas]
