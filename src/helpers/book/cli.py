"""Command line: ``python -m helpers run|build|strip|sync|zoo|maps``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import build
from . import plan
from . import colab
from . import profiles
from . import runner


def main(argv: list[str] | None = None) -> int:
    root = profiles.project_root()
    p = argparse.ArgumentParser(prog="python -m helpers", description="Run and build the saliency book.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute chapter notebooks with papermill (the default profile into "
                                   "book/notebooks, others into book/_runs/PROFILE)")
    r.add_argument("--profile", default="default", help="profiles/NAME.yaml (smoke, default, colab, paper)")
    r.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 01 02 (default: all)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    r.add_argument("--out", type=Path, help="folder for executed notebooks (default: book/notebooks for the "
                                            "default profile or with --book, else book/_runs/PROFILE)")
    r.add_argument("--book", action="store_true", help="write into book/notebooks whatever the profile "
                                                       "(make book PROFILE=x): the book then shows this profile")
    r.add_argument("--force", action="store_true", help="re-execute even if nothing changed")
    b = sub.add_parser("build", help="vendor JS, write the TOC and build the static book")
    b.add_argument("--book", type=Path, default=root / "book")
    b.add_argument("--npm", type=Path, default=root / "build" / "npm", help="where npm packages are cached")
    b.add_argument("--strict", action="store_true", help="turn sphinx warnings into errors")
    b.add_argument("--force", action="store_true", help="rebuild even if the book's inputs are unchanged")
    b.add_argument("--check", action="store_true", help="then check every chapter page in headless Chromium and "
                   "print the defects found as warnings (also with HELPERS_PAGE_CHECK=1; never fails the build)")
    s = sub.add_parser("strip", help="strip outputs from notebooks/*.ipynb")
    s.add_argument("paths", nargs="*", type=Path)
    sub.add_parser("sync", help="regenerate every chapter's Colab badge and install cell from book/_config.yml, "
                                 "and the packaged colab profile")
    t = sub.add_parser("trust", help="simulate every chapter's design: coverage of its intervals and false verdicts")
    t.add_argument("--profile", default="default")
    t.add_argument("--n-sim", type=int, default=200, help="synthetic zoos per design")
    plan.add_parsers(sub)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.cmd in ("zoo", "maps"):
        return plan.main(args)
    if args.cmd == "run":
        res = runner.run_chapters(args.profile, args.chapters, profiles.parse_overrides(args.param), args.out,
                                  force=args.force, book=args.book)
        ran = sum(1 for _, how in res if how == "ran")
        print(f"{ran} chapter(s) executed, {len(res) - ran} cached, in {time.perf_counter() - t0:.0f} s")
    elif args.cmd == "build":
        index = build.build(args.book, args.npm, strict=args.strict, force=args.force)
        by_profile: dict[str, list[str]] = {}
        for name, prof in build.page_profiles(args.book).items():
            by_profile.setdefault(prof, []).append(name[:2])
        pages = "; ".join(f"profile {prof}: {' '.join(ids)}" for prof, ids in sorted(by_profile.items()))
        how = "unchanged since its last build, kept" if build.was_reused(args.book) else "built"
        print(f"book {how} in {time.perf_counter() - t0:.0f} s ({pages}): open {index.resolve().as_uri()}")
        from . import pagecheck

        if pagecheck.wanted(args.check):
            pagecheck.warn(args.book)
        if len(by_profile) > 1:
            print(f"warning: the pages come from {len(by_profile)} profiles; rerun `python -m helpers run --profile "
                  f"NAME --book` to build one profile's book", file=sys.stderr)
    elif args.cmd == "trust":
        from . import trust

        rows = trust.report(args.profile, args.n_sim)
        print(trust.table(rows))
        failing = [row.own.problem(row.fix()) for row in rows if not row.own.ok()]
        for line in failing:
            print(f"fails: {line}", file=sys.stderr)
        return 1 if failing else 0
    elif args.cmd == "sync":
        repo, branch = colab.repository(root / "book" / "_config.yml")
        (root / "notebooks" / "_static").mkdir(exist_ok=True)
        (root / "notebooks" / colab.BADGE).write_text(colab.badge_svg())
        for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            if colab.sync(path, repo, branch):
                print(f"synced {path} with github.com/{repo} ({branch})")
        if colab.write_profile_data(root):
            print(f"wrote src/helpers/book/{colab.PROFILE_DATA} from profiles/{colab.PROFILE}.yaml")
    else:
        paths = args.paths or sorted((root / "notebooks").glob("*.ipynb"))
        for path in paths:
            if build.strip_outputs(path):
                print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
