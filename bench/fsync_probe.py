"""How long the disk under PostgreSQL takes to make a write durable, at the pace of the webhooks.

    python -m bench.fsync_probe [--seconds 20] [--rate 500] [--dir PATH] [--no-record]

Every acknowledged webhook waits for a commit, and a commit waits for PostgreSQL's WAL to reach the
disk (``fdatasync``). This writes 8 kB and calls ``fdatasync`` ``--rate`` times a second for
``--seconds`` in ``--dir`` (default: PostgreSQL's data directory, read from the server, else the
current directory) and reports the latency distribution and every call over 20 ms. A disk that
stalls for hundreds of milliseconds now and then holds every webhook that arrives meanwhile, whatever
the hub does: read the ``intake`` and ``ingest`` ack figures next to this. Writes
``bench/results/<date>-fsync-probe.json`` (the machine, the settings and the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._harness import PG_ADMIN
from bench._report import RESULTS, write_result

STALL_MS = 20.0


def data_directory() -> Path | None:
    """PostgreSQL's data directory, when the server tells it (superuser) and this process can write there."""
    import asyncio

    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            return str(await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()

    try:
        path = Path(asyncio.run(ask())).parent  # beside it: the same filesystem, nothing of the server touched
    except Exception:
        return None
    return path if os.access(path, os.W_OK) else None


def probe(directory: Path, seconds: float, rate: float) -> dict[str, Any]:
    """``rate`` 8 kB write + fdatasync calls a second for ``seconds`` in a scratch file under ``directory``."""
    fd, name = tempfile.mkstemp(prefix="orderhub-fsync-", dir=directory)
    buf = os.urandom(8192)
    lat: list[tuple[float, float]] = []
    try:
        t0 = time.perf_counter()
        for i in range(int(seconds * rate)):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            start = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((start - t0, (time.perf_counter() - start) * 1000))
    finally:
        os.close(fd)
        os.unlink(name)
    ms = sorted(x for _, x in lat)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(len(ms) * p))], 2)

    stalls = [{"at_s": round(t, 2), "ms": round(x, 1)} for t, x in lat if x > STALL_MS]
    return {
        "settings": {"directory": str(directory), "seconds": seconds, "rate": rate, "write_bytes": len(buf)},
        "fdatasync_ms": {"p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999), "max": round(ms[-1], 1)},
        "stalls_over_20ms": stalls,
        "figures": {
            "fdatasync p50/p99/max ms": f"{pct(0.5)} / {pct(0.99)} / {round(ms[-1], 1)}",
            f"calls over {STALL_MS:g} ms": len(stalls),
            "stalled seconds (sum of those calls)": round(sum(s["ms"] for s in stalls) / 1000, 2),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fsync_probe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=500.0, help="fdatasync calls per second")
    ap.add_argument("--dir", type=Path, default=None, help="default: beside PostgreSQL's data directory")
    ap.add_argument("--no-record", action="store_true", help="print only; write nothing to bench/results/")
    args = ap.parse_args()
    directory = args.dir or data_directory() or Path.cwd()
    result = probe(directory, args.seconds, args.rate)
    doc = write_result("fsync-probe", result, {"seconds": args.seconds, "rate": args.rate}, record=False)
    doc["command"] = doc["command"].replace("python -m bench fsync-probe", "python -m bench.fsync_probe")
    if not args.no_record:
        out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-fsync-probe.json"
        out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        doc["written_to"] = str(out)
    print(json.dumps({k: doc[k] for k in ("fdatasync_ms", "figures", "settings") if k in doc}, indent=1))


if __name__ == "__main__":
    main()
