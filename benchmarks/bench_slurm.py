"""Overheads of zoo training as SLURM job arrays on the one-node test cluster (``make slurm-up`` first).

Prints: sbatch submit-to-start (sacct Submit → Start) of trivial jobs; the wall time of a submitit job whose work is
already done (Python start, ``import torch``, checking the cache: the per-job overhead); and a sweep's wall time,
the smoke profile's zoos (4 jobs) with 2 jobs in parallel on 2 cores, against the same zoos trained in-process.
Usage: ``SLURM_CONF=build/slurm/slurm.conf python benchmarks/bench_slurm.py``.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from helpers.book import plan


def sacct_times(job_ids: list[str]) -> list[tuple[float, float]]:
    """(submit → start, start → end) seconds of each job (one-second resolution)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,Submit,Start,End", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, timeout=30).stdout
    res = []
    for line in out.splitlines():
        _, sub, start, end = line.split("|")
        t = [datetime.fromisoformat(v).timestamp() for v in (sub, start, end)]
        res.append((t[1] - t[0], t[2] - t[1]))
    return res


def wait_gone(ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True, text=True,
                         timeout=10).stdout.strip():
        if time.monotonic() > deadline:
            raise TimeoutError(ids)
        time.sleep(0.2)


def main() -> None:
    ids = [subprocess.run(["sbatch", "--parsable", "-t", "1", "--wrap", "true"], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip() for _ in range(6)]
    wait_gone(ids)
    time.sleep(1)
    starts = [s for s, _ in sacct_times(ids)]
    print(f"sbatch submit-to-start, 6 trivial jobs: mean {sum(starts) / len(starts):.1f} s, max {max(starts):.0f} s")
    root = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    specs = [s for _, s in plan.plan("smoke")[0]]
    kw = {"partition": "debug", "time_min": 30, "array_parallelism": 2, "cpus_per_job": 1}
    os.environ["HELPERS_DATA"] = str(root / "inproc")
    t0 = time.perf_counter()
    plan.train(specs, "inproc", "cpu")
    inproc = time.perf_counter() - t0
    os.environ["HELPERS_DATA"] = str(root / "slurm")
    t0 = time.perf_counter()
    array = plan.train(specs, "slurm", "cpu", wait=True, wait_s=600, **kw)
    sweep = time.perf_counter() - t0
    time.sleep(1)
    times = sacct_times([j.job_id.split("_")[0] for j in array[:1]])
    print(f"sweep, smoke profile's zoos ({len(array)} jobs, 2 in parallel on 2 cores): {sweep:.1f} s wall; "
          f"in-process {inproc:.1f} s; per job start→end {', '.join(f'{e:.0f}' for _, e in times)} s")
    from helpers.zoo import jobs

    units = jobs.units(specs, "cpu")
    assert units == []
    # per-job overhead: jobs whose models are done (Python start, import torch, checking the cache)
    done = [jobs.Unit(s, tuple(s.seed_pairs[:1]), "cpu") for s in jobs.merge(specs)]
    t0 = time.perf_counter()
    sub = plan.submit(jobs.run_unit, done, "slurm", True, 300, **kw)
    over = time.perf_counter() - t0
    time.sleep(1)
    times = sacct_times([sub[0].job_id.split("_")[0]])
    print(f"per-job overhead, {len(sub)} jobs with nothing to train: {over:.1f} s wall from submit to results; "
          f"per job start→end {', '.join(f'{e:.0f}' for _, e in times)} s, submit→start "
          f"{', '.join(f'{s:.0f}' for s, _ in times)} s")


if __name__ == "__main__":
    main()
