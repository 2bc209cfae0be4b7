"""``orderhub mappings check`` and ``orderhub mappings apply``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import BaseModel

from hub.errors import MappingError
from hub.mapping import MappingSet, check_file, mappings_dir
from hub.model import Order, Refund, Return, Shipment, TrackingEvent, new_id

#: OBJECT of ``mappings apply`` -> (canonical model, id prefix).
OBJECTS: dict[str, tuple[type[BaseModel], str | None]] = {
    "order": (Order, "ord"),
    "shipment": (Shipment, "shp"),
    "tracking": (TrackingEvent, None),
    "return": (Return, "ret"),
    "refund": (Refund, "ref"),
}
PLACEHOLDER = "dry-run"


@click.group("mappings")
def mappings() -> None:
    """Declarative mapping files (mappings/<connector>/<object>.yaml)."""


def _where(err: dict[str, Any]) -> str:
    return f"{err['file']}:{err['line']}" if err.get("line") else str(err["file"])


def _print_errors(errors: list[dict[str, Any]]) -> None:
    for err in errors:
        field = f" {err['field']}" if err.get("field") else ""
        value = f" (value: {orjson.dumps(err['value']).decode()})" if err.get("value") is not None else ""
        click.echo(f"{_where(err)}:{field}: {err['message']}{value}", err=True)


@mappings.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate mapping FILES against the meta-schema (default: every file under mappings/)."""
    paths = list(files) or sorted(p for p in mappings_dir().glob("*/*.yaml") if not p.parent.name.startswith("_"))
    if not paths:
        click.echo(f"no mapping files found under {mappings_dir()}", err=True)
        sys.exit(1)
    errors = [e for p in paths for e in check_file(p)]
    if errors:
        _print_errors(errors)
        click.echo(f"{len(errors)} problem(s) in {len({e['file'] for e in errors})} of {len(paths)} file(s)", err=True)
        sys.exit(1)
    click.echo(f"{len(paths)} mapping file(s) OK")


@mappings.command("apply")
@click.argument("connector")
@click.argument("obj", metavar="OBJECT")
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping", "override", type=click.Path(exists=True, dir_okay=False), help="Use this file for OBJECT instead."
)
def apply(connector: str, obj: str, payload: Path, override: str | None) -> None:
    """Dry run: map PAYLOAD.json with CONNECTOR's OBJECT mapping and print the canonical JSON.

    Ids are fresh and `connection` is "dry-run". On errors, prints each with file, line, field
    and value, and exits 1."""
    try:
        data = orjson.loads(payload.read_bytes())
    except orjson.JSONDecodeError as exc:
        click.echo(f"{payload}: not valid JSON: {exc}", err=True)
        sys.exit(1)
    # a versioned mapping (Amazon's order_v0) maps to the object before "_v"
    base = obj if obj in OBJECTS else obj.rsplit("_v", 1)[0]
    if base not in OBJECTS:
        raise click.BadParameter(
            f"{obj!r}: OBJECT is one of {', '.join(sorted(OBJECTS))} (or a versioned name such as order_v0)"
        )
    context: dict[str, Any] | None = None
    from hub.plugins import load

    info = load()[1].connectors.get(connector)
    prepare = getattr(info.cls, "prepare_mapping", None) if info else None
    if prepare is not None:  # the connector's own pre-mapping step (e.g. Amazon joins order items)
        data, context = prepare(obj, data)
    ms = MappingSet.for_connector(connector, {obj: override} if override else None)
    model, prefix = OBJECTS[base]
    fields = model.model_fields
    extra: dict[str, Any] = {}
    if prefix and "id" in fields:
        extra["id"] = new_id(prefix)
    if "connection" in fields:
        extra["connection"] = PLACEHOLDER
    try:
        mapped = ms.map(obj, data, context)
        if "order_id" in fields and fields["order_id"].is_required() and "order_id" not in mapped:
            extra["order_id"] = PLACEHOLDER
        for stamp in ("requested_at", "created_at", "shipped_at", "occurred_at"):
            if stamp in fields and fields[stamp].is_required() and stamp not in mapped:
                extra[stamp] = datetime.now(UTC)  # the payload has no time of its own (it is in a header)
        result = ms.build(obj, data, model, extra=extra, context=context)
    except MappingError as exc:
        if exc.errors:
            _print_errors(exc.errors)
        else:
            click.echo(f"error: {exc.detail}", err=True)
        sys.exit(1)
    click.echo(orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


COMMANDS = [mappings]
