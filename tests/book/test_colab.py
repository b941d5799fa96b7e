import dataclasses
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

from helpers.book import colab

from ..conftest import ROOT

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_repository_is_read_from_the_book_config(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://github.com/someone/my-book/\n  branch: dev\n")
    assert colab.repository(cfg) == ("someone/my-book", "dev")
    assert colab.launch_url("someone/my-book", "dev", "01_x.ipynb") == \
        "https://colab.research.google.com/github/someone/my-book/blob/dev/notebooks/01_x.ipynb"
    cfg.write_text("repository:\n  url: https://gitlab.com/x/y\n")
    with pytest.raises(ValueError, match="https://github.com/<owner>/<name>"):
        colab.repository(cfg)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_links_and_installs_from_the_one_setting(path):
    """Badge and install cell follow book/_config.yml (run `python -m helpers sync` after changing it)."""
    repo, branch = colab.repository(ROOT / "book" / "_config.yml")
    assert not colab.sync(path, repo, branch, write=False, fold=False), \
        f"{path.name} is out of sync: python -m helpers sync"
    nb = json.loads(path.read_text())
    text = "".join(nb["cells"][0]["source"])
    assert colab.launch_url(repo, branch, path.name) in text and "colab.research.google.com/assets" not in text
    install = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert f"git+https://github.com/{repo}" in install and "==" not in install and colab.INSTALL_MARK in install


def test_sync_rewrites_a_changed_address_and_is_idempotent(tmp_path):
    nb_path = tmp_path / CHAPTERS[0].name
    shutil.copy2(CHAPTERS[0], nb_path)
    assert colab.sync(nb_path, "someone/else", "dev")
    nb = json.loads(nb_path.read_text())
    assert colab.badge_line("someone/else", "dev", nb_path.name) in "".join(nb["cells"][0]["source"])
    install = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "git+https://github.com/someone/else" in "".join(install["source"])
    assert not colab.sync(nb_path, "someone/else", "dev")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_solution_is_folded_on_colab(path):
    """Colab opens the sources, where the book's hide-input tag means nothing: every reference solution is a form
    (cellView form, first line "# @title Solution …"), folded until the reader opens it."""
    nb = json.loads(path.read_text())
    solutions = [c for c in nb["cells"] if colab.SOLUTION_TAG in c["metadata"].get("tags", [])]
    assert solutions
    for c in solutions:
        first = "".join(c["source"]).splitlines()[0]
        assert c["metadata"].get("cellView") == "form" and first.startswith("# @title Solution"), \
            f"{path.name}: a solution shows on Colab ({first!r}): run python -m helpers sync"
    assert not colab.fold_solutions(nb)


def test_fold_solutions_turns_the_solution_comment_into_the_forms_title_once():
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "source": ["# Solution 2: by hand\n", "x = 1\n",
                                                                                "exercises.check(x)"]},
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "source": ["x = 2"]},
        {"cell_type": "code", "metadata": {}, "source": ["# Solution in a visible cell stays\n", "y = 3"]}]}
    assert colab.fold_solutions(nb)
    a, b, c = nb["cells"]
    assert a["source"] == ["# @title Solution 2: by hand\n", "x = 1\n", "exercises.check(x)"]
    assert a["metadata"] == {"tags": ["hide-input"], "cellView": "form"}
    assert b["source"] == ["# @title Solution\n", "x = 2"] and b["metadata"]["cellView"] == "form"
    assert c == {"cell_type": "code", "metadata": {}, "source": ["# Solution in a visible cell stays\n", "y = 3"]}
    assert not colab.fold_solutions(nb)  # idempotent


def test_sync_folds_the_solutions_of_a_copy(tmp_path):
    repo, branch = colab.repository(ROOT / "book" / "_config.yml")
    nb_path = tmp_path / "09_x.ipynb"
    nb = json.loads((ROOT / "notebooks" / "09_how_far_to_trust.ipynb").read_text())
    for c in nb["cells"]:
        c["metadata"].pop("cellView", None)
        c["source"] = [s.replace("# @title ", "# ") for s in c["source"]]
    nb_path.write_text(json.dumps(nb))
    assert colab.sync(nb_path, repo, branch, fold=False) and not colab.sync(nb_path, repo, branch, fold=False)
    assert colab.sync(nb_path, repo, branch) and not colab.sync(nb_path, repo, branch)
    folded = [c for c in json.loads(nb_path.read_text())["cells"] if c["metadata"].get("cellView") == "form"]
    assert len(folded) == 2 and all("".join(c["source"]).startswith("# @title Solution") for c in folded)


def test_the_badge_is_a_local_svg():
    svg = ROOT / "notebooks" / colab.BADGE
    assert svg.read_text() == colab.badge_svg()
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and "Open in Colab" in "".join(root.itertext())


# ------------------------------------------------------------------- the colab profile by default on a Colab GPU

def _chapter_globals(path):
    """What a chapter's globals hold when its set-up cell runs: the parameters cell's values (and some imports)."""
    from helpers.book import profiles as runner

    return {**runner.declared_parameters(path), "np": object(), "torch": object()}


def test_packaged_profile_matches_profiles_colab_yaml():
    """``helpers/colab_profile.json`` is what Colab installs: regenerate it with `python -m helpers sync`."""
    import yaml

    data = colab.load_profile_data()
    prof = yaml.safe_load((ROOT / "profiles" / "colab.yaml").read_text())
    assert data["profile"] == "colab" and data["parameters"] == prof["parameters"], \
        "profiles/colab.yaml changed: run `python -m helpers sync` to update src/helpers/book/colab_profile.json"
    assert data["chapters"] == {str(k): v for k, v in prof["chapters"].items()}
    assert data["env"] == {k: str(v) for k, v in prof["env"].items()}
    from helpers.book import trust

    assert data["designs"]["default"] == [dataclasses.asdict(d) for d in trust.designs("default")], \
        "the book's designs changed: run `python -m helpers sync` to update src/helpers/book/colab_profile.json"


def test_chapter_9_reads_the_shipped_designs_without_the_repository(tmp_path, monkeypatch):
    """On Colab only the package is installed: chapter 9 takes the book's designs from colab_profile.json."""
    from helpers.book import trust

    monkeypatch.chdir(tmp_path)
    assert trust.designs("default", tmp_path) == trust.designs("default")
    with pytest.raises(SystemExit, match="unknown profile 'smoke'"):
        trust.designs("smoke", tmp_path)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_is_recognised_by_its_parameters(path):
    assert colab.identify_chapter(_chapter_globals(path), colab.load_profile_data()["signatures"]) == path.name[:2], \
        f"{path.name}: run `python -m helpers sync` (its parameter names changed)"


def test_colab_gpu_takes_the_colab_profile(monkeypatch):
    """Faked Colab + CUDA: chapter 5 gets the profile's zoo, its own override (SVHN) and the environment."""
    import types

    import torch

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("HELPERS_ALLOW_DOWNLOAD", raising=False)
    assert colab.on_colab_gpu()
    prof = colab.load_profile_data()
    g = _chapter_globals(next(p for p in CHAPTERS if p.name.startswith("05")))
    changed = colab.apply_profile(g)
    assert g["profile"] == "colab" and g["dataset"] == "svhn" != prof["parameters"]["dataset"]  # its own override
    assert g["arch"] == prof["parameters"]["arch"] and g["n_models"] == prof["parameters"]["n_models"]
    assert changed["dataset"] == "svhn" and "np" not in changed and os.environ["HELPERS_ALLOW_DOWNLOAD"] == "1"
    g1 = _chapter_globals(next(p for p in CHAPTERS if p.name.startswith("01")))
    colab.apply_profile(g1)
    assert g1["dataset"] == prof["parameters"]["dataset"] and "architectures" not in g1  # only declared names


def test_a_no_op_off_colab_without_a_gpu_or_with_a_chosen_profile(monkeypatch):
    import types

    import torch

    g = _chapter_globals(CHAPTERS[0])
    before = dict(g)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not colab.on_colab_gpu() and colab.apply_profile(g) == {} and g == before
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert colab.apply_profile(g) == {} and g == before  # Colab on a CPU runtime keeps the cell's values
    cell = {**g, "profile": "cell"}
    assert colab.apply_profile(cell, on_gpu=True) == {} and cell == {**before, "profile": "cell"}
    assert colab.apply_profile(dict(g, profile="smoke"), on_gpu=True) == {}  # papermill injected a profile


def test_chapter_setup_uses_the_hook(monkeypatch):
    """chapter.setup(globals()) builds its zoo from the colab values when the hook applies (zoo and data stubbed)."""
    from helpers.book import chapter

    seen = {}
    monkeypatch.setattr(chapter, "load_dataset", lambda name: seen.setdefault("dataset", name))
    monkeypatch.setattr(chapter, "ensure_zoo", lambda spec, **kw: seen.setdefault("spec", spec))
    monkeypatch.setattr(colab, "on_colab_gpu", lambda: True)
    monkeypatch.setenv("HELPERS_ALLOW_DOWNLOAD", "0")
    g = _chapter_globals(CHAPTERS[0])
    g["device"] = "cpu"
    kit = chapter.setup(g, progress=False)
    prof = colab.load_profile_data()["parameters"]
    assert seen["dataset"] == prof["dataset"] and seen["spec"].arch == prof["arch"]
    assert seen["spec"].n_models == prof["n_models"]
    assert kit.profile == "colab" and g["profile"] == "colab"
