"""Deletion curves: batched over models, images and steps (helpers.perturbation.curves) vs a per-image loop vs
Quantus' PixelFlipping (if installed).

Run: ``.venv/bin/python benchmarks/bench_perturbation.py [--models 24] [--images 64] [--steps 28] [--device cuda]``.
Each model's own map is scored on that model (``paired=True``, as in chapter 6), probability of the target class,
zero baseline. Prints seconds per method and the speed-up of the batched version, in one run; ``--loop-models``
times the per-image loop on fewer models and scales it linearly (said in the output) when the full loop is too slow;
``--threads 1`` on a shared CPU (with two threads, the loop's single-image forwards spin while other jobs hold the
cores, and the loop looks far slower than it is).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from helpers.evaluation import faithfulness as pt
from helpers.zoo.architectures import build_model


def timed(fn) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="lenet")
    p.add_argument("--models", type=int, default=24)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--loop-models", type=int, default=None, help="time the loop on this many models and scale")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (on a shared machine 1 is the fair "
                   "setting: tiny single-image forwards spin when cores are busy)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    models = []
    for seed in range(a.models):
        torch.manual_seed(seed)
        models.append(build_model(a.arch, 1, 10).to(dev).eval())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.images, 1, 28, 28, generator=g).to(dev)
    y = torch.randint(0, 10, (a.images,), generator=g).to(dev)
    maps = torch.randn(a.models, a.images, 28, 28, generator=g).to(dev)
    pt.curves(models[:2], x[:2], y[:2], maps[:2, :2], 0.0, n_steps=a.steps, paired=True)  # warm-up
    print(f"deletion curves, {a.arch}, {a.models} models × {a.images} images × {a.steps + 1} points, "
          f"device {dev}, {torch.get_num_threads()} threads")
    t_batch, batched = timed(lambda: pt.curves(models, x, y, maps, 0.0, n_steps=a.steps, paired=True))
    print(f"  batched (helpers.perturbation.curves): {t_batch:8.2f} s")
    lm = a.loop_models or a.models
    t_loop, looped = timed(lambda: torch.stack([torch.stack([
        pt.curve_loop(models[m], x[i], int(y[i]), maps[m, i], 0.0, n_steps=a.steps) for i in range(a.images)])
        for m in range(lm)]))
    scale = a.models / lm
    note = "" if lm == a.models else f"  (timed on {lm} models, × {scale:.1f})"
    print(f"  per-image loop (one forward per step): {t_loop * scale:8.2f} s{note}   "
          f"batched is {t_loop * scale / t_batch:.1f}× faster")
    assert torch.allclose(batched[:lm].cpu(), looped.to(batched.dtype).cpu(), atol=1e-5), "batched != loop"
    try:
        import quantus
    except Exception as e:  # quantus needs opencv-python (libGL)
        print(f"  Quantus PixelFlipping: not importable ({type(e).__name__})")
        return
    step = 28 * 28 // a.steps
    metric = quantus.PixelFlipping(features_in_step=step, perturb_baseline="black", disable_warnings=True)
    xn, yn = x.cpu().numpy(), y.cpu().numpy()
    black = x.flatten(1).min(1).values.view(-1, 1, 1, 1).expand_as(x)  # quantus' "black" is the image minimum
    t_q, _ = timed(lambda: [metric(model=m, x_batch=xn, y_batch=yn, a_batch=maps[k, :, None].cpu().numpy(),
                                   device=str(dev), softmax=True) for k, m in enumerate(models)])
    print(f"  Quantus PixelFlipping (batched images, loop over models): {t_q:8.2f} s   "
          f"batched is {t_q / t_batch:.1f}× faster")
    ref = np.array(metric(model=models[0], x_batch=xn, y_batch=yn, a_batch=maps[0, :, None].cpu().numpy(),
                          device=str(dev), softmax=True))
    ours = pt.curves(models[:1], x, y, maps[:1], black, n_steps=a.steps, paired=True)[0, :, 1:].cpu().numpy()
    print(f"  max |ours − Quantus| on model 0 (black = image minimum): {np.abs(ours - ref).max():.2e}")


if __name__ == "__main__":
    main()
