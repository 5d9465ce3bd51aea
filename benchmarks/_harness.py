"""Shared timing harness of the benchmark suite (not part of the library or of `make test`).

Every benchmark compares a *candidate* with a *reference* in one process. Each repeat runs
every callable of the comparison once (``inner`` calls, timed together), in an order that
rotates from one repeat to the next, and the ratio candidate / reference is taken within the
repeat: load from other processes slows both sides of one repeat alike, so ratios are far
steadier than absolute times. Times are CPU seconds of this process (``time.process_time``,
all threads), not wall-clock. A row reports the median ratio over the repeats and its range.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "_build" / "bench"


def cpu_times(fns: dict, repeats: int, inner: int = 1, warmup: int = 2) -> dict[str, list[float]]:
    """CPU seconds per call of each of ``fns`` (name -> zero-argument callable), per repeat.

    Each callable is first called ``warmup`` times (tracing, compilation); then ``repeats``
    rounds each call every callable ``inner`` times, in an order rotated by one per round.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn = fns[name]
            t0 = time.process_time()
            for _ in range(inner):
                fn()
            times[name].append((time.process_time() - t0) / inner)
    return times


def ratio_row(component: str, candidate: str, reference: str, times: dict, note: str = "") -> dict:
    """One table row: the per-repeat ratios ``times[candidate] / times[reference]``."""
    ratios = [c / r for c, r in zip(times[candidate], times[reference]) if r > 0]
    return {
        "component": component,
        "candidate": candidate,
        "reference": reference,
        "median": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "repeats": len(ratios),
        "candidate_ms": 1000 * statistics.median(times[candidate]),
        "reference_ms": 1000 * statistics.median(times[reference]),
        "note": note,
    }


def value_row(component: str, candidate: str, reference: str, value: float, note: str = "") -> dict:
    """A row that reports one number (e.g. bytes of state per parameter) instead of a ratio."""
    return {"component": component, "candidate": candidate, "reference": reference,
            "median": float(value), "low": float(value), "high": float(value), "repeats": 0,
            "candidate_ms": float("nan"), "reference_ms": float("nan"), "note": note}


def failed_row(component: str, candidate: str, reference: str, error: BaseException) -> dict:
    """A row for a candidate that could not run (e.g. a model that XLA cannot compile)."""
    message = f"fails: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
    return {"component": component, "candidate": candidate, "reference": reference,
            "median": float("nan"), "low": float("nan"), "high": float("nan"), "repeats": 0,
            "candidate_ms": float("nan"), "reference_ms": float("nan"), "note": message}


def format_table(rows: list[dict]) -> str:
    """Rows as a Markdown table."""
    lines = ["| component | candidate | reference | ratio (median) | range | repeats | "
             "candidate ms | reference ms | note |",
             "|---|---|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        if r["repeats"]:
            ratio, rng = f"{r['median']:.2f}", f"{r['low']:.2f}–{r['high']:.2f}"
            cms, rms = f"{r['candidate_ms']:.2f}", f"{r['reference_ms']:.2f}"
        elif r["median"] == r["median"]:  # a value row
            ratio, rng, cms, rms = f"{r['median']:.3g}", "", "", ""
        else:
            ratio, rng, cms, rms = "—", "", "", ""
        lines.append(f"| {r['component']} | {r['candidate']} | {r['reference']} | {ratio} | "
                     f"{rng} | {r['repeats'] or ''} | {cms} | {rms} | {r['note']} |")
    return "\n".join(lines)


def main(name: str, run) -> None:
    """Command line of one benchmark script: ``run(quick) -> rows``; print, optionally save."""
    parser = argparse.ArgumentParser(description=f"benchmark: {name}")
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = run(args.quick)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(format_table(rows))
    print(f"[{name}: {wall:.0f} s wall, {cpu:.0f} s CPU]", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"name": name, "wall_s": wall, "cpu_s": cpu,
                                         "rows": rows}, indent=1))
