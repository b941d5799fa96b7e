"""The course page: learning goals for every chapter, and a compute table built from the runner's timings."""
from __future__ import annotations

import json

import pytest

from helpers.book import course
from helpers.book import prose
from helpers.book import runner

from ..conftest import ROOT

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_has_learning_goals(path):
    goals = course.learning_goals(path)
    assert goals is not None, f"{path.name}: add a Markdown cell that starts with {course.GOALS_MARK}"
    assert goals.count("\n- ") >= 2 and not prose.typed_results(goals)


def _notebook(path, *cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [{"cell_type": t, "metadata": {}, "source": [s]} for t, s in cells],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_learning_goals_are_read_from_their_cell(tmp_path):
    _notebook(tmp_path / "a.ipynb", ("markdown", "# 1. A"), ("code", "**Learning goals.** in code: no"),
              ("markdown", "**Learning goals.** After this chapter you can\n\n- x;\n- y."))
    assert course.learning_goals(tmp_path / "a.ipynb") == "After this chapter you can\n\n- x;\n- y."
    _notebook(tmp_path / "b.ipynb", ("markdown", "# 2. B\n\nNo goals here."))
    assert course.learning_goals(tmp_path / "b.ipynb") is None


def test_runner_records_timings_and_keeps_other_profiles(tmp_path):
    path = tmp_path / course.TIMINGS
    runner.record_timing(path, "default", "01_a", {"seconds": 90.0, "device": "CPU (2 cores)"})
    runner.record_timing(path, "colab", "01_a", {"seconds": 30.0, "device": "GPU (T4)"})
    runner.record_timing(path, "default", "01_a", {"seconds": 120.0, "device": "CPU (2 cores)"})
    data = json.loads(path.read_text())
    assert data == {"default": {"01_a": {"seconds": 120.0, "device": "CPU (2 cores)"}},
                    "colab": {"01_a": {"seconds": 30.0, "device": "GPU (T4)"}}}
    assert runner.device_label("cpu", {}).startswith("CPU (")


def test_read_timings_first_source_wins_and_skips_bad_files(tmp_path):
    first, second, bad = tmp_path / "a.json", tmp_path / "timings-colab.json", tmp_path / "c.json"
    first.write_text(json.dumps({"default": {"01_a": {"seconds": 60}}}))
    second.write_text(json.dumps({"default": {"01_a": {"seconds": 999}, "02_b": {"seconds": 6}},
                                  "colab": {"01_a": {"seconds": 12}}}))
    bad.write_text("{not json")
    got = course.read_timings([first, bad, second, tmp_path / "missing.json"])
    assert got == {"default": {"01_a": {"seconds": 60}, "02_b": {"seconds": 6}}, "colab": {"01_a": {"seconds": 12}}}


def test_compute_table_known_answer():
    timings = {"default": {"01_a": {"seconds": 90}, "02_b": {"seconds": 1600}}, "colab": {"01_a": {"seconds": 30}}}
    table = course.compute_table({"01": "1. A", "02": "2. B"}, {"01": "01_a", "02": "02_b"}, timings)
    rows = table.splitlines()
    assert rows[0].startswith("| Chapter | CPU minutes")
    assert rows[2] == "| 1. A | 1.5 | 0.5 |"
    assert rows[3] == "| 2. B | 27 | not recorded |"
    assert rows[4] == "| **all chapters** | **28** | incomplete |"  # 1.5 + 26.7 minutes: whole minutes above ten


def test_fragment_from_a_run_of_the_runner(tmp_path):
    """End to end on a tiny project: the chapter's goals and the timings the runner wrote appear on the page."""
    _notebook(tmp_path / "notebooks" / "01_one.ipynb", ("markdown", "# 1. Title one\n\ntext"),
              ("markdown", "**Learning goals.** After this chapter you can\n\n- do one thing;\n- do another."))
    book_dir = tmp_path / "book"
    (book_dir / "notebooks").mkdir(parents=True)
    runner.record_timing(book_dir / "notebooks" / course.TIMINGS, "default", "01_one",
                         {"seconds": 42.0, "date": "2026-01-02", "commit": "abc1234", "device": "CPU (2 cores)"})
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "timings-colab.json").write_text(
        json.dumps({"colab": {"01_one": {"seconds": 600.0, "date": "2026-01-03", "commit": "def5678",
                                         "device": "GPU (Tesla T4)"}}}))
    path = course.write_fragment(book_dir, tmp_path)
    text = path.read_text()
    assert path == book_dir / "_generated" / "course.md"
    assert "### 1. Title one\n\nAfter this chapter you can\n\n- do one thing;\n- do another." in text
    assert "| 1. Title one | 0.7 | 10 |" in text
    assert "`default`: CPU (2 cores), 2026-01-02, commit `abc1234`." in text
    assert "`colab`: GPU (Tesla T4), 2026-01-03, commit `def5678`." in text


def test_fragment_says_where_goals_and_timings_are_missing(tmp_path):
    _notebook(tmp_path / "notebooks" / "09_later.ipynb", ("markdown", "# 9. Later"))
    text = course.fragment(tmp_path / "book", tmp_path)
    assert "*No learning goals yet" in text
    assert "| 9. Later | not recorded | not recorded |" in text
    assert "`colab`: not recorded yet; `python -m helpers run --profile colab` records it" in text


def test_course_page_includes_the_fragment():
    page = (ROOT / "book" / "course.md").read_text()
    assert "```{include} _generated/course.md" in page
    assert not prose.typed_results(page)


def test_the_course_plan_schedules_every_chapter():
    """Each chapter's topic (its title up to the first colon or question) appears in the session table."""
    import re

    page = (ROOT / "book" / "course.md").read_text()
    table = page.split("| Session |", 1)[1].split("\n\n", 1)[0]
    missing = []
    for cid, title in course.chapter_titles(ROOT / "notebooks").items():
        topic = re.split(r"[:?]", title.split(". ", 1)[1])[0]
        words = [w for w in re.findall(r"[A-Za-z-]{4,}", topic) if w.lower() not in {"with", "from", "across", "what"}]
        if not any(w.lower() in table.lower() for w in words[:2]):
            missing.append(title)
    assert missing == []
