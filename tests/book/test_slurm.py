"""The zoo cache on a real SLURM (``make slurm-up``): a job array, a cancelled job, a killed worker, a rerun."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import zoo_bytes
from helpers.book import plan
from helpers.zoo import jobs, records, train_zoo

pytestmark = pytest.mark.slurm


def _wait(what, check, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _squeue(job) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job.job_id, "-o", "%T"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def _worker_pids(job) -> list[int]:
    """The processes of an array task, found by the SLURM variables in their environment."""
    array_id, task = job.job_id.split("_")
    want = {f"SLURM_ARRAY_JOB_ID={array_id}".encode(), f"SLURM_ARRAY_TASK_ID={task}".encode()}
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            cmd = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if want <= env and b"submitit" in cmd and b"python" in cmd:
            pids.append(int(proc.name))
    return pids


def test_job_array_survives_scancel_and_a_killed_worker(data_root, slurm_conf, tmp_path, monkeypatch):
    specs = [s for _, s in plan.plan("smoke")[0]]
    zoos = jobs.merge(specs)
    kw = {"partition": "debug", "time_min": 30, "array_parallelism": 2, "cpus_per_job": 1}
    array = plan.train(specs, "slurm", "cpu", wait=False, **kw)
    assert len(array) == len(jobs.units(zoos, "cpu")) >= 4  # one job per fixed group of models
    assert len({j.job_id.split("_")[0] for j in array}) == 1  # one array
    _wait("the first job to start", lambda: _squeue(array[0]) == "RUNNING")
    subprocess.run(["scancel", array[0].job_id], check=True, timeout=10)
    lock = records._lock_file(zoos[0], "i1_d0")  # the second job's first model
    _wait("the second job to take its lock", lambda: lock.exists() and _worker_pids(array[1]))
    for pid in _worker_pids(array[1]):
        os.kill(pid, signal.SIGKILL)
    _wait("the array to end", lambda: not any(_squeue(j) for j in array), timeout=180)
    rerun = plan.train(specs, "slurm", "cpu", wait=True, wait_s=180, **kw)
    print("first array:", [j.state for j in array], "rerun:", len(rerun), "jobs")
    assert 1 <= len(rerun) <= 2  # only what the cancelled and the killed job left undone
    assert plan.train(specs, "slurm", "cpu", wait=False, **kw) == []  # and then nothing
    written = [(s.key, name) for s in zoos for name in records.writes(s)]
    assert len(written) == len(set(written)) == sum(s.n_models for s in zoos)  # nothing trained twice
    split = {s.key: zoo_bytes(s) for s in zoos}
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "in-process"))
    for s in zoos:
        train_zoo(s, device="cpu", progress=False)
    assert {s.key: zoo_bytes(s) for s in zoos} == split
