"""Chapter sources: output-free, parameterized, installable on Colab, citing their paper."""
import json

import pytest

from helpers.book import prose

from ..conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_source(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and "profile =" in "".join(params[0]["source"])
    first = "".join(code[0]["source"])
    assert 'if "google.colab" in sys.modules:' in first and "pip install" in first and "==" not in first
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "colab.research.google.com/github/" in text and path.name in text
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_hand_typed_results_in_the_prose(path):
    """Every result in a chapter's Markdown is glued from the run (decimals, percentages, ratios)."""
    typed = {n for md in prose.markdown_cells(path) for n in prose.typed_results(md)}
    assert not typed, f"{path.name}: hand-typed results {sorted(typed)}: glue them (helpers.report.glue)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_glue_roles_are_not_inside_code_spans(path):
    broken = [r for md in prose.markdown_cells(path) for r in prose.broken_roles(md)]
    assert not broken, f"{path.name}: {broken} render as code, not as the value: drop the outer backticks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_code_cells_stay_thin(path):
    """Logic lives in helpers: code cells have at most 15 non-blank lines (the parameters cell is declarations)."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"
            and "parameters" not in c.get("metadata", {}).get("tags", [])]
    long = [n for n in (sum(1 for ln in "".join(c["source"]).splitlines() if ln.strip()) for c in code) if n > 15]
    assert not long, f"{path.name}: code cells of {long} lines: move the logic into src/helpers"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_learning_goals_and_exercises_with_hidden_checked_solutions(path):
    """Learning goals at the top; 2–4 exercises at the end, each with a hidden solution that ends in a checker of
    helpers.exercises (so the static page shows the verdict and hides the code)."""
    import re

    from helpers.book import exercises

    nb = json.loads(path.read_text())
    cells = nb["cells"]
    md = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert "**Learning goals.**" in md[1], f"{path.name}: learning goals belong right under the title"
    ex = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Exercises" in "".join(c["source"])]
    assert len(ex) == 1, f"{path.name}: one '## Exercises' section"
    n = len(re.findall(r"^\d+\. \*\*", "".join(cells[ex[0]]["source"]), flags=re.M))
    assert 2 <= n <= 4, f"{path.name}: {n} exercises (2–4 per chapter)"
    solutions = [c for c in cells[ex[0] + 1:] if "hide-input" in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) == n, f"{path.name}: one hidden solution cell per exercise"
    for c in solutions:
        last = "".join(c["source"]).strip().splitlines()[-1]
        name = re.match(r"exercises\.(\w+)\(", last)
        assert name and callable(getattr(exercises, name.group(1), None)), f"{path.name}: {last!r} is no checker call"
