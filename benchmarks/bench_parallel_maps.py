"""Maps of a zoo on the CPU: two single-threaded workers, one model each (helpers.attribution.parallel), against the
plain loop over models whose operations use all threads, in one run on the same machine.

    python benchmarks/bench_parallel_maps.py [--models 24] [--images 30] [--samples 100]

The book's chapters call every method with 30 images on zoos of 6–24 LeNets (MNIST, 28 × 28), as here.
"""
from __future__ import annotations

import argparse
import time

import torch

from helpers.attribution import METHODS, attribute, parallel
from helpers.zoo.architectures import build_model
from helpers.zoo.store import inference_layout


def best(fn, repeat: int = 2) -> float:
    fn()
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def seeded_models(n: int, arch: str = "lenet") -> list[torch.nn.Module]:
    """``n`` untrained models at seeds 0 … n−1, in eval mode (the benchmarks time maps, not accuracy)."""
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(build_model(arch, 1, 10).eval())
    return models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--samples", type=int, default=100, help="LIME / KernelSHAP perturbations per image")
    args = ap.parse_args()
    models = [inference_layout(m) for m in seeded_models(args.models)]  # as load_zoo gives them
    x, y = torch.randn(args.images, 1, 28, 28), torch.arange(args.images) % 10
    print(f"{args.models} LeNets × {args.images} images, {torch.get_num_threads()} threads")
    print(f"{'method':>22} {'loop s':>8} {'2 workers s':>12} {'speed-up':>9}")
    total_loop = total_par = 0.0
    for name in sorted(n for n, m in METHODS.items() if m.parallel):
        kw = {"n_samples": args.samples} if name in ("lime", "kernel_shap") else {}
        loop = best(lambda: [attribute(name, m, x, y, **kw) for m in models])
        par = best(lambda: parallel.per_model(name, models, x, y, **kw))
        total_loop, total_par = total_loop + loop, total_par + par
        print(f"{name:>22} {loop:8.2f} {par:12.2f} {loop / par:9.2f}")
    print(f"{'all':>22} {total_loop:8.2f} {total_par:12.2f} {total_loop / total_par:9.2f}")


if __name__ == "__main__":
    main()
