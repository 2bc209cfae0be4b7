"""Recorded results (bench/results/<date>-<scenario>.json), the printed table and the README table."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
BEGIN = "<!-- results:begin (written by python -m bench) -->"
END = "<!-- results:end -->"
ORDER = ["ingest", "flash-sale", "inventory-burst", "replay", "scale"]


def _server_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and the versions that matter."""
    import psutil

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for pkg in ("orderhub", "aiohttp", "sqlalchemy", "asyncpg", "aiosqlite", "arq", "redis", "pydantic", "orjson"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    versions["postgresql"] = _server_version(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version", "test"]
    )
    versions["redis-server"] = _server_version(["redis-cli", "-h", "127.0.0.1", "INFO", "server"])
    if versions["redis-server"] and "redis_version" not in versions["redis-server"]:
        info = _server_version(["redis-server", "--version"])
        versions["redis-server"] = info
    return {
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def speed_probe() -> float:
    """Milliseconds a fixed pure-Python loop takes here (best of five): the development VMs' speed
    drifts by a third within the hour, and a result is only comparable with runs of a similar probe."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        sum(i * i for i in range(2_000_000))
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


# what a benchmark run does not execute: edited during a run, it does not make the run irreproducible
_NOT_RUN = ("docs", "*.md", "bench/results")


def code_revision() -> dict[str, Any]:
    """The commit the run measured, and whether the checkout had uncommitted changes to what runs
    (then the commit alone does not reproduce it: documentation and the results this run writes
    do not count); None for a copy without git."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in _NOT_RUN))
    return {"commit": commit, "uncommitted_changes": bool(status) if status is not None else None}


def write_result(name: str, result: dict[str, Any], args: dict[str, Any], *, record: bool) -> dict[str, Any]:
    """The result document; written to bench/results/ unless ``record`` is False (``--quick`` runs
    are written as ``<date>-<scenario>-quick.json`` and never shown in the README)."""
    import json

    doc = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench "
        + name
        + "".join(
            f" --{k.replace('_', '-')} {v}"
            for k, v in args.items()
            if k not in ("scenario",) and v not in (None, False)
        ).replace(" True", ""),
        "machine": machine(),
        "code": code_revision(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **result,
    }
    if record:
        suffix = "-quick" if args.get("quick") else ""
        out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{name}{suffix}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        doc["written_to"] = str(out)
    return doc


def render_table(name: str, doc: dict[str, Any]) -> str:
    """Figures, targets and checks of one run as a plain-text table."""
    rows: list[tuple[str, str]] = [(k, str(v)) for k, v in doc.get("figures", {}).items()]
    lines = [f"== {name} ({doc.get('seconds', '?')} s, {doc['machine']['cores']} cores) =="]
    width = max((len(k) for k, _ in rows), default=10)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    for t in doc.get("targets", []):
        lines.append(f"  target {t['target']}: {t['value']} (goal {t['goal']}) {'MET' if t['met'] else 'MISSED'}")
    checks = doc.get("checks", {})
    if checks:
        lines.append("  checks: " + ", ".join(f"{k}={v}" for k, v in checks.items()))
    if doc.get("written_to"):
        lines.append(f"  written to {doc['written_to']}")
    return "\n".join(lines)


def latest() -> dict[str, dict[str, Any]]:
    """The newest recorded (non-quick) result of each scenario."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for p in sorted(RESULTS.glob("*.json")):
        if p.stem.endswith("-quick"):
            continue
        try:
            doc = json.loads(p.read_text())
        except ValueError:
            continue
        name = doc.get("benchmark")
        # by the run's own time, not the file name (an older run's file may be kept under another name)
        if name in ORDER and (name not in out or str(doc.get("at", "")) >= str(out[name].get("at", ""))):
            out[name] = doc
    return out


def _probe(doc: dict[str, Any]) -> str:
    """The VM's speed at the run (the speed probe before / after, ms: larger is slower), if recorded."""
    p = doc.get("speed_probe_ms")
    if not isinstance(p, dict) or not isinstance(p.get("before"), (int, float)):
        return ""
    after = p.get("after")
    return (
        f", probe {p['before']:g} / {after:g} ms" if isinstance(after, (int, float)) else f", probe {p['before']:g} ms"
    )


def markdown_table(docs: dict[str, dict[str, Any]]) -> str:
    lines = ["| scenario | size | target | measured | met | run |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ORDER:
        doc = docs.get(name)
        if not doc:
            continue
        for t in doc.get("targets", []):
            size = ", ".join(f"{k} {v}" for k, v in doc.get("settings", {}).items() if isinstance(v, int))
            lines.append(
                f"| {name} | {size} | {t['target']} {t['goal']} | {t['value']} | {'yes' if t['met'] else '**no**'} "
                f"| {doc['at'][:10]}, {doc['machine']['cores']} cores, load {doc.get('load_average_1m')}{_probe(doc)} |"
            )
    lines += ["", "| scenario | figure | value |", "| --- | --- | --- |"]
    for name in ORDER:
        doc = docs.get(name)
        for k, v in (doc or {}).get("figures", {}).items():
            lines.append(f"| {name} | {k} | {v} |")
        for phase in ("max_throughput", "at_rate"):
            r = (doc or {}).get(phase)
            if r and "cpu_ms_per_order" in r:
                ms = r["cpu_ms_per_order"]
                workers = round(sum(v for k, v in ms.items() if k.startswith("worker")), 1)
                lines.append(
                    f"| {name} | CPU ms per order, {phase} (workers / API / PostgreSQL) "
                    f"| {workers} / {ms.get('api')} / {ms.get('postgresql')} |"
                )
                lines.append(
                    f"| {name} | CPU-bound ceiling on idle cores, {phase} (orders/s) "
                    f"| {r.get('projected_orders_per_second_on_idle_cores')} |"
                )
    return "\n".join(lines)


def update_readme() -> None:
    """Rewrite the results table between the markers of bench/README.md."""
    if not README.exists():
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + "\n" + markdown_table(latest()) + "\n" + END + tail)
