"""The install lists agree: pyproject.toml (pip), environment.yml (conda) and the Makefile's torch pins."""
import re
import tomllib

import yaml

from .conftest import ROOT


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_lists_the_same_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = set(map(_norm, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        deps |= set(map(_norm, extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(map(_norm, pip)) - {"-e."} == deps


def test_only_lower_bounds_except_jupyter_book_major():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    for req in reqs:
        assert "==" not in req, f"exact pin {req}: use a lower bound (exact pins break Colab)"
    assert any(_norm(r) == "jupyter-book>=1.0,<2" for r in reqs)


def test_torch_pins_are_the_local_wheels():
    pins = (ROOT / "torch.txt").read_text().split()
    assert pins == ["torch==2.14.1", "torchvision==0.29.1"]
    assert "torch.txt" in (ROOT / "Makefile").read_text()
