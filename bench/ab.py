"""``python -m bench.ab --base REV [--rounds N] -- SCENARIO [bench options]``: a before/after on a noisy VM.

Checks out ``REV`` (a commit, branch or tag) in a temporary git worktree and runs
``python -m bench SCENARIO [options] --no-record --json`` alternately there and in this checkout
(``head``), ``--rounds`` times each, swapping which side goes first every round, so that both
meet the same minutes of a VM whose speed drifts (session 10 saw the same code run three times
slower from one hour to the next). Both sides use this interpreter and its installed packages;
each side's own code comes first on ``PYTHONPATH``. Prints, for the main figures (throughputs,
latencies, CPU per order, correctness counts; ``--figure`` adds more), each run's value, the medians
and head's median against base's, and the speed probe (the fixed loop each run times) so that a
slow minute can be told from a slow change. ``--json`` prints the runs and the medians instead. Nothing is written to ``bench/results/``.

    python -m bench.ab --base HEAD~1 --rounds 3 -- ingest --orders 4000 --rate-orders 4000 --rate 200 --workers 2
    python -m bench.ab --base HEAD --base-args "--inbox-gather-ms 0" -- ingest --orders 2000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: dotted paths of a result that are settings or descriptions, not figures
_SKIP = ("machine", "settings", "command", "at", "benchmark", "figures", "targets", "seconds")
#: figures shown by default (substrings of their dotted paths); --figure adds to or replaces them
DEFAULT_FIGURES = (
    "orders_per_second",
    "sustained_orders_per_second",
    "ack_ms.p50",
    "ack_ms.p99",
    "webhook_to_allocated_ms.p50",
    "webhook_to_allocated_ms.p99",
    "orders_per_transaction",
    "cpu_ms_per_order.hub_total",
    "cpu_ms_per_order.api",
    "cpu_ms_per_order.postgresql",
    "cpu_ms_per_webhook",
    "replays_per_second",
    "coalescing_ratio",
    "oversold_units",
    "duplicates",
    "speed_probe_ms",
)

Runner = Callable[[str, Path, list[str]], dict[str, Any]]


def flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every numeric leaf of a result as (dotted path, value); settings and descriptions left out."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if not prefix and key in _SKIP:
                continue
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield prefix, float(doc)


def order_of_rounds(rounds: int) -> list[str]:
    """The sides in the order they run: base, head, then head, base, and so on."""
    out: list[str] = []
    for r in range(rounds):
        out += ["base", "head"] if r % 2 == 0 else ["head", "base"]
    return out


def summarise(runs: dict[str, list[dict[str, Any]]], figures: Iterable[str]) -> list[dict[str, Any]]:
    """One row per figure: each side's values in run order, their medians and head / base."""
    wanted = tuple(figures)
    values: dict[str, dict[str, list[float]]] = {}
    for side in ("base", "head"):
        for doc in runs[side]:
            for path, v in flatten(doc):
                if any(w in path for w in wanted):
                    values.setdefault(path, {"base": [], "head": []})[side].append(v)
    rows = []
    for path, sides in values.items():
        if not sides["base"] or not sides["head"]:
            continue
        mb, mh = statistics.median(sides["base"]), statistics.median(sides["head"])
        rows.append(
            {
                "figure": path,
                "base": sides["base"],
                "head": sides["head"],
                "median_base": mb,
                "median_head": mh,
                "head_vs_base": round(mh / mb, 3) if mb else None,
            }
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain table."""
    if not rows:
        return "no figure in common"
    width = max(len(r["figure"]) for r in rows)

    def fmt(vs: list[float]) -> str:
        return " ".join(f"{v:g}" for v in vs)

    lines = [f"{'figure':<{width}}  median base -> head (head/base)   base runs | head runs"]
    for r in rows:
        ratio = f"{r['head_vs_base']:.3f}" if r["head_vs_base"] is not None else "-"
        lines.append(
            f"{r['figure']:<{width}}  {r['median_base']:g} -> {r['median_head']:g} ({ratio})"
            f"   {fmt(r['base'])} | {fmt(r['head'])}"
        )
    return "\n".join(lines)


def run_bench(side: str, where: Path, args: list[str]) -> dict[str, Any]:
    """One ``python -m bench`` run of the code in ``where``; its JSON result."""
    path = [str(where), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--no-record", "--json"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):  # 1: a correctness check failed, which the figures show
        raise RuntimeError(f"the {side} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(f"the {side} run printed no JSON: {proc.stdout[-500:]} {proc.stderr[-1500:]}") from None
    return doc


def compare(
    base_dir: Path,
    head_dir: Path,
    args: list[str],
    rounds: int,
    run: Runner = run_bench,
    extra: tuple[list[str], list[str]] = ([], []),
) -> dict[str, list[dict[str, Any]]]:
    """Run both sides alternately (``extra``: options added to the base's and to the head's runs);
    every run's result by side."""
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    for side in order_of_rounds(rounds):
        doc = run(side, base_dir if side == "base" else head_dir, [*args, *extra[0 if side == "base" else 1]])
        runs[side].append(doc)
        print(f"{side} run {len(runs[side])} done", file=sys.stderr, flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, bench_args = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(prog="python -m bench.ab", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--base", required=True, help="the commit, branch or tag to compare this checkout against")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side (default 3)")
    ap.add_argument(
        "--figure", action="append", default=[], help="also show figures whose dotted path contains this (repeatable)"
    )
    ap.add_argument("--only", action="store_true", help="show only the --figure figures, not the default ones")
    ap.add_argument(
        "--base-args",
        default="",
        metavar="ARGS",
        help='options added to the base side\'s runs only, e.g. "--inbox-gather-ms 0" (with --base HEAD: a '
        "before/after of a setting)",
    )
    ap.add_argument("--head-args", default="", metavar="ARGS", help="options added to this checkout's runs only")
    ap.add_argument("--json", action="store_true", help="print the runs and the medians as JSON")
    a = ap.parse_args(argv)
    if not bench_args:
        ap.error("give the benchmark after --, e.g. -- ingest --orders 4000 --workers 2")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="orderhub-ab-") as tmp:
        base_dir = Path(tmp) / "base"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_dir), a.base], cwd=ROOT, capture_output=True, text=True
        )
        if added.returncode != 0:
            print(f"cannot check out {a.base!r}: {added.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            runs = compare(
                base_dir, ROOT, bench_args, a.rounds, extra=(shlex.split(a.base_args), shlex.split(a.head_args))
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT, check=False)
    figures = a.figure if a.only else [*DEFAULT_FIGURES, *a.figure]
    rows = summarise(runs, figures)
    if a.json:
        print(json.dumps({"base": a.base, "args": bench_args, "runs": runs, "figures": rows}, indent=1))
    else:
        sides = f"base {a.base} {a.base_args}".rstrip() + " against this checkout " + a.head_args
        print(f"{sides.rstrip()}, {a.rounds} run(s) each: python -m bench {' '.join(bench_args)}")
        print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
