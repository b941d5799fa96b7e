"""The GPU recipe on a GPU: train seeded CIFAR-10 zoos with :mod:`helpers.gpu_train` (one-cycle schedule, label
smoothing, bfloat16, data and augmentation on the device, models stacked), report their mean test accuracy and
minutes, and time batched ensemble gradients (vmap over models vs the per-model captum loop).

One command on a GPU machine with the offline CIFAR-10 JPEG kit trains 50 ResNet18 and 50 cifar-fast seeds:
    HELPERS_KIT=/path/to/kit python benchmarks/gpu_zoo.py --out docs/results/gpu_recipe.json
(the kit is lossy JPEG: report its accuracy with that caveat; ``--dataset cifar10`` reads the original). ``--snr``
adds the per-method SNR table of the earlier paper-setting runs (docs/results/README.md).
In miniature on a CPU (2 seeds, 1 epoch, 300 training and 200 test images, models in a temporary cache):
    HELPERS_KIT=../shared/data python benchmarks/gpu_zoo.py --tiny
Prints one line per step and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import tempfile
import time

import torch

# per architecture: the speed-run recipe's size (Page 2018: batch 512, peak lr 0.4 with logits scaled by 1/8; our
# networks do not scale theirs, and a CPU probe of cifar-fast learnt faster at 0.1-0.2 than at 0.4: untuned on a GPU);
# schedule "onecycle" brings label smoothing 0.2, weight decay 5e-4 and bfloat16 (helpers.zoo.ONECYCLE_DEFAULTS)
RECIPES = {
    "cifar-fast": dict(epochs=10, batch_size=512, lr=0.2),
    "resnet18": dict(epochs=15, batch_size=512, lr=0.2),
    "vgg19": dict(epochs=15, batch_size=512, lr=0.2),
    "resnet101": dict(epochs=15, batch_size=256, lr=0.2),
}


def tiny_dataset(name: str, n_test: int = 200) -> str:
    """Register ``<name>-tiny``: ``name`` with its test split cut to ``n_test`` images (the recipe cuts the
    training split), so that the miniature evaluates in seconds on a CPU."""
    from helpers import data

    full = data.DATASETS[name]

    def load(root, download):
        ds = full(root, download)
        return dataclasses.replace(ds, name=f"{name}-tiny", test=data.subsample(ds.test, n_test, seed=0))

    data.DATASETS[f"{name}-tiny"] = load
    return f"{name}-tiny"


def bench_marginal(models: list, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Seconds (best of 3) of the per-model captum loop, Marginalized's loop, vmap and automatic choice."""
    from captum.attr import Saliency

    from helpers.attribution.marginal import Marginalized

    from helpers.attribution.marginal import best_seconds

    def timed(fn) -> float:
        return best_seconds(fn, x.device, repeat=3)

    auto = Marginalized("gradient", models)
    out = {
        "captum_loop_s": timed(lambda: [Saliency(m).attribute(x, target=y, abs=False) for m in models]),
        "loop_s": timed(lambda: Marginalized("gradient", models, vectorize=False).attribute(x, y)),
        "vmap_s": timed(lambda: Marginalized("gradient", models, vectorize=True).attribute(x, y)),
        "auto_s": timed(lambda: auto.attribute(x, y)),
    }
    out.update({f"{k[:-2]}_speedup": out["captum_loop_s"] / v for k, v in list(out.items())[1:]})
    out["auto_chose_vmap"] = bool(auto.vectorize)
    return out


def snr_table(models: list, x: torch.Tensor, y: torch.Tensor, surrogate_samples: int) -> dict[str, dict]:
    """Per attribution method: energy SNR (bootstrap interval), pairwise and split-half correlation."""
    from helpers.attribution import maps
    from helpers.evaluation import snr
    from helpers.attribution import METHODS
    from helpers.attribution.marginal import marginalize_methods

    kwargs = {m: {"seed": 0} for m in METHODS if METHODS[m].stochastic}
    kwargs["lime"]["n_samples"] = kwargs["kernel_shap"]["n_samples"] = surrogate_samples
    table = {}
    for m, r in marginalize_methods(list(METHODS), models, x, y, kwargs, progress=False).items():
        a2 = maps.to_2d(r.per_model).float().cpu()
        iv = snr.bootstrap_snr(a2, n_boot=500)
        table[m] = {"energy_snr": iv.point, "energy_snr_low": iv.low, "energy_snr_high": iv.high,
                    "pairwise": snr.pairwise_correlation(a2).mean().item(),
                    "split_half": snr.split_half(a2).mean().item()}
        print(f"  {m:22s} " + " ".join(f"{k}={v:.3f}" for k, v in table[m].items()), flush=True)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cifar10-jpeg")
    p.add_argument("--archs", nargs="+", default=["resnet18", "cifar-fast"])
    p.add_argument("--models", type=int, default=50)
    p.add_argument("--epochs", type=int, help="override every architecture's epochs")
    p.add_argument("--batch-size", type=int, help="override every architecture's batch size")
    p.add_argument("--lr", type=float, help="override every architecture's peak learning rate")
    p.add_argument("--group", type=int, help="models per stack (default: helpers.gpu_train.stack_size)")
    p.add_argument("--fp32", action="store_true", help="train without autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--marginal-models", type=int, default=30)
    p.add_argument("--marginal-images", type=int, default=256)
    p.add_argument("--snr", action="store_true", help="also the per-method SNR table (slow)")
    p.add_argument("--per-class", type=int, default=2, help="SNR images per class")
    p.add_argument("--surrogate-samples", type=int, default=100)
    p.add_argument("--tiny", action="store_true", help="CPU miniature: 2 seeds, 1 epoch, 300/200 images")
    p.add_argument("--out", default="gpu_zoo.json")
    a = p.parse_args()
    n_train = None
    if a.tiny:
        os.environ["HELPERS_DATA"] = tempfile.mkdtemp(prefix="gpu_zoo_tiny_")  # keep the real cache clean
        a.models, a.epochs, n_train = 2, 1, 300
        a.batch_size = a.batch_size or 64
        a.marginal_images = min(a.marginal_images, 16)
        a.dataset = tiny_dataset(a.dataset)
        if a.out == "gpu_zoo.json":
            a.out = os.path.join(os.environ["HELPERS_DATA"], "gpu_zoo.json")
    from helpers.zoo import gpu as gpu_train
    from helpers.data import examples_per_class, load_dataset
    from helpers.zoo import Recipe, ZooSpec, load_zoo, train_zoo

    dev = torch.device(a.device)
    gpu_train.COMPILE = a.compile
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    ds = load_dataset(a.dataset)
    print(f"{a.dataset}: {len(ds.train)} training, {len(ds.test)} test images, read in "
          f"{time.perf_counter() - t0:.0f} s; device {dev}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results: dict = {"date": datetime.date.today().isoformat(), "profile": "benchmarks/gpu_zoo.py (GPU recipe)",
                     "commit": commit or "unknown", "snr_definition": "centred maps, unbiased signal energy (helpers.snr)",
                     "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                     "torch": torch.__version__, "recipe": {**vars(a), "epochs": a.epochs or "per architecture"},
                     "archs": {}}
    for arch in a.archs:
        size = {**RECIPES.get(arch, RECIPES["resnet18"]),
                **{k: v for k, v in (("epochs", a.epochs), ("batch_size", a.batch_size), ("lr", a.lr)) if v}}
        recipe = Recipe(**size, optimizer="sgd", schedule="onecycle", augment="crop-flip", n_train=n_train,
                        **({"amp": False} if a.fp32 else {}))
        spec = ZooSpec(arch, a.dataset, recipe, a.models)
        t0 = time.perf_counter()
        train_zoo(spec, device=dev, progress=False, group=a.group, engine="gpu")
        minutes = (time.perf_counter() - t0) / 60
        zoo = load_zoo(spec, device=dev)
        accs = [r["test_accuracy"] for r in zoo.records(spec)]
        mean = sum(accs) / len(accs)
        print(f"{arch}: {a.models} models in {minutes:.2f} min ({60 * minutes / a.models:.1f} s per model), mean "
              f"test accuracy {mean:.4f} ({min(accs):.4f}–{max(accs):.4f}); {recipe}", flush=True)
        m = min(a.marginal_models, len(zoo.models))
        idx = examples_per_class(ds.test.y, min(a.marginal_images, len(ds.test)))
        x, y = ds.test.x[idx].to(dev), ds.test.y[idx].to(dev)
        bench = bench_marginal(zoo.models[:m], x, y)
        print(f"{arch}: gradients of {m} models × {len(y)} images: " +
              ", ".join(f"{k}={v}" if isinstance(v, bool) else f"{k}={v:.3g}" for k, v in bench.items()), flush=True)
        entry = {"recipe": dataclasses.asdict(recipe), "train_seconds": 60 * minutes, "train_minutes": minutes,
                 "accuracy": accs, "mean_accuracy": mean, "marginal_bench": bench, "snr": {}}
        if a.snr:
            idx = examples_per_class(ds.test.y, a.per_class * ds.num_classes)
            t0 = time.perf_counter()
            entry["snr"] = snr_table(zoo.models, ds.test.x[idx].to(dev), ds.test.y[idx].to(dev), a.surrogate_samples)
            entry["attribution_seconds"] = time.perf_counter() - t0
        results["archs"][arch] = entry
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
