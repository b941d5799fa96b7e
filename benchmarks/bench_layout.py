"""LeNet maps on the CPU with the convolution weights in channels-last memory (what ``zoo.store.load_zoo`` gives,
:func:`helpers.zoo.store.inference_layout`) against the default layout, in one run on the same machine.

    python benchmarks/bench_layout.py [--models 24] [--images 30] [--arch lenet]
"""
from __future__ import annotations

import argparse
import copy

import torch

from helpers.attribution import parallel
from helpers.attribution.clear import per_model_responses
from helpers.zoo.store import inference_layout

from bench_parallel_maps import best, seeded_models  # this folder: the script's own, on sys.path

METHODS = ("gradient", "integrated_gradients", "deeplift", "guided_backprop", "lime", "kernel_shap", "occlusion")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=24)
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--arch", default="lenet")
    args = ap.parse_args()
    plain = seeded_models(args.models, args.arch)
    last = [inference_layout(copy.deepcopy(m)) for m in plain]
    x, y = torch.randn(args.images, 1, 28, 28), torch.arange(args.images) % 10
    print(f"{args.models} {args.arch} × {args.images} images, {torch.get_num_threads()} threads")
    print(f"{'method':>22} {'default s':>10} {'channels-last s':>16} {'speed-up':>9} {'max |diff|':>11}")
    runs = {m: (lambda zoo, m=m: torch.stack(parallel.per_model(m, zoo, x, y))) for m in METHODS}
    runs["clear (deconvolution)"] = lambda zoo: per_model_responses(zoo, x, "deconvolution", start="unit")
    for name, run in runs.items():
        a, b = best(lambda: run(plain)), best(lambda: run(last))
        diff = (run(plain) - run(last)).abs().max().item()
        print(f"{name:>22} {a:10.2f} {b:16.2f} {a / b:9.2f} {diff:11.1e}")


if __name__ == "__main__":
    main()
