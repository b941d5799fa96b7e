"""Glued prose and tables render as text a reader can read: no code marks in glued text, no split table rows."""
from __future__ import annotations

from helpers.book import report


def test_glued_strings_lose_their_code_marks():
    assert report.glue("t_rank", "lowest for `gradcam_relu`, highest for `lime`") == \
        "lowest for gradcam_relu, highest for lime"
    assert report.GLUED["t_rank"] == "lowest for gradcam_relu, highest for lime"
    assert report.glue("t_num", 0.25) == 0.25


def test_table_cells_escape_the_pipe():
    md = report.table([{"baseline": "zero", "p(class | baseline)": 0.1, "method": "|x| of the map"}]).data
    header, _, row = md.splitlines()
    assert header.count(" | ") == 2 and r"p(class \| baseline)" in header  # three columns, not four
    assert row.count(" | ") == 2 and r"\|x\| of the map" in row


def test_the_methods_table_keeps_fullgrad_in_four_cells():
    md = report.methods_table(["fullgrad"]).data
    row = md.splitlines()[-1]
    assert len([c for c in row.split(" | ")]) == 4 and r"\|input-gradient ⊙ input\|" in row


def test_a_cell_that_ends_with_glue_shows_nothing():
    """``glue``/``glue_all`` as a cell's last expression publish no output (issue 25: stray raw outputs)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []  # what the display hook would send as the cell's result (myst-nb's glue records are not results)
    shell.displayhook.write_format_data = lambda data, md=None: shown.append(data)
    for value in (0.02078, 3, "gradcam 3, gradcam_relu 1"):
        glued = report.glue("t_quiet", value)
        assert glued == value and report.GLUED["t_quiet"] == value and type(report.GLUED["t_quiet"]) is type(value)
        shell.displayhook(glued)
    glued = report.glue_all({"sh_m": 12, "sh_last": "0.43"})
    assert glued == {"sh_m": 12, "sh_last": "0.43"}
    shell.displayhook(glued)
    assert shown == []
    shell.displayhook({"plain": "dict"})
    assert shown, "the test's display hook records nothing: it cannot fail"
