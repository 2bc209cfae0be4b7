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
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Split the failures over this many processes (one per core): one object's failures stay in one "
    "process, oldest first; --concurrency applies to each.",
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
    processes: int,
) -> None:
    """Replay FAILURE_IDS, or with --all every open failure matching the filters (oldest first,
    --concurrency at a time). A failure already resolved is not run again."""
    from hub.sync.failures import FailureFilter, ReplayResult, count_failures, replay_matching

    if not failure_ids and not all_ and not any((connection, operation, error, since, until)):
        raise click.UsageError("name failure ids, or filters, or --all")

    if processes > 1:
        flt = _filter(connection, operation, error, since, until, "open")
        _report(
            _replay_in_processes(flt, list(dict.fromkeys(failure_ids)) or None, processes, actor, dry_run, concurrency)
        )
        return

    async def run() -> list[ReplayResult]:
        hub = await _hub()
        _settle_gc()
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

    _report(asyncio.run(run()))


def _report(results: list[Any]) -> None:
    """Print the failures still failing or not run, then the summary; exit 1 if any still fails."""
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


def _settle_gc() -> None:
    """Before replaying: what start-up built goes out of the collector's view (collections took 27 %
    of a replaying process's CPU walking it) and the collector runs at the batch thresholds."""
    from hub.runtime import BATCH_GC_THRESHOLDS, freeze_startup_objects, tune_gc

    freeze_startup_objects()
    tune_gc(BATCH_GC_THRESHOLDS)


def _replay_in_processes(
    flt: Any, ids: list[str] | None, processes: int, actor: str, dry_run: bool, concurrency: int
) -> list[Any]:
    """``replay`` over ``processes`` child processes, one shard of the failures each (see
    ``hub.sync.failures.shard_matching``); one progress bar; the results in creation order."""
    import multiprocessing
    from queue import Empty

    from hub.sync.failures import ReplayResult, shard_matching

    async def plan() -> list[list[str]]:
        hub = await _hub()
        try:
            return await shard_matching(hub, flt, processes, ids=ids)
        finally:
            await hub.close()

    shards = [s for s in asyncio.run(plan()) if s]
    if not shards:
        return []
    # Linux: forked from this process, whose event loop and pools are closed by now (asyncio.run has
    # returned), so each child starts with the hub's modules imported; a spawned interpreter spent
    # about 2 s of CPU importing them again (a fifth of the CPU of replaying 10,000 failures).
    # Elsewhere (macOS, Windows) fork is unsafe or missing: a fresh interpreter.
    mp: Any = (
        multiprocessing.get_context("fork")
        if sys.platform.startswith("linux")
        else multiprocessing.get_context("spawn")
    )
    _settle_gc()  # before the fork: the children inherit the frozen start-up objects and the thresholds
    queue = mp.Queue()
    children = [
        mp.Process(target=_replay_shard, args=(i, ids_, actor, dry_run, concurrency, queue))
        for i, ids_ in enumerate(shards)
    ]
    for c in children:
        c.start()
    results: dict[int, list[ReplayResult]] = {}
    errors: dict[int, str] = {}
    label = "replaying" + (" (dry run)" if dry_run else "") + f" in {len(children)} processes"
    with click.progressbar(length=sum(map(len, shards)), label=label, file=sys.stderr) as bar:
        while len(results) + len(errors) < len(children):
            try:
                kind, shard, payload = queue.get(timeout=1.0)
            except Empty:  # a child that died without a word (killed) must not leave us waiting
                for i, c in enumerate(children):
                    if i not in results and i not in errors and c.exitcode not in (None, 0):
                        errors[i] = f"exited with code {c.exitcode}"
                continue
            if kind == "progress":
                bar.update(payload)
            elif kind == "done":
                results[shard] = [ReplayResult(*r) for r in payload]
            else:
                errors[shard] = payload
    for c in children:
        c.join()
    if errors:
        raise click.ClickException("; ".join(f"replay process {i}: {e}" for i, e in sorted(errors.items())))
    return sorted((r for rs in results.values() for r in rs), key=lambda r: r.failure_id)  # creation order


def _replay_shard(shard: int, ids: list[str], actor: str, dry_run: bool, concurrency: int, queue: Any) -> None:
    """One child of :func:`_replay_in_processes`: replay ``ids``; progress every 50 results."""
    from hub.sync.failures import FailureFilter, ReplayResult, replay_matching

    done = [0]

    def progress(_r: ReplayResult) -> None:
        done[0] += 1
        if done[0] == 50:
            queue.put(("progress", shard, done[0]))
            done[0] = 0

    async def run() -> list[ReplayResult]:
        hub = await _hub()
        try:
            return await replay_matching(
                hub,
                FailureFilter(status=None),
                actor=actor,
                dry_run=dry_run,
                ids=ids,
                progress=progress,
                concurrency=concurrency,
            )
        finally:
            await hub.close()

    try:
        results = asyncio.run(run())
    except Exception as exc:  # reported by the parent, which exits non-zero
        queue.put(("error", shard, f"{type(exc).__name__}: {exc}"))
        return
    queue.put(("progress", shard, done[0]))
    queue.put(("done", shard, [(r.failure_id, r.result, r.detail) for r in results]))


COMMANDS = [failures]
