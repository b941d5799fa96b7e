"""A content-addressed cache of attribution maps, shared by every chapter.

Maps are the book's most expensive product (M models × N images × K methods), and a chapter re-executes whenever its
notebook, parameters or helpers change. The cache stores the channel-summed per-model maps (M, N, H, W) of one
method under a key that covers everything they depend on: the zoo (its cache key and seed pairs), the method and its
keyword arguments, the exact input images and targets, and the source of the attribution code. A hit returns the
same tensor as a recompute; any change misses. Files live in ``<data root>/cache/maps/`` (``make clean`` keeps
them, ``make distclean`` removes them), are written atomically and loaded with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence
import torch
from torch import nn

from ..data import settings


_CODE = ("attribution/registry.py", "attribution/marginal.py", "zoo/architectures.py")  # what computes every map


_DELEGATES = {"rise": "attribution/perturbation.py", "lime": "attribution/surrogate.py",
              "kernel_shap": "attribution/surrogate.py"}  # computed elsewhere


def code_files(method: str | None = None) -> list[Path]:
    """The modules whose code makes ``method``'s maps: the registry, the batching, the models, the module that
    defines the method (``positive.py`` for chapter 7's variants) and the one it delegates to."""
    import sys

    from .registry import get_method

    here = Path(__file__).resolve().parents[1]  # src/helpers
    files = [here / name for name in _CODE]
    if method is not None:
        files.append(Path(sys.modules[get_method(method).fn.__module__].__file__).resolve())
        files += [here / _DELEGATES[method]] if method in _DELEGATES else []
    return list(dict.fromkeys(files))


def code_version(method: str | None = None) -> str:
    """Hash of :func:`code_files`: editing one method's module leaves the other methods' cached maps valid."""
    h = hashlib.sha256()
    for path in code_files(method):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


def key(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], method: str, kwargs: dict[str, Any],
        inputs: torch.Tensor, target: torch.Tensor) -> str:
    """The cache key of one method's maps for one zoo, set of images and targets."""
    blob = json.dumps({"zoo": zoo_key, "seeds": [list(p) for p in seed_pairs], "method": method,
                       "kwargs": kwargs, "inputs": tensor_digest(inputs), "target": tensor_digest(target),
                       "code": code_version(method)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def folder() -> Path:
    return settings.cache_root() / "maps"


def load(k: str) -> torch.Tensor | None:
    path = folder() / f"{k}.pt"
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged file is a miss, and is rewritten
        return None


def save(k: str, maps: torch.Tensor) -> None:
    out = folder()
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(maps.detach().to("cpu").contiguous(), tmp)
        os.replace(tmp, out / f"{k}.pt")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def model_key(zoo_key: str, pair: tuple[int, int], method: str, kwargs: dict[str, Any], inputs: torch.Tensor,
              target: torch.Tensor) -> str:
    """The key of one model's maps (1, N, H, W): the zoo key of a zoo of that model alone."""
    return key(zoo_key, [tuple(pair)], method, kwargs, inputs, target)


def assemble(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], method: str, kwargs: dict[str, Any],
             inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """The zoo's maps (M, N, H, W) stacked from every model's own entry, or ``None`` if one is missing."""
    parts = []
    for pair in seed_pairs:
        part = load(model_key(zoo_key, pair, method, kwargs, inputs, target))
        if part is None or part.shape[0] != 1:
            return None
        parts.append(part)
    return torch.cat(parts) if parts else None


def method_maps(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], models: Sequence[nn.Module],
                methods: Sequence[str], inputs: torch.Tensor, target: torch.Tensor,
                method_kwargs: dict[str, dict] | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """Per-model maps (M, N, H, W) of every method, from the cache where present, computed (and stored) otherwise.

    ``zoo_key`` and ``seed_pairs`` identify ``models`` (a :class:`helpers.zoo.ZooSpec`'s ``key`` and
    ``seed_pairs``). Returned tensors are on ``inputs``' device."""
    from .registry import as_target
    from .marginal import method_maps as compute

    if len(seed_pairs) != len(models):
        raise ValueError(f"{len(seed_pairs)} seed pairs for {len(models)} models: pass the zoo's own seed pairs")
    method_kwargs = method_kwargs or {}
    t = as_target(target, inputs.shape[0], inputs.device)
    out: dict[str, torch.Tensor] = {}
    missing = []
    for m in methods:
        k = key(zoo_key, seed_pairs, m, method_kwargs.get(m, {}), inputs, t)
        hit = load(k)
        if hit is None:
            hit = assemble(zoo_key, seed_pairs, m, method_kwargs.get(m, {}), inputs, t)
            if hit is not None:
                save(k, hit)  # one entry for the zoo from the per-model entries of `python -m helpers maps compute`
        if hit is None:
            missing.append((m, k))
        else:
            out[m] = hit.to(inputs.device)
    if missing:
        fresh = compute([m for m, _ in missing], models, inputs, t, method_kwargs, progress)
        for m, k in missing:
            save(k, fresh[m])
            out[m] = fresh[m]
    return {m: out[m] for m in methods}
