from helpers.book import prose


def test_typed_results_finds_decimals_percentages_and_ratios():
    text = "The SNR is 1.4, the share 26.8 % and 37 %, a gain of 3.4× and −0.34, a rate 3·10⁻⁴."
    assert prose.typed_results(text) == ["1.4", "26.8 %", "37 %", "3.4×", "−0.34", "3·10⁻⁴"]


def test_allowed_places_are_not_results():
    text = ("Math $r = 0.9$ and $$x = 1.5$$, code `lr=0.001`, glue {glue:text}`snr:.2f`, a link [a](b/1.2.html), "
            "arXiv:1704.04133, a quote “between 0.25 and 1.6”, a size 4×4 and 32×32 pixels, a year 2023, §2.3, "
            "chapter 1. Title")
    assert prose.typed_results(text) == []


def test_glue_keys_of_roles_and_directives():
    text = "a {glue:text}`snr_gain:.2f` b {glue:text}`verdict` c {glue}`fig`\n```{glue:figure} curve\n```\n"
    assert prose.glue_keys(text) == {"snr_gain", "verdict", "fig", "curve"}


def test_glued_keys_and_cell_lengths(tmp_path):
    import json

    nb = {"cells": [
        {"cell_type": "code", "source": ["a = 1\n", "\n", "b = 2\n"], "outputs": [
            {"output_type": "display_data", "metadata": {"scrapbook": {"name": "k1", "mime_prefix": ""}},
             "data": {"text/plain": "1"}},
            {"output_type": "stream", "text": "x"}]},
        {"cell_type": "markdown", "source": ["{glue:text}`k1`"]}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert prose.glued_keys(path) == {"k1"}
    assert prose.code_cell_lengths(path) == [2]
    assert prose.markdown_cells(path) == ["{glue:text}`k1`"]


def test_book_pages_have_no_hand_typed_results():
    """The intro and course pages follow the chapters' rule: no typed results."""
    from ..conftest import ROOT

    for page in sorted((ROOT / "book").glob("*.md")):
        assert not prose.typed_results(page.read_text()), page.name


def test_broken_roles_finds_glue_inside_code_spans():
    assert prose.broken_roles("a `{glue:text}`k`` b {glue:text}`ok` c") == ["`{glue:text}`k``"]
    assert prose.broken_roles("{glue:text}`a:.2f` and `code`") == []
