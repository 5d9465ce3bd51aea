"""Run every benchmark of the suite and write the table (``make bench``).

Each ``bench_*.py`` runs in its own process (one component, its own TensorFlow state) and
leaves its rows as JSON under ``_build/bench/``; this script gathers them into
``_build/bench/bench.md``, a Markdown table of CPU-time ratios (median and range over
interleaved repeats, see ``_harness.py``). ``--only heads,decoders`` runs a subset,
``--quick`` runs fewer repeats, ``--out`` names another table file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _harness  # noqa: E402

SCRIPTS = ["heads", "decoders", "pooling", "grad_accum", "adafactor", "capsules", "recompute"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of " + ", ".join(SCRIPTS))
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, default=_harness.OUT_DIR / "bench.md")
    args = parser.parse_args()
    names = SCRIPTS if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = sorted(set(names) - set(SCRIPTS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {SCRIPTS}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    rows, timings = [], []
    start = time.perf_counter()
    for name in names:
        out = _harness.OUT_DIR / f"{name}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--json", str(out)]
        if args.quick:
            cmd.append("--quick")
        print(f"== {name}", flush=True)
        proc = subprocess.run(cmd, env=env, cwd=HERE.parent)
        if proc.returncode != 0 or not out.exists():
            rows.append(_harness.failed_row(name, "(script)", "", RuntimeError(
                f"bench_{name}.py exited with {proc.returncode}")))
            continue
        result = json.loads(out.read_text())
        rows += result["rows"]
        timings.append(f"{name} {result['wall_s']:.0f} s")
    total = time.perf_counter() - start
    import keras
    header = [
        "# Benchmarks",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), Python {platform.python_version()}, "
        f"Keras {keras.__version__} ({keras.backend.backend()}){', quick' if args.quick else ''}. "
        f"Wall time {total:.0f} s ({', '.join(timings)}).",
        "",
        "Ratio: CPU time of the candidate over CPU time of the reference (`time.process_time`, "
        "all threads of one process), per repeat, the two interleaved in every repeat; median "
        "and range over the repeats. Below 1: the candidate is faster.",
        "",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header[:-1]) + "\n" + _harness.format_table(rows) + "\n")
    print(_harness.format_table(rows))
    print(f"Table written to {args.out} ({total:.0f} s)")


if __name__ == "__main__":
    main()
