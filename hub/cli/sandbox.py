"""``orderhub sandbox``: the whole hub against simulated Shopify, Amazon, ShipBob, Odoo and EasyPost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any, TextIO

import click


class LineProgress:
    """A single updating status line on stderr (a plain line every few seconds when it is not a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_phase = ""
        self._last_print = 0.0
        self._open = False

    def update(self, phase: str, counts: dict[str, int]) -> None:
        """Show the phase and the counts (placed, received, backordered, shipped, delivered, queued)."""
        line = (
            f"[{counts.get('seconds', 0):>4}s] {phase:<38} placed {counts.get('placed', 0):>5}  "
            f"received {counts.get('received', 0):>5}  backordered {counts.get('backordered', 0):>4}  "
            f"shipped {counts.get('shipped', 0):>5}  delivered {counts.get('delivered', 0):>5}  "
            f"queued {counts.get('queued', 0):>5}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._open = True
        elif phase != self._last_phase or time.monotonic() - self._last_print > 5:
            self.stream.write(line + "\n")
            self._last_print = time.monotonic()
        self._last_phase = phase
        self.stream.flush()

    def close(self) -> None:
        """End the status line."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _scenario_help() -> str:
    from sandbox.scenarios import SCENARIOS

    return "; ".join(f"{name}: {cls.summary}" for name, cls in SCENARIOS.items())


@click.command("sandbox")
@click.option("--orders", type=click.IntRange(min=1), default=None, help="Orders to place (default: the scenario's).")
@click.option(
    "--scenario",
    type=click.Choice(["steady", "flash-sale", "3pl-outage", "returns-wave"]),
    default="steady",
    show_default=True,
    help="What happens during the run (see docs/sandbox-run.md).",
)
@click.option("--serve", is_flag=True, help="Keep everything up after the report (console, API) until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=".orderhub",
    show_default=True,
    help="Where the run's database, config and log go.",
)
def sandbox(orders: int | None, scenario: str, serve: bool, as_json: bool, home: str) -> None:
    """The whole hub against simulated Shopify, Amazon, ShipBob, Odoo and EasyPost; prints a report.

    Needs no config and nothing running: a fresh SQLite file and a private redis-server under
    ./.orderhub/, the API and a worker in this process, the five simulators on free loopback ports.
    Exits 1 when an invariant fails (oversold units, duplicate side effects, lost events, unaccounted
    webhooks, or the run did not settle).
    """
    from sandbox.run import Report, SandboxInfo, run_sandbox

    progress = None if as_json and not sys.stderr.isatty() else LineProgress()

    async def hold(info: SandboxInfo, report: Report) -> None:
        _print(report, as_json)
        click.echo(
            "\nthe sandbox keeps running until Ctrl-C:\n"
            f"  console   {info.console_url}   (log in with the token below)\n"
            f"  API       {info.api_url}/api/v1/   (Authorization: Bearer <token>)\n"
            f"  token     {info.token}\n"
            f"  config    {info.config_path}\n"
            f"  database  {info.database}\n"
            "  simulators " + ", ".join(f"{k} {v}" for k, v in info.simulators.items()),
            err=True,
        )
        await _wait_for_interrupt()

    report = asyncio.run(run_sandbox(orders, scenario, home=home, progress=progress, hold=hold if serve else None))
    if not serve:
        _print(report, as_json)
    sys.exit(0 if report.ok else 1)


def _print(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(report.text())


COMMANDS = [sandbox]
