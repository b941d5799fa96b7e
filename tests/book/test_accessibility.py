"""Accessibility: colour-blind-safe colour scales and class palettes, and alt text for every static image."""
from __future__ import annotations

import importlib
import itertools
import json
import re

import numpy as np

from ..conftest import ROOT

# Colour scales safe for the common colour-vision deficiencies: ColorBrewer's diverging RdBu, the perceptually
# uniform viridis/cividis, and single-hue sequential scales.
SAFE_SCALES = {"rdbu", "rdbu_r", "viridis", "viridis_r", "cividis", "blues", "greys", "gray", "grey"}
# Machado, Oliveira & Fernandes (2009), severity 1: dichromat simulation in linear RGB
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]}


def _linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB colours."""
    xyz = np.clip(linear_rgb, 0, 1) @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                                                [0.0193, 0.1192, 0.9505]]).T
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def min_distance_under_cvd(rgb: np.ndarray) -> dict[str, float]:
    """Smallest CIELAB distance between two colours of a palette (sRGB in [0, 1]), as seen normally and by each
    kind of dichromat."""
    lin = _linear(np.asarray(rgb, dtype=float))
    views = {"normal": lin, **{k: lin @ np.array(m).T for k, m in CVD.items()}}
    out = {}
    for name, colours in views.items():
        lab = _lab(colours)
        out[name] = min(float(np.linalg.norm(lab[i] - lab[j])) for i, j in itertools.combinations(range(len(lab)), 2))
    return out


def test_cvd_check_tells_a_safe_palette_from_an_unsafe_one():
    red_green = np.array([[0.84, 0.15, 0.16], [0.17, 0.63, 0.17], [1.0, 0.5, 0.05], [0.12, 0.47, 0.71]])
    d = min_distance_under_cvd(red_green)  # matplotlib's tab10 red, green, orange, blue
    assert d["normal"] > 20 and min(d["protanopia"], d["deuteranopia"]) < 10


def test_clear_class_palette_stays_distinct_for_colour_blind_readers():
    """CLEAR colours its classes with Paul Tol's 'light' scheme: distinct (ΔE ≥ 10) for all three dichromacies up
    to the nine classes the module promises."""
    from helpers.attribution.clear import PALETTE, palette_rgb

    d = min_distance_under_cvd(palette_rgb(PALETTE)[:9])
    assert min(d.values()) >= 10, d


def _colour_scales() -> list[tuple[str, str]]:
    """(module, scale) for every ``colorscale=`` of the helpers package (literal names and module constants)."""
    found = []
    for path in sorted((ROOT / "src" / "helpers").rglob("*.py")):
        text = path.read_text()
        for value in re.findall(r"colorscale\s*=\s*([\"'][\w]+[\"']|[A-Z_][A-Z0-9_]*\b)", text):
            if value[0] in "\"'":
                found.append((path.stem, value.strip("\"'")))
            else:
                name = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
                found.append((path.stem, getattr(importlib.import_module(name), value)))
    return found


def test_every_map_colour_scale_is_colour_blind_safe():
    scales = _colour_scales()
    assert scales, "no colorscale found: the scan is broken"
    unsafe = [(m, s) for m, s in scales if not isinstance(s, str) or s.lower() not in SAFE_SCALES]
    assert not unsafe, f"use a colour-blind-safe scale (RdBu, viridis/cividis, a single hue): {unsafe}"


def _markdown_sources() -> list[tuple[str, str, str]]:
    """(name, folder, Markdown) of the book's pages and every Markdown cell of the chapter sources."""
    out = [(p.name, "book", p.read_text()) for p in sorted((ROOT / "book").glob("*.md"))]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                out.append((path.name, "notebooks", "".join(cell["source"])))
    return out


def test_every_static_image_has_alt_text_and_exists():
    images = 0
    for name, folder, text in _markdown_sources():
        for alt, src in re.findall(r"!\[([^\]]*)\]\(([^)\s]+)", text):
            images += 1
            assert alt.strip(), f"{name}: image {src} has no alt text"
            if not src.startswith(("http:", "https:")):
                assert (ROOT / folder / src).is_file(), f"{name}: image {src} is missing"
        for tag in re.findall(r"<img\b[^>]*>", text):
            images += 1
            assert re.search(r"\balt=\"[^\"]+\"", tag), f"{name}: {tag} has no alt text"
    assert images, "no image found: the scan is broken (every chapter has its Colab badge)"
