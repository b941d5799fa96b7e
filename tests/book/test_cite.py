"""The bibliography: one BibTeX file that parses, complete entries, and every cited key resolving to an entry."""
from __future__ import annotations

import re

import pytest

from helpers.book import cite

from ..conftest import ROOT

BIB = ROOT / "book" / "references.bib"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REQUIRED = {"article": ("author", "title", "journal", "year"), "inproceedings": ("author", "title", "booktitle", "year"),
            "book": ("author", "title", "publisher", "year"), "techreport": ("author", "title", "institution", "year"),
            "misc": ("author", "title", "year")}


def test_bibtex_parses_with_unique_keys_and_complete_entries():
    from pybtex.database import parse_file  # what sphinxcontrib-bibtex reads the file with

    entries = cite.bib_entries(BIB)
    keys = [k for _, k in entries]
    assert len(keys) == len(set(keys)), "duplicate keys"
    db = parse_file(str(BIB))
    assert set(db.entries) == set(keys)
    for key, entry in db.entries.items():
        fields = {f.lower() for f in entry.fields} | ({"author"} if entry.persons.get("author") else set())
        missing = [f for f in REQUIRED[entry.type.lower()] if f not in fields]
        assert not missing, f"{key}: missing {missing}"
        assert re.fullmatch(r"1[89]\d\d|20\d\d", entry.fields["year"]), key
        if "doi" in entry.fields:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", entry.fields["doi"]), key
        if "eprint" in entry.fields:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", entry.fields["eprint"]), key


def test_the_seed_papers_are_there():
    keys = cite.bib_keys(BIB)
    for key in ("woerl2023initialization", "kumar2017clear", "brunke2020evaluating", "khakzar2020rethinking",
                "adebayo2018sanity", "petsiuk2018rise", "huber2022benchmarking"):
        assert key in keys


def test_cited_keys_known_answer():
    text = "As {cite:t}`woerl2023initialization` show (see {cite:p}`a1, b2`), {cite}`c3`; {glue:text}`k` is no key."
    assert cite.cited_keys(text) == {"woerl2023initialization", "a1", "b2", "c3"}
    assert cite.unknown_keys(text, {"a1", "b2", "c3"}) == ["woerl2023initialization"]


def test_every_key_cited_in_the_book_exists():
    keys = cite.bib_keys(BIB)
    for path in CHAPTERS:
        assert not cite.unknown_keys(cite.notebook_markdown(path), keys), path.name
    for page in sorted((ROOT / "book").glob("*.md")):
        assert not cite.unknown_keys(page.read_text(), keys), page.name


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_has_a_reference_list_of_known_keys(path):
    keys = cite.bib_keys(BIB)
    listed = cite.CHAPTER_KEYS[path.name[:2]]
    assert set(listed) <= keys and len(listed) == len(set(listed))
    text = cite.references_markdown(path.name[:2])
    assert cite.cited_keys(text) == set(listed) and text.startswith("### References")


def test_references_of_an_unknown_chapter_name_the_fix():
    with pytest.raises(ValueError, match="helpers.cite.CHAPTER_KEYS"):
        cite.references_markdown("99")


def test_every_glossary_term_the_chapters_link_is_defined():
    """{term}`X` roles in the chapters and book pages name entries of book/glossary.md (case-insensitive, as Sphinx)."""
    import json
    import re

    from ..conftest import ROOT

    text = (ROOT / "book" / "glossary.md").read_text()
    block = text[text.index("```{glossary}"):]
    defined = {ln.strip().lower() for ln in block.splitlines()[1:] if ln and not ln.startswith((" ", "`"))}
    role = re.compile(r"\{term\}`([^`<]+?)(?:\s*<([^>]+)>)?`")
    used = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        md = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        used[nb.name] = {(m.group(2) or m.group(1)).strip().lower() for m in role.finditer(md)}
    assert all(used.values()), f"chapters that link no glossary term: {[k for k, v in used.items() if not v]}"
    missing = {k: sorted(v - defined) for k, v in used.items() if v - defined}
    assert not missing, f"terms not in the glossary: {missing}"
