"""The course page's generated part: learning goals per chapter and the compute each chapter needs.

Nothing here is typed by hand that a run measures, nor copied: the goals are read from the chapters (their
"**Learning goals.**" cell), and the minutes come from the timings that :mod:`helpers.runner` records after every
successful chapter run (:data:`TIMINGS`): the book's own pages first, then other runs in ``book/_runs/<profile>/``, then recorded runs of other machines in
``docs/results/timings-<profile>.json``. :func:`write_fragment` writes ``<book>/_generated/course.md``, which
``book/course.md`` includes; ``python -m helpers build`` calls it before every build.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .prose import markdown_cells


FRAGMENT = Path("_generated") / "course.md"


TIMINGS = "timings.json"  # written by helpers.runner beside the executed pages


RECORDED = "timings-{profile}.json"  # a recorded run of another machine, in docs/results/


# (profile, column heading): the CPU book and a Colab GPU, as the course needs them
COLUMNS: tuple[tuple[str, str], ...] = (("default", "CPU minutes (`default`)"), ("colab", "GPU minutes (`colab`)"))


GOALS_MARK = "**Learning goals.**"  # the Markdown cell near the top of every chapter starts with this


def learning_goals(nb_path: Path) -> str | None:
    """The chapter's learning goals: the text of its Markdown cell that starts with :data:`GOALS_MARK`, without
    the mark (``None`` when the chapter has none)."""
    for text in map(str.strip, markdown_cells(nb_path)):
        if text.startswith(GOALS_MARK):
            return text[len(GOALS_MARK):].strip()
    return None


def chapter_titles(notebooks: Path) -> dict[str, str]:
    """``{"01": "1. Logit gradients …"}``: the first Markdown heading of every chapter source in ``notebooks``."""
    out = {}
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        text = (markdown_cells(path) or [""])[0]
        heading = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
        out[path.name[:2]] = heading
    return out


def timing_sources(book_dir: Path, root: Path) -> list[Path]:
    """Where recorded timings are looked up, best first: the book's pages, other runs, recorded runs."""
    return [book_dir / "notebooks" / TIMINGS, *sorted((root / "book" / "_runs").glob(f"*/{TIMINGS}")),
            *sorted((root / "docs" / "results").glob(RECORDED.format(profile="*")))]


def read_timings(paths: Iterable[Path]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{profile: {chapter name: record}}`` from timing files in the runner's format (a recorded
    ``timings-<profile>.json`` is a copy of one); for a chapter recorded in several, the first file wins."""
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for profile, chapters in data.items():
            if isinstance(chapters, dict):
                for name, record in chapters.items():
                    if isinstance(record, dict) and "seconds" in record:
                        merged.setdefault(profile, {}).setdefault(name, record)
    return merged


def minutes(seconds: float) -> str:
    """Minutes for the table: one decimal below ten minutes, whole minutes above."""
    m = seconds / 60
    return f"{m:.1f}" if m < 10 else f"{m:.0f}"


def compute_table(chapters: Mapping[str, str], names: Mapping[str, str],
                  timings: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """A Markdown table: one row per chapter (``chapters``: number -> title, ``names``: number -> notebook name),
    one column per (profile, heading) with the recorded minutes, "not recorded" where there is none, and a total."""
    head = "| Chapter | " + " | ".join(h for _, h in columns) + " |"
    rows = [head, "|" + " --- |" * (len(columns) + 1)]
    totals = {p: 0.0 for p, _ in columns}
    complete = {p: True for p, _ in columns}
    for number, title in chapters.items():
        cells = []
        for profile, _ in columns:
            record = timings.get(profile, {}).get(names[number])
            if record is None:
                complete[profile] = False
                cells.append("not recorded")
            else:
                totals[profile] += float(record["seconds"])
                cells.append(minutes(float(record["seconds"])))
        rows.append(f"| {title} | " + " | ".join(cells) + " |")
    rows.append("| **all chapters** | " + " | ".join(
        (f"**{minutes(totals[p])}**" if complete[p] else "incomplete") for p, _ in columns) + " |")
    return "\n".join(rows)


def provenance(timings: Mapping[str, Mapping[str, Mapping[str, Any]]], columns: Sequence[tuple[str, str]]) -> str:
    """One line per profile: where and when its minutes were recorded, or how to record them."""
    lines = []
    for profile, _ in columns:
        records = list(timings.get(profile, {}).values())
        if not records:
            lines.append(f"- `{profile}`: not recorded yet; `python -m helpers run --profile {profile}` records it "
                         f"(a run of another machine counts once its `{TIMINGS}` is copied to "
                         f"`docs/results/{RECORDED.format(profile=profile)}`).")
            continue
        devices = ", ".join(sorted({str(r.get("device", "?")) for r in records}))
        dates = sorted(str(r.get("date", "?")) for r in records)
        when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        commits = ", ".join(sorted({f"`{r.get('commit', '?')}`" for r in records}))
        lines.append(f"- `{profile}`: {devices}, {when}, commit {commits}.")
    return "\n".join(lines)


def fragment(book_dir: Path, root: Path, columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """The generated part of the course page: goals per chapter, then the compute table and where it came from."""
    notebooks = root / "notebooks"
    titles = chapter_titles(notebooks)
    names = {p.name[:2]: p.stem for p in notebooks.glob("[0-9][0-9]_*.ipynb")}
    timings = read_timings(timing_sources(book_dir, root))
    extra = [(p, f"minutes (`{p}`)") for p in sorted(timings) if p not in {c for c, _ in columns}
             and set(timings[p]) & set(names.values())]
    columns = [*columns, *extra]
    parts = ["## Learning goals", "", "Each chapter starts with these goals.", ""]
    for number, title in titles.items():
        goals = learning_goals(notebooks / f"{names[number]}.ipynb")
        parts += [f"### {title}", "", goals or f"*No learning goals yet: add a Markdown cell that starts with "
                                               f"`{GOALS_MARK}` near the top of the chapter.*", ""]
    parts += ["## Compute per chapter", "",
              "Wall time of each chapter's last execution by `python -m helpers run`, recorded by the runner "
              "(training the zoo included when its models were not cached yet), in minutes:", "",
              compute_table(titles, names, timings, columns), "", "Recorded:", "", provenance(timings, columns), ""]
    return "\n".join(parts)


def write_fragment(book_dir: Path, root: Path) -> Path:
    """Write :func:`fragment` to ``<book>/_generated/course.md`` (included by ``course.md``); return its path."""
    path = book_dir / FRAGMENT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!-- generated by helpers.course.write_fragment: do not edit -->\n\n" + fragment(book_dir, root))
    return path
