"""Chapter sources: output-free, parameterized, installable on Colab, citing their paper."""
import json

import pytest

from .conftest import ROOT

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


def test_at_least_one_chapter():
    assert NOTEBOOKS
