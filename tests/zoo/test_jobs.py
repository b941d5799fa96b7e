import submitit

from tests.conftest import zoo_bytes
from helpers.zoo import Recipe, ZooSpec, jobs, records, train_zoo

TINY = Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0)


def test_units_are_fixed_groups_of_what_the_cache_lacks(data_root):
    s = ZooSpec("lenet", "mnist-5k", TINY, 16)
    train_zoo(s.subset(2), device="cpu", progress=False)
    with records.model_lock(s, "i2_d2"):  # being trained elsewhere: not submitted
        us = jobs.units([s, s.subset(4)], "cpu")
        assert jobs.status(s) == {"done": 2, "missing": 13, "running": 1}
    assert [u.pairs for u in us] == [tuple((k, k) for k in range(3, 15)), ((15, 15),)]  # slot 3 is taken by 15
    assert us[0].pairs[0] == (3, 3) and all(u.zoo().key == s.key for u in us)
    assert len(jobs.units([ZooSpec("convnet", "mnist-5k", TINY, 3)], "cpu")) == 3  # not groupable: one per job


def test_a_job_array_zoo_equals_a_sequential_run_byte_for_byte(data_root, tmp_path, monkeypatch):
    s = ZooSpec("lenet", "mnist-5k", TINY, 14)
    ex = submitit.LocalExecutor(folder=tmp_path / "jobs")
    ex.update_parameters(timeout_min=5)
    array = ex.map_array(jobs.run_unit, jobs.units([s], "cpu"))
    assert len(array) == 2
    shas = {k: v for job in array for k, v in job.result().items()}
    assert len(shas) == 14 and jobs.units([s], "cpu") == []  # rerun: nothing to submit
    split = zoo_bytes(s)
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "sequential"))
    train_zoo(s, device="cpu", progress=False)
    assert zoo_bytes(s) == split
