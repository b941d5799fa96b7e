"""The zoo cache as the record of what is done: per model a weights file ``<name>.pt`` and its own record
``<name>.json`` (seeds, sha256, accuracy, seconds, device, torch, host), both written atomically, the record last,
so a record means a complete file. No shared file is read, changed and written: trainers in several processes or
on several hosts (a shared file system) only ever add their own models. A lock per model (``fcntl.flock`` on
``.locks/<name>.lock``, released by the kernel when its process dies) keeps two trainers from training the same
model, and tells :func:`is_running`. Caches written before the records (one ``manifest.json``) still load.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator
import torch

from ..data.files import atomic_write, sha256_bytes
from .spec import ZooSpec


MANIFEST = "manifest.json"  # the old, shared record of a zoo: read, never written
LOCKS = ".locks"
WRITES = "writes.log"  # one line per model written: which process wrote which model when


def _fix(spec: ZooSpec) -> str:
    return f"delete it and run `python -m helpers zoo train` (or train_zoo(spec) for zoo {spec.key}) to retrain"


def _read_json(path: Path, spec: ZooSpec) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt zoo record {path} ({str(e).splitlines()[0]}): {_fix(spec)}") from None


def record_path(spec: ZooSpec, name: str) -> Path:
    return spec.directory / f"{name}.json"


def read_record(spec: ZooSpec, name: str) -> dict[str, Any] | None:
    """The record of model ``name``: its own file, else its entry in an old ``manifest.json``, else ``None``."""
    path = record_path(spec, name)
    if path.is_file():
        return _read_json(path, spec)
    return _legacy(spec).get(name)


def _legacy(spec: ZooSpec) -> dict[str, Any]:
    path = spec.directory / MANIFEST
    if not path.is_file():
        return {}
    models = _read_json(path, spec).get("models")
    if not isinstance(models, dict):
        raise ValueError(f"corrupt zoo record {path} (no 'models' table): {_fix(spec)}")
    return models


def read_manifest(spec: ZooSpec) -> dict[str, Any]:
    """Every model of ``spec``'s folder that has a record (old ``manifest.json`` entries included, own records
    first), as ``{"spec": identity, "models": {name: record}}``."""
    models = dict(_legacy(spec))
    if spec.directory.is_dir():
        for path in sorted(spec.directory.glob("i*_d*.json")):
            models[path.stem] = _read_json(path, spec)
    return {"spec": spec.identity(), "models": models}


def write_model(spec: ZooSpec, name: str, state: dict[str, torch.Tensor], record: dict[str, Any]) -> dict[str, Any]:
    """Write model ``name``'s weights, then its record (with the weights' sha256), each atomically; returns the
    record. Also appends one line to ``writes.log``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    path = spec.directory / f"{name}.pt"
    atomic_write(path, blob)
    record = {**record, "file": path.name, "sha256": sha256_bytes(blob)}
    atomic_write(record_path(spec, name), json.dumps(record, indent=2, sort_keys=True).encode())
    line = f"{name} pid={os.getpid()} host={record.get('host', '')} job={record.get('job', '')} t={time.time():.3f}\n"
    fd = os.open(spec.directory / WRITES, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(fd, line.encode())  # one short write with O_APPEND: lines of concurrent writers do not mix
    finally:
        os.close(fd)
    return record


def writes(spec: ZooSpec) -> list[str]:
    """The names of the models written into ``spec``'s folder, one per write, in order."""
    path = spec.directory / WRITES
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _lock_file(spec: ZooSpec, name: str) -> Path:
    return spec.directory / LOCKS / f"{name}.lock"


@contextlib.contextmanager
def model_lock(spec: ZooSpec, name: str, blocking: bool = False) -> Iterator[bool]:
    """Hold model ``name``'s lock for the ``with`` block; yields whether it was taken (always, if ``blocking``)."""
    path = _lock_file(spec, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_running(spec: ZooSpec, name: str) -> bool:
    """Whether another process holds model ``name``'s lock (is training it)."""
    if not _lock_file(spec, name).is_file():
        return False
    with model_lock(spec, name) as mine:
        return not mine


def remove_stale_temporaries(spec: ZooSpec) -> list[Path]:
    """Remove the temporary files (``.<name>.pt.*``, ``.<name>.json.*``) left by killed runs; a model's files are
    removed only while holding its lock, so a run writing that model at the same time keeps its own. Returns them."""
    removed: list[Path] = []
    if not spec.directory.is_dir():
        return removed
    for tmp in sorted(spec.directory.glob(".*.*.*")):
        name = tmp.name[1:].split(".")[0]
        if not (tmp.is_file() and name.startswith("i") and "_d" in name) and not tmp.name.startswith(f".{MANIFEST}."):
            continue
        with model_lock(spec, name) as mine:
            if mine:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
