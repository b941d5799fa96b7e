"""Dump every glued value of executed chapters, and compare two dumps (the "no behaviour change" check).

    python benchmarks/glue_dump.py run --profile smoke --out before.json [--chapters 01 02]
    python benchmarks/glue_dump.py dump book/notebooks --out after.json   # chapters already executed
    python benchmarks/glue_dump.py compare before.json after.json

``run`` executes the chapters with ``python -m helpers run --force`` into a scratch folder and reads every myst-nb
glue output (its ``text/plain`` form: the exact repr the page formats). ``compare`` prints the keys whose values
differ and exits 1 if any does (keys that measure wall time are reported apart and do not fail it).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TIMED = re.compile(r"second|per_s|_ips|speed|timing|_time|fast|slow|^t_", re.I)  # wall-clock numbers differ run to run


def glued(nb_path: Path) -> dict[str, str]:
    """``{glue key: text/plain}`` of one executed notebook."""
    nb = json.loads(nb_path.read_text())
    out: dict[str, str] = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            name = (o.get("metadata") or {}).get("scrapbook", {}).get("name")
            if name is not None:
                data = o.get("data", {})
                out[name] = "".join(data.get("text/plain", json.dumps(data, sort_keys=True)))
    return out


def run(profile: str, chapters: list[str] | None, out: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "helpers", "run", "--profile", profile, "--out", tmp, "--force"]
        cmd += ["--chapters", *chapters] if chapters else []
        subprocess.run(cmd, check=True, cwd=root)
        dump = {p.stem: glued(p) for p in sorted(Path(tmp).glob("[0-9][0-9]_*.ipynb"))}
    write(dump, out)


def write(dump: dict[str, dict[str, str]], out: Path) -> None:
    out.write_text(json.dumps(dump, indent=1, sort_keys=True))
    print(f"{sum(map(len, dump.values()))} glued values of {len(dump)} chapters -> {out}")


def read(folder: Path) -> dict[str, dict[str, str]]:
    """The glued values of the chapters already executed in ``folder`` (e.g. ``book/notebooks`` after make book)."""
    return {p.stem: glued(p) for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


def compare(a: Path, b: Path) -> int:
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    bad, timed = [], []
    for ch in sorted(set(da) | set(db)):
        ka, kb = da.get(ch, {}), db.get(ch, {})
        for k in sorted(set(ka) | set(kb)):
            if ka.get(k) != kb.get(k):
                (timed if TIMED.search(k) else bad).append(f"{ch} {k}: {ka.get(k)!r} -> {kb.get(k)!r}")
    n = sum(map(len, da.values()))
    for line in timed:
        print("timed (not compared):", line)
    for line in bad:
        print("DIFFERS:", line)
    print(f"{n} values compared: {len(bad)} differ, {len(timed)} wall-time values skipped")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--profile", required=True)
    r.add_argument("--chapters", nargs="*")
    r.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("dump", help="read the chapters already executed in a folder (no execution)")
    d.add_argument("folder", type=Path)
    d.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "run":
        run(args.profile, args.chapters, args.out)
        return 0
    if args.cmd == "dump":
        write(read(args.folder), args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
