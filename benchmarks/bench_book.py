"""The book's execution time, chapter by chapter: cold (empty data folder), warm caches (forced re-execution with
the zoos and maps cached) and an unchanged rerun (every page reused), against the targets of issue "Every verdict
can fail" (default book cold ≤ 6 min, warm rebuild ≤ 15 s).

    python benchmarks/bench_book.py [--profile default] [--chapters 01 02 …] [--data DIR] [--skip-cold] [--json F]

The three passes run one after another in one run on the same machine, so their ratios are comparable: the
cold/warm-cache ratio per chapter shows how much of a chapter's time is training and map computation (what the
caches save) and how much is the statistics and figures that every execution pays. ``--data`` keeps the cold
pass's data folder (default: a temporary one, removed at the end); ``--skip-cold`` reuses it as it is.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 360.0
WARM_TARGET_S = 15.0


def run(profile: str, chapters: list[str], out: Path, data: Path, force: bool) -> tuple[float, dict[str, float]]:
    """Execute the chapters with ``python -m helpers run``; (wall seconds, {chapter: seconds of its execution})."""
    cmd = [sys.executable, "-m", "helpers", "run", "--profile", profile, "--out", str(out)]
    cmd += ["--chapters", *chapters] if chapters else []
    cmd += ["--force"] if force else []
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=ROOT, env={**os.environ, "HELPERS_DATA": str(data)},
                          text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode:
        raise SystemExit(f"helpers run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    timings = json.loads((out / "timings.json").read_text()).get(profile, {}) if force else {}
    return wall, {name[:2]: rec["seconds"] for name, rec in timings.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--chapters", nargs="*", default=[])
    ap.add_argument("--data", type=Path, default=None, help="data folder of the cold pass (kept)")
    ap.add_argument("--skip-cold", action="store_true", help="reuse --data as it is (no cold pass)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    if args.skip_cold and args.data is None:
        raise SystemExit("--skip-cold needs --data: the folder whose caches the warm passes reuse")
    scratch = Path(tempfile.mkdtemp(prefix="bench-book-"))
    data = args.data or scratch / "data"
    try:
        load = os.getloadavg()[0]
        cold_wall, cold = (0.0, {}) if args.skip_cold else run(args.profile, args.chapters, scratch / "cold", data, True)
        warm_wall, warm = run(args.profile, args.chapters, scratch / "warm", data, True)
        t0 = time.perf_counter()
        run(args.profile, args.chapters, scratch / "warm", data, False)  # nothing changed: every page reused
        rerun = time.perf_counter() - t0
        print(f"{args.profile} book on {os.cpu_count()} cores (load average {load:.1f} at the start)")
        print(f"{'chapter':>8} {'cold s':>8} {'warm s':>8} {'cold/warm':>10}")
        for ch in sorted(set(cold) | set(warm)):
            c, w = cold.get(ch), warm.get(ch)
            ratio = f"{c / w:10.1f}" if c and w else f"{'—':>10}"
            print(f"{ch:>8} {c if c is not None else '—':>8} {w if w is not None else '—':>8} {ratio}")
        if cold:
            print(f"cold: {cold_wall:.0f} s in all (target ≤ {COLD_TARGET_S:.0f} s: "
                  f"{'met' if cold_wall <= COLD_TARGET_S else 'NOT met'})")
        print(f"warm caches, every chapter re-executed: {warm_wall:.0f} s")
        print(f"unchanged rerun (pages reused): {rerun:.1f} s (target ≤ {WARM_TARGET_S:.0f} s with the build: "
              f"{'met' if rerun <= WARM_TARGET_S else 'NOT met'} before the build)")
        if args.json:
            args.json.write_text(json.dumps({"profile": args.profile, "cold": cold, "warm": warm,
                                             "cold_wall": cold_wall, "warm_wall": warm_wall, "rerun": rerun,
                                             "load": load}, indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
