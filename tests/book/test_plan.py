import re
from tests.conftest import ROOT
from helpers.book import plan
from helpers.zoo import jobs, records, train_zoo

SMOKE_MAIN = "9063a71f0e3f3541"  # the smoke profile's LeNet zoo: 1 epoch on 1,000 digits, lr 0.003


def test_every_sibling_zoo_of_a_notebook_is_planned():
    calls = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
             if ".sibling(" in p.read_text() or ".siblings(" in p.read_text()}
    assert calls == set(plan.SIBLINGS)


def test_every_control_zoo_of_a_notebook_is_planned():
    calls = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if ".control(" in p.read_text()}
    assert calls == set(plan.CONTROLS)


def test_smoke_plan_has_the_kits_zoos_and_chapter_3s_siblings(data_root):
    planned, device = plan.plan("smoke")
    assert device == "cpu"
    by_chapter = {}
    for ch, s in planned:
        by_chapter.setdefault(ch, []).append(s)
    assert set(by_chapter) == {f"0{k}" for k in range(1, 9)}
    assert all(specs[0].key == SMOKE_MAIN for specs in by_chapter.values())
    assert [(s.control, s.n_models) for s in by_chapter["01"][1:]] == [("untrained", 3)]
    assert [(s.control, s.n_models) for s in by_chapter["02"][1:]] == [("untrained", 3)]
    assert [(s.control, s.n_models) for s in by_chapter["03"] if s.control] == [("untrained", 3)]
    shuffled = by_chapter["07"][1]
    assert (shuffled.control, shuffled.n_models, shuffled.recipe.epochs) == ("random-labels", 2, 5)
    by_chapter = {ch: [s for s in specs if s.control is None] for ch, specs in by_chapter.items()}
    assert {ch: specs[0].n_models for ch, specs in by_chapter.items()} == {**{f"0{k}": 3 for k in range(1, 8)}, "08": 4}
    ch3 = by_chapter["03"]
    assert [s.arch for s in ch3] == ["lenet", "lenet", "lenet-wide", "lenet", "lenet", "lenet"]
    assert ch3[3].seed_pairs == [(0, 0), (1, 0), (2, 0)] and ch3[4].seed_pairs == [(0, 0), (0, 1), (0, 2)]
    merged = jobs.merge([s for _, s in planned])
    assert [(s.arch, s.control, s.n_models) for s in merged] == [
        ("lenet", None, 8), ("lenet", "untrained", 3), ("lenet-wide", None, 3), ("lenet", "random-labels", 2)]


def test_zoo_train_then_status_reads_the_cache(data_root, capsys):
    from helpers.book import cli

    assert cli.main(["zoo", "status", "--profile", "smoke", "--chapters", "03"]) == 0
    assert re.search(rf"lenet +mnist-5k +{SMOKE_MAIN}  done +0  missing +7  running +0", capsys.readouterr().out)
    planned, _ = plan.plan("smoke", ["01"])
    main = planned[0][1]
    train_zoo(main.subset(2), device="cpu", progress=False)
    assert cli.main(["zoo", "train", "--profile", "smoke", "--chapters", "03", "--engine", "local"]) == 0
    assert re.search(r"done +7  missing +0  running +0", capsys.readouterr().out)
    assert sorted(records.writes(main)) == ["i0_d0", "i0_d1", "i0_d2", "i1_d0", "i1_d1", "i2_d0", "i2_d2"]
    assert [len(u.pairs) for u in jobs.units([main], "cpu")] == []  # a rerun would submit nothing


def test_maps_compute_fills_the_map_cache_per_model(data_root, tmp_path, capsys):
    import torch

    from helpers.attribution import mapcache, mapjobs
    from helpers.book import cli

    main = plan.plan("smoke", ["01"])[0][0][1]
    request = mapjobs.save_request(tmp_path / "req.pt", torch.rand(2, 1, 28, 28), torch.tensor([3, 7]))
    assert cli.main(["zoo", "train", "--profile", "smoke", "--chapters", "01"]) == 0
    assert cli.main(["maps", "compute", "--profile", "smoke", "--chapters", "01", "--methods", "gradient",
                     "--request", str(request)]) == 0
    assert mapjobs.map_units([main], ["gradient"], request) == []  # every model's entry is there
    inputs, target = mapjobs.load_request(request)
    assembled = mapcache.assemble(main.key, main.seed_pairs, "gradient", {}, inputs, target)
    assert assembled is not None and assembled.shape == (3, 2, 28, 28)
