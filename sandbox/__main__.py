"""``python -m sandbox [--host H]``: serve the five simulators and print their URLs as JSON until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from sandbox.systems import start_all


async def _serve(host: str) -> None:
    systems = await start_all(host)
    print(json.dumps(systems.urls(), indent=2), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await systems.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host))


if __name__ == "__main__":
    main()
