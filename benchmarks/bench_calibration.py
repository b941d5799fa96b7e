"""The calibration simulation of chapter 9 batched over synthetic zoos (:func:`helpers.evaluation.calibration.
simulate`: correlations drawn from their exact law, one batched product per bootstrap) against the loop over zoos
through the chapters' own interval functions (:func:`~helpers.evaluation.calibration.simulate_loop`, maps drawn
pixel by pixel), in one run, for each interval procedure.

Run: ``.venv/bin/python benchmarks/bench_calibration.py [--models 24] [--images 30] [--sims 40] [--boot 200]``.
Prints CPU seconds per simulated zoo of each way, the ratio loop / batched, and both ways' rates (the same model,
other draws: equal up to Monte Carlo error).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from helpers.evaluation import calibration as cal


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=24)
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--sims", type=int, default=40, help="zoos of the loop (the batched way runs 5 times as many)")
    p.add_argument("--boot", type=int, default=200)
    a = p.parse_args()
    cal.true_pairwise()  # computed once per process, by both ways
    print(f"{a.models} models × {a.images} images, {a.boot} bootstrap replicates, {torch.get_num_threads()} threads,"
          f" load average {os.getloadavg()[0]:.1f}")
    for statistic in cal.STATISTICS:
        for interval in cal.INTERVALS:
            d = cal.Design("bench", statistic, a.models, a.images, n_boot=a.boot, interval=interval)
            t0 = time.process_time()
            fast = cal.simulate(d, 5 * a.sims)
            t1 = time.process_time()
            slow = cal.simulate_loop(d, a.sims)
            t2 = time.process_time()
            per_fast, per_slow = (t1 - t0) / (5 * a.sims), (t2 - t1) / a.sims
            print(f"  {statistic:8s} {interval:12s} batched {1e3 * per_fast:8.2f} ms/zoo (coverage {fast.coverage:.2f})"
                  f"  loop {1e3 * per_slow:8.2f} ms/zoo (coverage {slow.coverage:.2f})  loop / batched "
                  f"= {per_slow / per_fast:6.1f}")


if __name__ == "__main__":
    main()
