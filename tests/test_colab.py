import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from helpers import colab

from .conftest import ROOT

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
    assert not colab.sync(path, repo, branch, write=False), f"{path.name} is out of sync: python -m helpers sync"
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
    assert "git+https://github.com/someone/else" in "".join(nb["cells"][1]["source"])
    assert not colab.sync(nb_path, "someone/else", "dev")


def test_the_badge_is_a_local_svg():
    svg = ROOT / "notebooks" / colab.BADGE
    assert svg.read_text() == colab.badge_svg()
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and "Open in Colab" in "".join(root.itertext())
