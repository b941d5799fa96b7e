"""GPU run of the paper setting (Woerl et al., CVPR 2023): train CIFAR zoos, time them, and measure the SNR of
every attribution method per architecture; also times Marginalized (vmap over models vs a loop) on the GPU.

Run on a machine with a GPU and CIFAR-10 under $HELPERS_DATA (or HELPERS_ALLOW_DOWNLOAD=1):
    python benchmarks/gpu_zoo.py --archs resnet18 vgg19 --models 8 --epochs 6 --out results.json
Prints one line per step and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time

import torch

from helpers import maps, snr
from helpers.attribution import METHODS
from helpers.data import examples_per_class, load_dataset
from helpers.marginal import Marginalized, marginalize_methods
from helpers.zoo import Recipe, ZooSpec, ensure_zoo


def bench_marginal(models: list, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    def timed(fn) -> float:
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / 3

    loop = timed(lambda: Marginalized("gradient", models, vectorize=False).attribute(x, y))
    vmap = timed(lambda: Marginalized("gradient", models, vectorize=True).attribute(x, y))
    naive_one = timed(lambda: [Marginalized("gradient", models[:1], vectorize=False).attribute(x[i:i + 1], y[i:i + 1])
                               for i in range(8)])
    naive = naive_one / 8 * len(y) * len(models)
    return {"naive_s": naive, "loop_s": loop, "vmap_s": vmap, "loop_speedup": naive / loop,
            "vmap_speedup": naive / vmap}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--archs", nargs="+", default=["resnet18", "vgg19", "resnet101"])
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--per-class", type=int, default=2)
    p.add_argument("--surrogate-samples", type=int, default=100)
    p.add_argument("--fp32", action="store_true", help="train without bfloat16 autocast")
    p.add_argument("--out", default="gpu_zoo.json")
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    ds = load_dataset(a.dataset)
    idx = examples_per_class(ds.test.y, a.per_class * ds.num_classes)
    x, y = ds.test.x[idx].to(dev), ds.test.y[idx].to(dev)
    recipe = Recipe(epochs=a.epochs, batch_size=256, lr=0.1, optimizer="sgd", weight_decay=5e-4, schedule="cosine",
                    augment="crop-flip", amp=not a.fp32)
    kwargs = {m: {"seed": 0} for m in METHODS if METHODS[m].stochastic}
    kwargs["lime"]["n_samples"] = kwargs["kernel_shap"]["n_samples"] = a.surrogate_samples
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results: dict = {"date": datetime.date.today().isoformat(), "profile": "benchmarks/gpu_zoo.py",
                     "commit": commit or "unknown", "snr_definition": "centred maps, unbiased signal energy (helpers.snr)",
                     "device": torch.cuda.get_device_name(), "torch": torch.__version__, "recipe": vars(a),
                     "archs": {}}
    for arch in a.archs:
        spec = ZooSpec(arch, a.dataset, recipe, a.models)
        t0 = time.perf_counter()
        zoo = ensure_zoo(spec, device=dev, progress=False)
        train_s = time.perf_counter() - t0
        accs = [r["test_accuracy"] for r in zoo.records(spec)]
        print(f"{arch}: {a.models} models in {train_s:.0f} s, accuracy {sum(accs) / len(accs):.4f} "
              f"({min(accs):.4f}–{max(accs):.4f})", flush=True)
        bench = bench_marginal(zoo.models, x, y)
        print(f"{arch}: Marginalized gradient, {a.models} models × {len(y)} images: {bench}", flush=True)
        t0 = time.perf_counter()
        res = marginalize_methods(list(METHODS), zoo.models, x, y, kwargs, progress=False)
        attr_s = time.perf_counter() - t0
        table = {}
        for m, r in res.items():
            a2 = maps.to_2d(r.per_model).float().cpu()
            iv = snr.bootstrap_snr(a2, n_boot=500)
            table[m] = {"energy_snr": iv.point, "energy_snr_low": iv.low, "energy_snr_high": iv.high,
                        "pairwise": snr.pairwise_correlation(a2).mean().item(),
                        "split_half": snr.split_half(a2).mean().item()}
            print(f"  {arch:10s} {m:22s} " + " ".join(f"{k}={v:.3f}" for k, v in table[m].items()), flush=True)
        results["archs"][arch] = {"train_seconds": train_s, "accuracy": accs, "marginal_bench": bench,
                                  "attribution_seconds": attr_s, "snr": table}
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
