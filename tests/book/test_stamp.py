"""The build stamp: an unchanged book keeps its build and its page check; any change to an input is noticed."""
from __future__ import annotations

import json

import pytest

from helpers.book import pagecheck, stamp


@pytest.fixture
def book(tmp_path):
    book = tmp_path / "book"
    (book / "notebooks").mkdir(parents=True)
    (book / "_config.yml").write_text("title: t\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "notebooks" / "01_a.ipynb").write_text('{"cells": []}')
    return book


def test_the_digest_follows_the_inputs_and_nothing_else(book):
    key = stamp.inputs_digest(book)
    (book / "_build" / "html").mkdir(parents=True)
    (book / "_build" / "html" / "index.html").write_text("<html>")  # the output
    (book / "_runs" / "smoke").mkdir(parents=True)
    (book / "_runs" / "smoke" / "01_a.ipynb").write_text("{}")  # another profile's run, not part of the book
    (book / "notebooks" / ".runs.json.lock").write_text("")
    assert stamp.inputs_digest(book) == key
    assert stamp.inputs_digest(book, {"strict": True}) != key
    (book / "notebooks" / "01_a.ipynb").write_text('{"cells": [1]}')
    changed = stamp.inputs_digest(book)
    assert changed != key
    (book / "notebooks" / "01_b.ipynb").write_text("{}")
    assert stamp.inputs_digest(book) not in (key, changed)


def test_a_stamp_counts_only_with_its_build(book):
    key = stamp.inputs_digest(book)
    assert not stamp.is_current(book, key)
    stamp.write(book, key)
    assert not stamp.is_current(book, key)  # no index.html: not a build
    (book / "_build" / "html" / "index.html").write_text("<html>")
    assert stamp.is_current(book, key) and not stamp.is_current(book, "other")
    stamp.clear(book)
    assert not stamp.is_current(book, key)


def test_the_page_check_of_an_unchanged_build_is_not_run_again(book, monkeypatch, capsys):
    (book / "_build" / "html").mkdir(parents=True)
    (book / "_build" / "html" / "index.html").write_text("<html>")
    stamp.write(book, stamp.inputs_digest(book))
    calls = []

    def check(book_dir):
        calls.append(book_dir)
        return {"01_a": ["figure 1 is 900 px wide in a 700 px column"]}

    monkeypatch.setattr(pagecheck, "check_book", check)
    assert pagecheck.warn(book) == 1 and len(calls) == 1
    assert pagecheck.warn(book) == 1 and len(calls) == 1  # the same build: its findings, printed again
    assert capsys.readouterr().err.count("900 px wide") == 2
    stamp.write(book, "a new build")
    assert pagecheck.warn(book) == 1 and len(calls) == 2
    kept = json.loads((book / "_build" / "html" / stamp.CHECKS).read_text())
    assert kept["found"] == {"01_a": ["figure 1 is 900 px wide in a 700 px column"]}


def test_a_check_that_did_not_run_is_not_kept(book, monkeypatch):
    (book / "_build" / "html").mkdir(parents=True)
    stamp.write(book, "k")

    def broken(book_dir):
        raise RuntimeError("no Chromium")

    monkeypatch.setattr(pagecheck, "check_book", broken)
    assert pagecheck.warn(book) == 0
    assert not (book / "_build" / "html" / stamp.CHECKS).exists()
