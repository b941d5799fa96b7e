"""The shared map cache (helpers.mapcache): a hit against recomputing the same maps, in one run.

Run: ``.venv/bin/python benchmarks/bench_mapcache.py [--models 24] [--images 20] [--device cpu]``.
Chapters 2 and 3 ask for the same 11 methods × 24 models on the same images; the second asks the cache. This
script times, per method, the first call into an empty cache folder (compute + atomic write) and the second call
(load), on randomly initialized LeNets of the default profile's size (a map costs the same trained or not), and
checks that the hit returns exactly the computed tensors.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="*", default=["gradient", "integrated_gradients", "smoothgrad", "deeplift",
                                                     "guided_backprop", "occlusion", "kernel_shap"])
    args = ap.parse_args()
    os.environ["HELPERS_DATA"] = tempfile.mkdtemp(prefix="bench-mapcache-")  # an empty cache, removed by the OS

    from helpers.attribution import mapcache
    from helpers.attribution import method_kwargs
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    dev = torch.device(args.device)
    models = [build_model("lenet", 1, 10).eval().to(dev) for _ in range(args.models)]
    x = torch.randn(args.images, 1, 28, 28, device=dev)
    y = torch.arange(args.images, device=dev) % 10
    seeds = [(k, k) for k in range(args.models)]
    kw = method_kwargs(args.methods, seed=0, surrogate_samples=100)
    print(f"map cache: {args.models} LeNets × {args.images} images on {dev} "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f})")
    print(f"  {'method':<22}{'compute + write':>16}{'hit':>10}{'ratio':>10}")
    total = [0.0, 0.0]
    for m in args.methods:
        t0 = time.perf_counter()
        first = mapcache.method_maps("bench", seeds, models, [m], x, y, kw, progress=False)[m]
        t1 = time.perf_counter()
        again = mapcache.method_maps("bench", seeds, models, [m], x, y, kw, progress=False)[m]
        t2 = time.perf_counter()
        assert torch.equal(first.cpu(), again.cpu()), f"{m}: the hit differs from the computed maps"
        total[0] += t1 - t0
        total[1] += t2 - t1
        print(f"  {m:<22}{t1 - t0:>14.2f} s{(t2 - t1) * 1e3:>7.1f} ms{(t1 - t0) / (t2 - t1):>9.0f}×")
    print(f"  {'all':<22}{total[0]:>14.2f} s{total[1] * 1e3:>7.1f} ms{total[0] / total[1]:>9.0f}×")


if __name__ == "__main__":
    main()
