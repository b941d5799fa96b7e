import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from helpers.zoo import Recipe, ZooSpec, load_zoo, records, train_zoo

TINY = Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0)


def spec(n=2) -> ZooSpec:
    return ZooSpec("lenet", "mnist-5k", TINY, n)


def test_a_corrupt_record_gives_one_line_naming_the_file_and_the_fix(data_root):
    s = spec(2)
    train_zoo(s, device="cpu", progress=False)
    (s.directory / "i1_d1.json").write_text('{"sha256": ')
    with pytest.raises(ValueError) as e:
        load_zoo(s, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and str(s.directory / "i1_d1.json") in msg and "delete it and run" in msg
    (s.directory / "i1_d1.json").unlink()
    (s.directory / "manifest.json").write_text("not json")
    with pytest.raises(ValueError, match=r"corrupt zoo record .*manifest.json .*delete it and run"):
        train_zoo(s, device="cpu", progress=False)


def test_an_old_manifest_cache_still_loads_and_is_not_retrained(data_root):
    s = spec(2)
    train_zoo(s, device="cpu", progress=False)
    before = load_zoo(s, device="cpu")
    entries = {}
    for name in ("i0_d0", "i1_d1"):  # turn the cache into the old layout: one manifest, no records
        entries[name] = json.loads((s.directory / f"{name}.json").read_text())
        (s.directory / f"{name}.json").unlink()
    (s.directory / "manifest.json").write_text(json.dumps({"spec": s.identity(), "models": entries}))
    (s.directory / records.WRITES).unlink()
    train_zoo(s, device="cpu", progress=False)
    assert records.writes(s) == []  # nothing trained again
    after = load_zoo(s, device="cpu")
    assert after.records(s) == before.records(s)


def test_a_checksum_mismatch_is_retrained_after_a_warning(data_root):
    s = spec(2)
    train_zoo(s, device="cpu", progress=False)
    good = (s.directory / "i1_d1.pt").read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    (s.directory / "i1_d1.pt").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_zoo(s, device="cpu")
    with pytest.warns(UserWarning, match=r"checksum mismatch for .*i1_d1.pt: retraining it"):
        train_zoo(s, device="cpu", progress=False)
    assert records.writes(s) == ["i0_d0", "i1_d1", "i1_d1"]  # only the damaged model again
    assert (s.directory / "i1_d1.pt").read_bytes() == good
    load_zoo(s, device="cpu")


def test_temporaries_of_killed_runs_are_removed_unless_their_model_is_locked(data_root):
    s = spec(2)
    s.directory.mkdir(parents=True)
    stale, busy = s.directory / ".i0_d0.pt.k3j2", s.directory / ".i1_d1.json.x9"
    stale.write_bytes(b"half")
    busy.write_bytes(b"being written")
    with records.model_lock(s, "i1_d1") as mine:  # another writer holds model 1 (a second open file: flock conflicts)
        assert mine and records.is_running(s, "i1_d1") and not records.is_running(s, "i0_d0")
        assert records.remove_stale_temporaries(s) == [stale]
    assert busy.exists() and not stale.exists()
    train_zoo(s, device="cpu", progress=False)
    assert not busy.exists()


def test_every_written_file_has_the_same_mode(data_root):
    s = spec(2)
    old = os.umask(0o022)
    try:
        train_zoo(s, device="cpu", progress=False)
    finally:
        os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in s.directory.rglob("*") if p.is_file()}
    assert set(modes.values()) == {"0o644"}, modes
    assert {"i0_d0.pt", "i0_d0.json", "writes.log", "i0_d0.lock"} <= set(modes)


def test_two_trainers_of_one_zoo_train_each_model_once(data_root):
    s = spec(4)
    code = ("import sys; sys.path.insert(0, 'src'); from helpers.zoo import Recipe, ZooSpec, train_zoo, load_zoo; "
            "s = ZooSpec('lenet', 'mnist-5k', Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0), 4); "
            "train_zoo(s, device='cpu', progress=False, engine='loop'); print(len(load_zoo(s, device='cpu').models))")
    env = {**os.environ, "HELPERS_DATA": str(data_root)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and [o.split()[-1] for o in outs] == ["4", "4"]
    assert sorted(records.writes(s)) == ["i0_d0", "i1_d1", "i2_d2", "i3_d3"]  # none twice, none lost
    assert len(records.read_manifest(s)["models"]) == 4
