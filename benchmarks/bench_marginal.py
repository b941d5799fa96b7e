"""Marginalized gradients: naive loops vs batching over images vs vmap over models (torch.func).

Run: ``make benchmark`` or ``.venv/bin/python benchmarks/bench_marginal.py [--device cuda] [--arch resnet18]``.
Prints seconds per call and the speed-up over the naive way (one model, one image at a time), in one run.
"""
from __future__ import annotations

import argparse
import time

import torch

from helpers.attribution import attribute
from helpers.attribution.marginal import Marginalized
from helpers.zoo.architectures import build_model


def timed(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="lenet")
    p.add_argument("--models", type=int, default=24)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    channels, size = (1, 28) if a.arch in ("lenet", "lenet-wide", "lenet-deep", "convnet") else (3, 32)
    dev = torch.device(a.device)
    models = []
    for seed in range(a.models):
        torch.manual_seed(seed)
        models.append(build_model(a.arch, channels, 10, image_size=size).to(dev).eval())
    x = torch.randn(a.images, channels, size, size, device=dev)
    y = torch.randint(0, 10, (a.images,), device=dev)

    def naive():
        return torch.stack([torch.cat([attribute("gradient", m, x[i:i + 1], int(y[i])) for i in range(len(y))])
                            for m in models])

    def captum_loop():
        from captum.attr import Saliency

        return torch.stack([Saliency(m).attribute(x, target=y, abs=False) for m in models])

    runs = {
        "naive: loop over models and images": naive,
        "captum Saliency, batched images, loop over models": captum_loop,
        "Marginalized, batched images, loop over models": lambda: Marginalized("gradient", models,
                                                                               vectorize=False).attribute(x, y),
        "Marginalized, vmap over models (torch.func)": lambda: Marginalized("gradient", models).attribute(x, y),
    }
    ref = Marginalized("gradient", models, vectorize=False).attribute(x, y).per_model
    fast = Marginalized("gradient", models, vectorize=True).attribute(x, y).per_model
    # max-pool near-ties may route a gradient differently under another rounding: compare almost all entries
    close = torch.isclose(fast, ref, rtol=1e-3, atol=1e-6).float().mean().item()
    assert close > 0.999, f"vmap and loop disagree on {100 * (1 - close):.2f} % of the entries"
    print(f"{a.arch}, {a.models} models × {a.images} images on {dev} (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    base = None
    for name, fn in runs.items():
        t = timed(fn, repeat=1 if name.startswith("naive") else 3)
        base = base or t
        print(f"  {name:<52} {t * 1000:9.1f} ms   ×{base / t:6.1f}")


if __name__ == "__main__":
    main()
