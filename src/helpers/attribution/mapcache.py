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
import io
import warnings
from pathlib import Path
from typing import Any, Sequence
import torch
from torch import nn

from ..data import settings
from ..data.files import NotWritable, atomic_write, remove_stale_temporaries


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


FORMAT = 3  # an entry: {"maps": tensor, "sha256", "shape", "dtype"}; older bare tensors are misses


class BadEntry(Exception):
    """A cache entry that cannot be trusted (checksum, shape, dtype or values); it is deleted and recomputed."""


def load(k: str, shape: Sequence[int] | None = None) -> torch.Tensor | None:
    """The maps stored under ``k``, or ``None`` (a miss). An entry that is damaged, was edited (its sha256 no
    longer matches: torch does not check the zip's CRC), has another shape than ``shape`` (the request's
    models × images × H × W), another dtype or a non-finite value is deleted with a warning, and is a miss."""
    path = folder() / f"{k}.pt"
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            raise BadEntry("written by an older version of the cache")
        maps = entry["maps"]
        if not isinstance(maps, torch.Tensor) or tensor_digest(maps) != entry["sha256"]:
            raise BadEntry("its checksum does not match (the file changed after it was written)")
        if str(maps.dtype) != entry["dtype"] or not maps.is_floating_point():
            raise BadEntry(f"dtype {maps.dtype}, expected {entry['dtype']} (floating point)")
        if list(maps.shape) != list(entry["shape"]) or (shape is not None and list(maps.shape) != list(shape)):
            raise BadEntry(f"shape {tuple(maps.shape)}, expected {tuple(shape or entry['shape'])}")
        if not bool(torch.isfinite(maps).all()):
            raise BadEntry("it holds non-finite values")
    except Exception as err:  # a damaged, foreign or edited file is a miss, and is recomputed
        why = err if isinstance(err, BadEntry) else f"it cannot be read ({type(err).__name__})"
        warnings.warn(f"map cache entry {path.name} was bad ({why}): deleted, recomputing", stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    return maps


_READ_ONLY_WARNED: set[Path] = set()


def save(k: str, maps: torch.Tensor) -> bool:
    """Store ``maps`` under ``k`` (atomically, with its checksum, shape and dtype); return whether it was stored.
    A cache folder that cannot be written is used read-only: the maps are kept in memory only, with one warning.
    Non-finite maps are refused (they would poison every later hit)."""
    maps = maps.detach().to("cpu").contiguous()
    if not maps.is_floating_point() or not bool(torch.isfinite(maps).all()):
        raise ValueError(f"refusing to cache non-finite maps under {k}: check the method's inputs")
    out = folder()
    remove_stale()
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "maps": maps, "sha256": tensor_digest(maps), "shape": list(maps.shape),
                "dtype": str(maps.dtype)}, buf)
    try:
        atomic_write(out / f"{k}.pt", buf.getvalue())
    except NotWritable:
        if out not in _READ_ONLY_WARNED:
            _READ_ONLY_WARNED.add(out)
            warnings.warn(f"the map cache {out} is read-only: computing the missing maps without saving them "
                          f"(set HELPERS_DATA to a writable folder to keep them)", stacklevel=2)
        return False
    return True


_CLEANED: set[Path] = set()


def remove_stale() -> None:
    """Once per process: remove temporary files that killed runs left in the cache folder (those whose process
    is gone; files of runs going on now are kept), and the unnamed ``tmp*.tmp`` files of older versions."""
    out = folder()
    if out in _CLEANED or not out.is_dir():
        return
    _CLEANED.add(out)
    remove_stale_temporaries(out, legacy=("tmp*.tmp",))  # older versions named no process: removed an hour old


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
    shape = (len(models), inputs.shape[0], *inputs.shape[-2:])
    for m in methods:
        k = key(zoo_key, seed_pairs, m, method_kwargs.get(m, {}), inputs, t)
        hit = load(k, shape)
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
            bad = ~torch.isfinite(fresh[m]).flatten(2).all(-1)  # (M, N): a map with a NaN or an inf
            if bool(bad.any()):
                raise ValueError(f"{m} returned non-finite maps for {int(bad.any(0).sum())} of {bad.shape[1]} images "
                                 f"(on {int(bad.any(1).sum())} of {bad.shape[0]} models): check the images and "
                                 f"models for NaN or inf; nothing was cached")
            save(k, fresh[m])
            out[m] = fresh[m]
    return {m: out[m] for m in methods}
