"""``python -m helpers zoo train|status``: every zoo the chosen chapters ask for under a profile (the specs the
chapter kit builds, :func:`helpers.book.chapter.zoo_spec`, :func:`~helpers.book.chapter.sibling_spec` and the control
zoos of :func:`~helpers.book.chapter.control_spec`), trained
in-process or as one submitit job array on SLURM, and the cache's view of what is done, missing and running.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..zoo import jobs
from ..zoo.spec import ZooSpec
from . import profiles
from .chapter import control_spec, sibling_spec, zoo_params, zoo_spec


# the zoos a chapter builds besides its own with Kit.sibling or Kit.siblings (tests/book/test_plan.py checks the
# notebooks' calls)
SIBLINGS: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
    "03": lambda p: ([{"arch": a, "n_models": p["n_arch_models"]} for a in p["architectures"]]
                     + [{"n_models": p["n_arch_models"], "vary": v} for v in ("init", "data", "both")]),
}


# the control zoos a chapter loads with Kit.control (tests/book/test_plan.py checks the notebooks' calls)
CONTROLS: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
    "01": lambda p: [{"kind": "untrained"}],
    "02": lambda p: [{"kind": "untrained"}],
    "03": lambda p: [{"kind": "untrained"}],
    "07": lambda p: [{"kind": "random-labels", "n_models": p["n_sanity_models"], "label_seed": p["sanity_seed"],
                      "epochs": p.get("random_label_epochs")}],
}


def chapter_zoos(params: Mapping[str, Any], chapter_id: str) -> list[ZooSpec]:
    """The zoos chapter ``chapter_id`` trains with ``params``: its own, then its siblings."""
    p = zoo_params(params)
    main = zoo_spec(p)
    extra = SIBLINGS.get(chapter_id, lambda _: [])({**params, **p})
    controls = CONTROLS.get(chapter_id, lambda _: [])({**params, **p})
    return ([main] + [sibling_spec(main, int(p["seed_offset"]), kw.get("arch"), kw.get("n_models"),
                                   kw.get("vary", p["vary"])) for kw in extra]
            + [control_spec(main, **kw) for kw in controls])


def plan(profile_name: str, chapters: Sequence[str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> tuple[list[tuple[str, ZooSpec]], str]:
    """``[(chapter id, spec), …]`` for the profile's chapters and the device they train on."""
    root = profiles.project_root()
    prof = profiles.load_profile(profile_name, root / "profiles")
    out, device = [], "cpu"
    for ch in profiles.find_chapters(root / "notebooks"):
        if chapters and ch.id not in chapters:
            continue
        params = {**profiles.declared_parameters(ch.path),
                  **profiles.chapter_parameters(prof, ch, dict(overrides or {}), profile_name)}
        if not {"dataset", "arch", "n_models"} <= set(params):
            continue  # a page without a zoo of its own (the calibration page)
        device = params.get("device") or ("cuda" if _cuda() else "cpu")
        out += [(ch.id, s) for s in chapter_zoos(params, ch.id)]
    return out, str(device)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def executor(engine: str, folder: Path, partition: str | None = None, gpus_per_job: int = 0,
             cpus_per_job: int = 1, array_parallelism: int = 64, time_min: int = 60, mem_gb: float = 2.0) -> Any:
    """A submitit executor: ``slurm`` (``sbatch`` on PATH) or ``local`` (one subprocess per job)."""
    import submitit

    if engine == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        kw: dict[str, Any] = {"timeout_min": time_min, "cpus_per_task": cpus_per_job, "mem_gb": mem_gb,
                              "slurm_array_parallelism": array_parallelism, "name": "helpers-zoo"}
        if partition:
            kw["slurm_partition"] = partition
        if gpus_per_job:
            kw["gpus_per_node"] = gpus_per_job
        ex.update_parameters(**kw)
        return ex
    ex = submitit.LocalExecutor(folder=folder)
    ex.update_parameters(timeout_min=time_min, cpus_per_task=cpus_per_job)
    return ex


def train(specs: Sequence[ZooSpec], engine: str = "local", device: str = "cpu", wait: bool = True,
          wait_s: float = 7 * 24 * 3600, **executor_kw: Any) -> list[Any]:
    """Train what the cache lacks: in-process (``engine="inproc"``) or as one job array of :func:`jobs.units`
    through submitit (``local`` or ``slurm``); returns the submitted jobs (waited for, at most ``wait_s`` seconds,
    when ``wait``). A job that did not complete is reported; what is done is read from the cache."""
    from ..zoo.store import train_zoo

    if engine == "inproc":
        for s in jobs.merge(specs):
            train_zoo(s, device=device)
        return []
    return submit(jobs.run_unit, jobs.units(specs, device), engine, wait, wait_s, **executor_kw)


def submit(fn: Callable[[Any], Any], todo: Sequence[Any], engine: str, wait: bool = True,
           wait_s: float = 7 * 24 * 3600, **executor_kw: Any) -> list[Any]:
    """``fn`` over ``todo`` as one submitit job array; waits (at most ``wait_s`` s) when ``wait``."""
    if not todo:
        return []
    from ..data import settings

    ex = executor(engine, settings.cache_root() / "jobs" / "%j", **executor_kw)
    submitted = ex.map_array(fn, list(todo))
    if wait:
        deadline = time.monotonic() + wait_s
        for job in submitted:
            while not job.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job.job_id} still not done after {wait_s:.0f} s: see `zoo status`")
                time.sleep(0.5)
            if not job.paths.result_pickle.exists():  # cancelled, killed, preempted …
                print(f"job {job.job_id} ended {job.state} without a result: rerun to compute what is missing")
    return submitted


def compute_maps(specs: Sequence[ZooSpec], methods: Sequence[str], request: Path, engine: str = "local",
                 device: str = "cpu", wait: bool = True, **executor_kw: Any) -> list[Any]:
    """Every (model, method) map the map cache lacks for ``request``: in-process (``inproc``) or as a job array."""
    from ..attribution import mapjobs

    todo = mapjobs.map_units(jobs.merge(specs), methods, request, device)
    if engine == "inproc":
        for unit in todo:
            mapjobs.run_map_unit(unit)
        return []
    return submit(mapjobs.run_map_unit, todo, engine, wait, **executor_kw)


def status_lines(specs: Sequence[ZooSpec]) -> list[str]:
    """One line per zoo: architecture, key, done, missing and running counts (and the kind of a control zoo)."""
    lines = []
    for s in jobs.merge(specs):
        c = jobs.status(s)
        lines.append(f"{s.arch:12s} {s.dataset:10s} {s.key}  done {c['done']:3d}  missing {c['missing']:3d}  "
                     f"running {c['running']:3d}" + (f"  ({s.control} control)" if s.control else ""))
    return lines


def add_parsers(sub: Any) -> None:
    """The ``zoo`` subcommand of ``python -m helpers``."""
    z = sub.add_parser("zoo", help="train the zoos of a profile's chapters (in-process, or as a SLURM job array)")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    for name in ("train", "status"):
        c = zsub.add_parser(name)
        c.add_argument("--profile", default="default")
        c.add_argument("--chapters", nargs="*")
        c.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    m = sub.add_parser("maps", help="a chapter's maps as a job array (one job per model and method)")
    msub = m.add_subparsers(dest="maps_cmd", required=True)
    c = msub.add_parser("compute")
    c.add_argument("--profile", default="default")
    c.add_argument("--chapters", nargs="*")
    c.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--methods", nargs="+", required=True)
    c.add_argument("--request", type=Path, required=True, help="inputs and targets (attribution.mapjobs.save_request)")
    for t in (zsub.choices["train"], c):
        _job_options(t)


def _job_options(t: Any) -> None:
    t.add_argument("--engine", choices=("local", "slurm", "inproc"), default="local",
                   help="local: in-process (today's path); slurm: one job array via submitit; inproc: same as local")
    t.add_argument("--jobs", action="store_true", help="with --engine local: submitit's local executor instead")
    t.add_argument("--partition")
    t.add_argument("--gpus-per-job", type=int, default=0)
    t.add_argument("--cpus-per-job", type=int, default=1)
    t.add_argument("--array-parallelism", type=int, default=64)
    t.add_argument("--time-min", type=int, default=60)
    t.add_argument("--no-wait", action="store_true", help="submit and return (watch with `zoo status`)")


def main(args: Any) -> int:
    root = profiles.project_root()
    for k, v in profiles.load_profile(args.profile, root / "profiles")["env"].items():
        os.environ.setdefault(k, str(v))  # the profile's environment, as the runner gives its kernels (and jobs)
    planned, device = plan(args.profile, args.chapters, profiles.parse_overrides(args.param))
    specs = [s for _, s in planned]
    if getattr(args, "zoo_cmd", None) == "status":
        print("\n".join(status_lines(specs)))
        return 0
    engine = args.engine
    if args.gpus_per_job and engine == "slurm":
        device = "cuda"  # planned on a login node without a GPU: the jobs train on theirs, one model per job
    if engine in ("local", "inproc"):
        engine = "local" if args.jobs else "inproc"
    kw = {} if engine == "inproc" else {
        "partition": args.partition, "gpus_per_job": args.gpus_per_job, "cpus_per_job": args.cpus_per_job,
        "array_parallelism": args.array_parallelism, "time_min": args.time_min}
    t0 = time.perf_counter()
    if args.cmd == "maps":
        own = [s for k, (ch, s) in enumerate(planned) if k == 0 or planned[k - 1][0] != ch]  # each chapter's zoo
        submitted = compute_maps(own, args.methods, args.request, engine, device, wait=not args.no_wait, **kw)
        print(f"{len(submitted)} map job(s) in {time.perf_counter() - t0:.0f} s")
        return 0
    submitted = train(specs, engine, device, wait=not args.no_wait, **kw)
    print(f"{len(submitted)} job(s) in {time.perf_counter() - t0:.0f} s")
    print("\n".join(status_lines(specs)))
    return 0
