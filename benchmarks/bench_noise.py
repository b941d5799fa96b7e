"""NoiseGrad batched over samples (torch.func.vmap over noisy weights) against the per-sample loop (a deep copy reset
from the original weights for each sample), same draws, same maps.

Run: ``.venv/bin/python benchmarks/bench_noise.py [--device cuda] [--arch lenet] [--samples 64] [--images 64]``.
Prints seconds per call of each and the ratio loop / batched.
"""
from __future__ import annotations

import argparse

import torch

from helpers.attribution.marginal import best_seconds
from helpers.attribution.noise import noisy_maps
from helpers.zoo.architectures import build_model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="lenet")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--method", default="fusiongrad", choices=["noisegrad", "fusiongrad"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    channels, size = (1, 28) if a.arch in ("lenet", "lenet-wide", "lenet-deep", "convnet") else (3, 32)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = build_model(a.arch, channels, 10, image_size=size).to(dev).eval()
    x = torch.randn(a.images, channels, size, size, device=dev)
    y = torch.randint(0, 10, (a.images,), device=dev)
    input_sigma = 0.15 if a.method == "fusiongrad" else 0.0
    run = lambda vec: noisy_maps(model, x, y, a.samples, 0.2, input_sigma, "gradient", 0, vectorize=vec)  # noqa: E731
    ref = run(False)
    torch.testing.assert_close(run(True), ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    vec, loop = best_seconds(lambda: run(True), dev, 3), best_seconds(lambda: run(False), dev, 3)
    print(f"{a.method} {a.arch} {a.samples} samples × {a.images} images on {dev} ({torch.get_num_threads()} threads): "
          f"batched {vec:.3f} s, loop {loop:.3f} s, loop / batched = {loop / vec:.2f}")


if __name__ == "__main__":
    main()
