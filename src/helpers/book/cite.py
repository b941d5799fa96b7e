"""Citations: the keys of ``book/references.bib``, the keys a text cites, and each chapter's references.

The book cites with sphinxcontrib-bibtex roles, ``{cite:p}`key``` ("(Woerl et al., 2023)") and ``{cite:t}`key```
("Woerl et al. (2023)"), whose targets are the entries of the one BibTeX file; ``book/bibliography.md`` lists them
all. :data:`CHAPTER_KEYS` is what each chapter's own list of references cites, and :func:`references_markdown`
writes that list as citation roles (for the "References" cell at the end of a chapter). The tests check that every
key cited anywhere exists in the BibTeX file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable



_ENTRY = re.compile(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", re.M)


_ROLE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


CHAPTER_KEYS: dict[str, tuple[str, ...]] = {
    "01": ("woerl2023initialization", "simonyan2014deep", "lecun1998gradient", "sellam2022multiberts",
           "spearman1910correlation", "brown1910experimental"),
    "02": ("woerl2023initialization", "simonyan2014deep", "shrikumar2016not", "sundararajan2017axiomatic",
           "smilkov2017smoothgrad", "shrikumar2017learning", "selvaraju2017gradcam", "springenberg2015striving",
           "ribeiro2016why", "lundberg2017unified", "zeiler2014visualizing", "nie2018theoretical",
           "sellam2022multiberts", "kokhlikyan2020captum"),
    "03": ("woerl2023initialization", "sellam2022multiberts", "spearman1910correlation", "brown1910experimental",
           "lecun1998gradient", "simonyan2015very", "he2016deep"),
    "04": ("woerl2023initialization", "mordvintsev2015inceptionism", "olah2017feature", "simonyan2014deep"),
    "05": ("kumar2017clear", "woerl2023initialization", "zeiler2014visualizing", "mahendran2016salient",
           "nie2018theoretical", "tol2021colour", "sellam2022multiberts", "efron1993introduction",
           "kokhlikyan2020captum", "netzer2011reading", "parkhi2012cats", "khosla2011novel"),
    "06": ("brunke2020evaluating", "woerl2023initialization", "zeiler2014visualizing", "petsiuk2018rise",
           "samek2017evaluating", "sturmfels2020visualizing", "sundararajan2017axiomatic", "shrikumar2017learning",
           "lundberg2017unified", "song2023pitfalls", "sellam2022multiberts"),
    "07": ("adebayo2018sanity", "khakzar2020rethinking", "woerl2023initialization", "springenberg2015striving",
           "kim2019why", "bach2015pixel", "selvaraju2017gradcam", "chattopadhay2018gradcampp", "srinivas2019full",
           "huber2022benchmarking", "sixt2020explanations", "sellam2022multiberts", "montavon2017explaining"),
    "08": ("woerl2023initialization", "smilkov2017smoothgrad", "bykov2022noisegrad", "bykov2021explaining",
           "song2023pitfalls", "adebayo2018sanity", "simonyan2014deep", "shrikumar2016not"),
    "09": ("sellam2022multiberts", "efron1993introduction", "woerl2023initialization"),
}


def bib_entries(bib: str | Path) -> list[tuple[str, str]]:
    """``[(entry type, key)]`` of a BibTeX file, in file order (``@comment``/``@string``/``@preamble`` left out)."""
    text = Path(bib).read_text(encoding="utf-8")
    return [(t.lower(), k) for t, k in _ENTRY.findall(text) if t.lower() not in ("comment", "string", "preamble")]


def bib_keys(bib: str | Path) -> set[str]:
    return {k for _, k in bib_entries(bib)}


def cited_keys(markdown: str) -> set[str]:
    """Keys cited by ``{cite}``, ``{cite:p}``, ``{cite:t}``, … roles (several keys per role, comma-separated)."""
    return {k.strip() for m in _ROLE.finditer(markdown) for k in m.group(1).split(",") if k.strip()}


def notebook_markdown(nb_path: str | Path) -> str:
    """All Markdown of a notebook, cell after cell (:func:`helpers.prose.markdown_cells`)."""
    from .prose import markdown_cells

    return "\n\n".join(markdown_cells(nb_path))


def unknown_keys(markdown: str, keys: Iterable[str]) -> list[str]:
    """Cited keys that are not among ``keys`` (the BibTeX file's)."""
    return sorted(cited_keys(markdown) - set(keys))


def references_markdown(chapter: str) -> str:
    """A chapter's references as a Markdown list of textual citations, each linking to the bibliography page."""
    if chapter not in CHAPTER_KEYS:
        raise ValueError(f"no references for chapter {chapter!r}: add its keys to helpers.cite.CHAPTER_KEYS")
    return "### References\n\n" + "\n".join(f"- {{cite:t}}`{k}`" for k in CHAPTER_KEYS[chapter])
