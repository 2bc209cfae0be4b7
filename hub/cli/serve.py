from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from hub.config import Settings


async def run_server(host: str, port: int, *, worker: bool | None = None, ready: asyncio.Event | None = None) -> None:
    """Serve the API until cancelled (or SIGINT/SIGTERM). With no ORDERHUB_REDIS_URL (the embedded
    default) an in-process worker runs too, on the hub's private Redis."""
    from aiohttp import web

    from hub.api import make_app
    from hub.logging import configure
    from hub.runtime import Hub
    from hub.sync.queue import ArqQueue
    from hub.sync.worker import make_worker

    settings = Settings()
    configure(settings.log_level)
    embedded = not settings.redis_url
    hub = await Hub.open(settings, role="api")
    hub.state["queue"] = await ArqQueue.connect(hub.state["redis_url"], settings.redis_prefix)
    runner = web.AppRunner(make_app(hub), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    wk = None
    wtask = None
    if worker if worker is not None else embedded:
        s2 = settings.model_copy(update={"redis_url": hub.state["redis_url"]})
        wk = make_worker(s2, hub.state["redis_url"], handle_signals=False)
        wtask = asyncio.create_task(wk.async_run())
    from hub.runtime import freeze_startup_objects

    freeze_startup_objects()
    click.echo(f"orderhub serving on http://{host}:{port} (console /console/, metrics /metrics)", err=True)
    if ready:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if wk is not None and wtask is not None:
            await wk.close()
            wtask.cancel()
            with contextlib.suppress(BaseException):
                await wtask
        await runner.cleanup()
        await hub.state["queue"].close()
        await hub.close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--worker/--no-worker", default=None, help="Run a worker in-process (default: only with the embedded Redis)."
)
def serve(host: str, port: int, worker: bool | None) -> None:
    """The HTTP API, inbound webhooks, /metrics and the ops console."""
    asyncio.run(run_server(host, port, worker=worker))


@click.command("worker")
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(1),
    help="Jobs run at once by this worker (default 1: hub.sync.worker.DEFAULT_CONCURRENCY).",
)
@click.option("--burst", is_flag=True, help="Process what is queued, then exit.")
@click.option(
    "--nice",
    default=0,
    show_default=True,
    type=click.IntRange(0, 19),
    help="Lower this worker's CPU priority (os.nice): on a machine shared with `orderhub serve`, webhook "
    "intake keeps its latency while a backlog drains (the backlog is durable; it only waits).",
)
def worker(concurrency: int | None, burst: bool, nice: int) -> None:
    """An arq worker; any number may run, on any number of machines (they share ORDERHUB_REDIS_URL)."""
    import os

    from hub.runtime import WORKER_GC_THRESHOLDS, tune_gc
    from hub.sync.worker import DEFAULT_CONCURRENCY, make_worker

    if nice:
        os.nice(nice)
    tune_gc(WORKER_GC_THRESHOLDS)
    settings = Settings()
    if not settings.redis_url:
        raise click.UsageError("set ORDERHUB_REDIS_URL: workers on several processes must share one Redis")
    make_worker(settings, settings.redis_url, concurrency=concurrency or DEFAULT_CONCURRENCY, burst=burst).run()


COMMANDS = [serve, worker]
