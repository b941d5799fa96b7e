import os
import signal
import subprocess
import sys

import torch

from tests.conftest import ROOT, zoo_bytes
from helpers.data import datasets
from helpers.zoo import Recipe, ZooSpec, cpu, records, train_zoo

TINY = Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0)


def _weights(m: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.flatten() for p in m.state_dict().values()])


def test_a_models_weights_do_not_depend_on_its_group(data_root):
    ds = datasets.load_dataset("mnist-5k")
    s = ZooSpec("lenet", "mnist-5k", TINY, 1)
    ref = _weights(cpu.train_group(s, ds, [(0, 0), (1, 1), (2, 2)])[0])
    assert torch.equal(ref, _weights(cpu.train_group(s, ds, [(0, 0)])[0]))  # alone (padded)
    assert torch.equal(ref, _weights(cpu.train_group(s, ds, [(7, 3), (0, 0)], workers=1)[1]))  # other partner
    assert [[p for p in g] for g in cpu.slot_groups([(0, 0), (12, 12), (1, 0), (0, 2)])] == \
        [[(0, 0), (1, 0), (0, 2)], [(12, 12)]]  # slot 0 twice: two groups
    # the check can fail: another number of slots is another computation
    assert not torch.equal(ref, _weights(cpu.train_group(s, ds, [(0, 0)], slots=2)[0]))


KILLER = """
import os, signal, sys
sys.path.insert(0, 'src')
from helpers.zoo import Recipe, ZooSpec, records, train_zoo
real, n = records.write_model, []
def write_then_die(*a, **k):
    out = real(*a, **k)
    n.append(1)
    if len(n) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 while the group's files are being written
    return out
records.write_model = write_then_die
train_zoo(ZooSpec('lenet', 'mnist-5k', Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0), 14), device='cpu',
          progress=False)
"""


def test_kill_minus_9_mid_group_resumes_to_identical_bytes(data_root, tmp_path, monkeypatch):
    s = ZooSpec("lenet", "mnist-5k", TINY, 14)
    p = subprocess.run([sys.executable, "-c", KILLER], cwd=ROOT, env={**os.environ, "HELPERS_DATA": str(data_root)},
                       timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert records.writes(s) == ["i0_d0", "i1_d1", "i2_d2"]
    train_zoo(s, device="cpu", progress=False)  # resume: the other 11 models, their group partners changed
    assert sorted(records.writes(s)) == sorted(f"i{k}_d{k}" for k in range(14))  # nothing trained twice
    resumed = zoo_bytes(s)
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "uninterrupted"))
    train_zoo(s, device="cpu", progress=False)
    assert zoo_bytes(s) == resumed


def test_zoos_trained_side_by_side_are_the_zoos_trained_alone(data_root, tmp_path, monkeypatch):
    """train_zoos (a chapter's sibling zoos, their groups in one pool of workers) writes the same bytes as
    train_zoo one zoo after the other, and trains each model once."""
    from helpers.zoo import store, train_zoos

    wide = ZooSpec("lenet-wide", "mnist-5k", TINY, 2)
    both = ZooSpec("lenet", "mnist-5k", TINY, 3)
    init = ZooSpec("lenet", "mnist-5k", TINY, 3, init_seeds=(0, 1, 2), data_seeds=(0, 0, 0))  # `both`'s folder
    pools = []
    real = store.train_groups
    monkeypatch.setattr(store, "train_groups", lambda work, *a, **k: pools.append(len(work)) or real(work, *a, **k))
    train_zoos([wide, both, init], device="cpu", progress=False)
    assert pools == [3]  # one pool for the three zoos
    assert sorted(records.writes(both)) == ["i0_d0", "i1_d0", "i1_d1", "i2_d0", "i2_d2"]  # (0, 0) once
    side_by_side = [zoo_bytes(s) for s in (wide, both, init)]
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "alone"))
    for s in (wide, both, init):
        train_zoo(s, device="cpu", progress=False)
    assert [zoo_bytes(s) for s in (wide, both, init)] == side_by_side
    train_zoos([wide, both], device="cpu", progress=False)  # nothing missing: nothing trained
    assert pools == [3]
