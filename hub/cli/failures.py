from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

import click

from hub.config import Settings


def _filter(
    connection: str | None, operation: str | None, error: str | None, since: str | None, until: str | None, status: str
) -> Any:
    from hub.sync.failures import FailureFilter

    def dt(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None

    return FailureFilter(connection, operation, error, dt(since), dt(until), status)


_opts = [
    click.option("--connection", help="Only this connection."),
    click.option("--operation", help="Only this operation (e.g. submit_fulfillment, inbound:orders/create)."),
    click.option("--error", help="Only failures whose error contains this text."),
    click.option("--since", help="ISO time: created at or after."),
    click.option("--until", help="ISO time: created before."),
]


def _with_filters(fn: Any) -> Any:
    for o in reversed(_opts):
        fn = o(fn)
    return fn


async def _hub() -> Any:
    from hub.runtime import Hub

    return await Hub.open(Settings(), role="cli")


@click.group("failures")
def failures() -> None:
    """Dead-lettered syncs: list, show, replay."""


@failures.command("list")
@_with_filters
@click.option("--status", default="open", show_default=True, type=click.Choice(["open", "resolved", "all"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(
    connection: str | None,
    operation: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
    status: str,
    limit: int,
    as_json: bool,
) -> None:
    """List failures, newest first."""
    from hub.sync.failures import list_failures

    async def run() -> list[dict[str, Any]]:
        hub = await _hub()
        try:
            async with hub.store.connect() as conn:
                items, _ = await list_failures(
                    conn, _filter(connection, operation, error, since, until, status), limit=limit
                )
            return items
        finally:
            await hub.close()

    items = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no failures match")
    for f in items:
        click.echo(
            f"{f['id']}  {f['created_at'][:19]}  {f['status']:<8} {f['connection']:<12} {f['operation']:<28} {f['object_id'] or '-':<24} {f['last_error'][:80]}"
        )


@failures.command("show")
@click.argument("failure_id")
def show(failure_id: str) -> None:
    """Everything about one failure: errors, request, response (redacted), replays."""
    from hub.sync.failures import get_failure

    async def run() -> dict[str, Any]:
        hub = await _hub()
        try:
            async with hub.store.connect() as conn:
                return await get_failure(conn, failure_id)
        finally:
            await hub.close()

    click.echo(json.dumps(asyncio.run(run()), indent=2))


@failures.command("replay")
@click.argument("failure_ids", nargs=-1)
@_with_filters
@click.option("--all", "all_", is_flag=True, help="Replay every open failure matching the filters.")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.option("--actor", default="cli", show_default=True, help="Recorded in the replay audit.")
@click.option(
    "--concurrency",
    default=32,  # hub.sync.failures.DEFAULT_CONCURRENCY (not imported here: the CLI starts faster)
    show_default=True,
    type=click.IntRange(1, 256),
    help="Failures replayed at once. One object's failures still replay one after the other, oldest first, "
    "and a connection's max_concurrency still caps its calls.",
)
def replay(
    failure_ids: tuple[str, ...],
    connection: str | None,
    operation: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
    all_: bool,
    dry_run: bool,
    actor: str,
    concurrency: int,
) -> None:
    """Replay FAILURE_IDS, or with --all every open failure matching the filters (oldest first,
    --concurrency at a time). A failure already resolved is not run again."""
    from hub.sync.failures import FailureFilter, ReplayResult, count_failures, replay_matching

    if not failure_ids and not all_ and not any((connection, operation, error, since, until)):
        raise click.UsageError("name failure ids, or filters, or --all")

    async def run() -> list[ReplayResult]:
        hub = await _hub()
        try:
            flt: FailureFilter = _filter(connection, operation, error, since, until, "open")
            ids = list(dict.fromkeys(failure_ids)) or None
            if ids is None:
                async with hub.store.connect() as conn:
                    total = await count_failures(conn, flt)
            else:
                total = len(ids)
            label = "replaying" + (" (dry run)" if dry_run else "")
            bar: Any = click.progressbar(length=total, label=label, file=sys.stderr)
            with bar:
                return await replay_matching(
                    hub,
                    flt,
                    actor=actor,
                    dry_run=dry_run,
                    ids=ids,
                    progress=lambda _r: bar.update(1),
                    concurrency=concurrency,
                )
        finally:
            await hub.close()

    results = asyncio.run(run())
    summary: dict[str, int] = {}
    for r in results:
        summary[r.result] = summary.get(r.result, 0) + 1
        if r.result == "failed":
            click.echo(f"{r.failure_id}: still failing: {r.detail}")
        elif r.result == "in_progress":
            click.echo(f"{r.failure_id}: not run: {r.detail}")
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(summary.items())) or "nothing to replay")
    if summary.get("failed"):
        raise SystemExit(1)


COMMANDS = [failures]
