import json
import os
import re

import pytest

from helpers.book import deps
from helpers.book import params
from helpers.book import profiles
from helpers.book import runner
from helpers.book.profiles import Chapter, find_chapters, parse_overrides

from ..conftest import ROOT


def test_parse_overrides_reads_yaml_values():
    assert parse_overrides(["n_models=4", "arch=lenet", "n_train=null", "seeds=[1, 2]", "lr=1e-3"]) == {
        "n_models": 4, "arch": "lenet", "n_train": None, "seeds": [1, 2], "lr": 0.001}
    with pytest.raises(SystemExit, match="write -p key=value"):
        parse_overrides(["n_models"])


def test_profiles_exist_and_unknown_profile_is_explained():
    for name in ("smoke", "default", "paper", "colab"):
        prof = profiles.load_profile(name, ROOT / "profiles")
        assert prof["parameters"]["dataset"] and "description" in prof
    assert profiles.load_profile("paper", ROOT / "profiles")["env"]["HELPERS_ALLOW_DOWNLOAD"] == "1"
    assert profiles.load_profile("default", ROOT / "profiles")["env"]["HELPERS_ALLOW_DOWNLOAD"] == "0"
    with pytest.raises(SystemExit, match="unknown profile 'fast': choose one of colab, default, paper, smoke"):
        profiles.load_profile("fast", ROOT / "profiles")


def test_chapters_are_found_and_parameters_filtered():
    chapters = find_chapters(ROOT / "notebooks")
    assert chapters and chapters[0].id == "01"
    ch = chapters[0]
    declared = profiles.declared_parameters(ch.path)
    assert {"dataset", "arch", "n_models", "profile"} <= set(declared)
    prof = {"parameters": {"n_models": 5, "not_a_parameter": 1}, "chapters": {"01": {"n_models": 7}}}
    params = profiles.chapter_parameters(prof, ch, {"arch": "convnet"}, "x")
    assert params == {"n_models": 7, "arch": "convnet", "profile": "x"}


def test_chapter_key_changes_with_what_matters(tmp_path):
    ch = find_chapters(ROOT / "notebooks")[0]
    base = runner.chapter_key(ch, {"a": 1}, {}, "h")
    assert base == runner.chapter_key(ch, {"a": 1}, {}, "h")
    assert base != runner.chapter_key(ch, {"a": 2}, {}, "h")
    assert base != runner.chapter_key(ch, {"a": 1}, {"HELPERS_ALLOW_DOWNLOAD": "1"}, "h")
    assert base != runner.chapter_key(ch, {"a": 1}, {}, "other helpers")
    edited = tmp_path / ch.path.name
    edited.write_text(ch.path.read_text().replace("Logit gradients", "Logit-gradients"))
    assert base != runner.chapter_key(Chapter("01", edited), {"a": 1}, {}, "h")


def test_unknown_chapter_and_parameter_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown chapter.*99"):
        runner.run_chapters("smoke", ["99"], out_dir=tmp_path)
    with pytest.raises(SystemExit, match="n_modles are declared by none"):
        runner.run_chapters("smoke", ["01"], {"n_modles": 3}, out_dir=tmp_path)


def test_profile_globals_are_declared_by_every_chapter():
    """A key under `parameters:` reaches every chapter that declares it; a chapter-specific value must sit under
    `chapters:` or it silently changes another chapter that happens to use the same name."""
    chapters = find_chapters(ROOT / "notebooks")
    declared = {c.id: set(profiles.declared_parameters(c.path)) for c in chapters}
    for name in ("smoke", "default", "paper", "colab"):
        prof = profiles.load_profile(name, ROOT / "profiles")
        for key in prof["parameters"]:  # the zoo's globals: a page without a zoo (chapter 9) declares none
            missing = [cid for cid, keys in declared.items() if key not in keys and "dataset" in keys]
            assert not missing, f"{name}: global parameter {key!r} is not declared by chapter(s) {missing}"
        for cid, overrides in prof["chapters"].items():
            assert cid in declared, f"{name}: no chapter {cid}"
            unknown = set(overrides) - declared[cid]
            assert not unknown, f"{name}: chapter {cid} does not declare {sorted(unknown)}"


# ------------------------------------------------------------------------------------ validation (no kernel)

ZOO = {"profile": "x", "dataset": "mnist-5k", "arch": "lenet", "n_models": 4, "epochs": 1, "batch_size": 64,
       "lr": 0.001, "optimizer": "adam", "schedule": "none", "augment": "none", "n_train": None, "vary": "both",
       "seed_offset": 0, "device": None, "n_images": 6, "n_single": 3, "n_ensemble": 3, "n_single_dreams": 2,
       "n_arch_models": 3, "n_stats": 500, "architectures": ["lenet", "lenet-wide"], "methods": None,
       "class_methods": ["gradient"], "class_method": "gradient", "level": 0.9}


@pytest.mark.parametrize("change, message", [
    ({"n_models": 0}, r"n_models=0: use a whole number ≥ 1$"),
    ({"n_models": 2.5}, r"n_models=2.5: use a whole number ≥ 1"),
    ({"epochs": 0}, r"epochs=0: use a whole number ≥ 1"),
    ({"n_images": -1}, r"n_images=-1: use a whole number ≥ 1"),
    ({"n_images": True}, r"n_images=True: use a whole number ≥ 1"),
    ({"n_images": None}, r"n_images=None: use a whole number ≥ 1$"),
    ({"n_train": 0}, r"n_train=0: use a whole number ≥ 1 \(or None\)"),
    ({"n_ensemble": 4}, r"n_ensemble=4 but n_models=4: use n_ensemble < n_models .*held out"),
    ({"n_single": 5}, r"n_single=5 but n_models=4: use n_single ≤ n_models"),
    ({"n_single_dreams": 3, "n_ensemble": 2}, r"use n_single_dreams ≤ n_ensemble"),
    ({"n_arch_models": 1}, r"n_arch_models=1: use n_arch_models ≥ 2"),
    ({"dataset": "nosuch"}, r"dataset='nosuch' is unknown: choose one of mnist-5k, .*folder:<path>"),
    ({"dataset": "folder:/no/such/folder"}, r"no folder /no/such/folder"),
    ({"arch": "resnet"}, r"arch='resnet' is not a known architecture: choose one of lenet, "),
    ({"arch": ["lenet"]}, r"arch=\[.lenet.\] is not a known architecture"),
    ({"dataset": 3}, r"dataset=3 is unknown"),
    ({"architectures": ["lenet", "vgg"]}, r"architectures has unknown architecture\(s\) 'vgg'"),
    ({"methods": ["gradient", "saliency"]}, r"methods has unknown attribution method\(s\) 'saliency': .*gradcam"),
    ({"methods": []}, r"methods=\[\]: give a non-empty list"),
    ({"class_method": "nosuch"}, r"class_method='nosuch' is not a known attribution method"),
    ({"level": 1.5}, r"level=1.5: use a number between 0 and 1"),
    ({"optimizer": "rmsprop"}, r"unknown optimizer 'rmsprop': use 'adam' or 'sgd'"),
    ({"vary": "seed"}, r"vary='seed': use 'both', 'init' or 'data'"),
    ({"device": "gpu"}, r"device='gpu': use cpu, cuda"),
    ({"lr": 0}, r"lr=0 cannot train: use a learning rate > 0"),
    ({"lr": "abc"}, r"lr='abc' cannot train"),
    ({"seed_offset": -1}, r"seed_offset=-1: use a whole number ≥ 0"),
    ({"n_models": 2, "MIN_MODELS": 3}, r"n_models=2 but this chapter needs n_models ≥ 3: raise n_models"),
    ({"n_sanity_models": 5}, r"n_sanity_models=5 but n_models=4: use n_sanity_models ≤ n_models"),
])
def test_validate_refuses_bad_parameters_with_the_fix(change, message):
    params.validate(ZOO, ZOO, nullable={"n_stats"})  # the base is fine
    with pytest.raises(ValueError, match=message) as err:
        params.validate({**ZOO, **change}, ZOO, nullable={"n_stats"})
    assert "\n" not in str(err.value)


def test_validate_accepts_none_where_the_chapter_does(tmp_path):
    params.validate({**ZOO, "n_stats": None, "n_train": None}, ZOO, nullable={"n_stats"})
    params.validate({**ZOO, "dataset": f"folder:{tmp_path}", "methods": ["gradient", "gradcam"]}, ZOO)
    with pytest.raises(ValueError, match=r"n_stats=None: use a whole number ≥ 1$"):
        params.validate({**ZOO, "n_stats": None}, ZOO)  # neither the default nor the comment offers None


def test_every_profile_passes_validation_for_every_chapter():
    for name in ("smoke", "default", "paper", "colab"):
        prof = profiles.load_profile(name, ROOT / "profiles")
        for ch in find_chapters(ROOT / "notebooks"):
            spec = profiles.inspect_parameters(ch.path)
            params.validate(profiles.chapter_parameters(prof, ch, {}, name), {k: p.default for k, p in spec.items()},
                            {k for k, p in spec.items() if p.nullable}, ROOT)


def test_bad_parameters_stop_the_run_before_any_kernel(tmp_path):
    from helpers.book.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^\[01\] 01_logit_gradients \(profile 'smoke'\): dataset='nosuch' is "
                                         r"unknown: choose one of"):
        runner.run_chapters("smoke", ["01"], {"dataset": "nosuch"}, out_dir=out)
    with pytest.raises(SystemExit) as err:
        main(["run", "--profile", "smoke", "--chapters", "01", "-p", "n_models=0", "--out", str(out)])
    assert isinstance(err.value.code, str) and "n_models=0: use a whole number ≥ 1" in err.value.code  # exit 1
    assert not out.exists()


# ------------------------------------------------------------------ what a chapter uses (a package in tmp)

def _nb(*cells: tuple[str, str], tags: dict[int, list[str]] | None = None) -> str:
    made = []
    for k, (kind, src) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"c{k}", "metadata": {"tags": (tags or {}).get(k, [])}, "source": src}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        made.append(cell)
    return json.dumps({"cells": made, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)


@pytest.fixture
def package(tmp_path):
    """helpers/{__init__, a, b, c, d, e, sub/f}: a imports b and sub.f, b imports e inside a function, sub.f
    imports c (``from .. import``); d is imported by nobody."""
    pkg = tmp_path / "pkg" / "helpers"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "", "a.py": "from . import b\nfrom .sub import f\n",
             "b.py": "def g():\n    from .e import z\n    return z\n", "c.py": "x = 1\n", "d.py": "y = 2\n",
             "e.py": "z = 3\n", "sub/__init__.py": "", "sub/f.py": "from .. import c\n"}
    for name, text in files.items():
        (pkg / name).write_text(text)
    return pkg


def test_helpers_modules_follow_the_package_imports(package, tmp_path):
    nb = tmp_path / "01_x.ipynb"
    nb.write_text(_nb(("code", 'import sys\nif "google.colab" in sys.modules:\n    %pip install -q x'),
                      ("code", "from helpers import a\nimport torch")))
    used = {p.relative_to(package).as_posix() for p in deps.helpers_modules(nb, package)}
    assert used == {"__init__.py", "a.py", "b.py", "e.py", "sub/__init__.py", "sub/f.py", "c.py"}
    nb.write_text(_nb(("code", "import helpers.d as D\nfrom helpers.sub.f import c")))
    used = {p.relative_to(package).as_posix() for p in deps.helpers_modules(nb, package)}
    assert used == {"__init__.py", "d.py", "sub/__init__.py", "sub/f.py", "c.py"}
    nb.write_text(_nb(("code", "from helpers import a\nprint((1")))  # unclosed: not Python
    assert len(deps.helpers_modules(nb, package)) == 8  # cannot tell: every module counts


def test_dependency_digest_ignores_unrelated_modules(package, tmp_path):
    nb = tmp_path / "01_x.ipynb"
    nb.write_text(_nb(("code", "from helpers import a")))
    base = deps.dependency_digest(nb, package, tmp_path)
    (package / "d.py").write_text("y = 'edited'\n")
    assert deps.dependency_digest(nb, package, tmp_path) == base
    (package / "e.py").write_text("z = 'edited'\n")  # reached through a function-level import of b
    assert deps.dependency_digest(nb, package, tmp_path) != base
    base = deps.dependency_digest(nb, package, tmp_path)
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "run.json").write_text("{}")
    nb.write_text(_nb(("code", "from helpers import a\nshow('run.json')")))
    with_file = deps.dependency_digest(nb, package, tmp_path)
    (tmp_path / "docs" / "results" / "run.json").write_text('{"a": 1}')
    assert deps.dependency_digest(nb, package, tmp_path) != with_file


# ------------------------------------------------------------- runs in a tiny project (fake kernel: fast)

@pytest.fixture
def project(tmp_path, package, monkeypatch):
    """A project with two chapters, the profiles default and smoke, the tmp package and a fake executor."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "profiles").mkdir()
    params = 'profile = "manual"\nn_images = 2\nfail = False'
    (root / "notebooks" / "01_one.ipynb").write_text(_nb(("markdown", "# 1. One"), ("code", params),
                                                         ("code", "from helpers import a"), tags={1: ["parameters"]}))
    (root / "notebooks" / "02_two.ipynb").write_text(_nb(("markdown", "# 2. Two"), ("code", params),
                                                         ("code", "from helpers import d"), tags={1: ["parameters"]}))
    for name, n in (("default", 3), ("smoke", 1)):
        (root / "profiles" / f"{name}.yaml").write_text(f"env: {{X_{name.upper()}: '1'}}\nparameters: "
                                                        f"{{n_images: {n}}}\n")
    monkeypatch.setattr(runner, "PACKAGE_DIR", package)
    calls = []

    def fake_execute(source, output, params, cwd, progress):
        calls.append((source.stem, params))
        nb = json.loads(source.read_text())
        nb["cells"].append({"cell_type": "code", "id": "out", "metadata": {}, "execution_count": 1,
                            "source": "", "outputs": [{"output_type": "stream", "name": "stdout",
                                                       "text": json.dumps(params)}]})
        output.write_text(json.dumps(nb))
        if params.get("fail"):
            raise RuntimeError("the kernel\n  died")  # a message over two lines is reported on one

    monkeypatch.setattr(runner, "_execute", fake_execute)
    return {"root": root, "calls": calls, "package": package}


def test_other_profiles_never_replace_the_book(project):
    root = project["root"]
    book, smoke = root / "book" / "notebooks", root / "book" / "_runs" / "smoke"
    assert runner.run_chapters("default", root=root, progress=False) == [("01", "ran"), ("02", "ran")]
    page = (book / "01_one.ipynb").read_bytes()
    assert runner.run_chapters("smoke", root=root, progress=False) == [("01", "ran"), ("02", "ran")]
    assert (book / "01_one.ipynb").read_bytes() == page and (smoke / "01_one.ipynb").is_file()
    assert set(runner.read_runs(book / ".runs.json")) == {"default"}
    assert set(runner.read_runs(smoke / ".runs.json")["smoke"]) == {"01_one", "02_two"}
    assert runner.page_info(smoke / "01_one.ipynb")["profile"] == "smoke"
    # make book PROFILE=smoke: the book shows smoke; the default's keys for those pages go, so default reruns
    assert runner.run_chapters("smoke", ["01"], root=root, progress=False, book=True) == [("01", "ran")]
    assert runner.read_runs(book / ".runs.json") == {
        "default": {"02_two": runner.read_runs(book / ".runs.json")["default"]["02_two"]},
        "smoke": {"01_one": runner.read_runs(smoke / ".runs.json")["smoke"]["01_one"]}}
    from helpers.book import build as book_lib

    assert book_lib.page_profiles(root / "book") == {"01_one": "smoke", "02_two": "default"}
    assert runner.run_chapters("default", root=root, progress=False) == [("01", "ran"), ("02", "cached")]


def test_a_chapter_reruns_only_when_something_it_uses_changed(project):
    root, package = project["root"], project["package"]
    run = lambda **kw: dict(runner.run_chapters("default", root=root, progress=False, **kw))  # noqa: E731
    assert run() == {"01": "ran", "02": "ran"}
    assert run() == {"01": "cached", "02": "cached"}
    (package / "c.py").write_text("x = 2\n")  # used by 01 (through a -> sub.f), not by 02
    assert run() == {"01": "ran", "02": "cached"}
    (package / "d.py").write_text("y = 3\n")  # used by 02 only
    assert run() == {"01": "cached", "02": "ran"}
    assert run(overrides={"n_images": 5}) == {"01": "ran", "02": "ran"}
    (root / "profiles" / "default.yaml").write_text("env: {X_DEFAULT: '2'}\nparameters: {n_images: 5}\n")
    assert run() == {"01": "ran", "02": "ran"}
    nb = root / "notebooks" / "02_two.ipynb"
    nb.write_text(nb.read_text().replace("# 2. Two", "# 2. Two, edited"))
    assert run() == {"01": "cached", "02": "ran"}
    (root / "book" / "notebooks" / "01_one.ipynb").write_text(_nb(("markdown", "# replaced by hand")))
    assert run() == {"01": "ran", "02": "cached"}  # the page's own key no longer matches
    assert run(force=True) == {"01": "ran", "02": "ran"}


def test_a_failure_keeps_the_previous_page(project):
    root = project["root"]
    runner.run_chapters("default", ["01"], root=root, progress=False)
    page = root / "book" / "notebooks" / "01_one.ipynb"
    before = page.read_bytes()
    with pytest.raises(SystemExit) as err:
        runner.run_chapters("default", ["01"], {"fail": True}, root=root, progress=False)
    failed = page.with_name("01_one.failed.ipynb")
    assert err.value.code == (f"[01] 01_one failed: RuntimeError: the kernel died; the failed notebook is {failed}; "
                              f"{page} is unchanged")
    assert page.read_bytes() == before and failed.is_file()
    assert sorted(p.name for p in page.parent.iterdir()) == [".runs.json", ".runs.json.lock", ".timings.json.lock",
                                                             "01_one.failed.ipynb", "01_one.ipynb", "timings.json"]
    assert runner.run_chapters("default", ["01"], root=root, progress=False) == [("01", "cached")]
    from helpers.book import build as book_lib

    assert book_lib.executed_chapters(root / "book") == ["01_one"]  # the failed notebook is no page
    runner.run_chapters("default", ["01"], root=root, progress=False, force=True)
    assert not failed.exists()


# ------------------------------------------------------------------------ papermill on a 2-cell notebook

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A committed one-chapter project executed once with papermill (a real kernel, a few seconds)."""
    import subprocess

    tmp = tmp_path_factory.mktemp("tiny")
    root = tmp / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "profiles").mkdir()
    (root / "profiles" / "smoke.yaml").write_text("env: {}\nparameters: {}\n")
    (root / "notebooks" / "01_tiny.ipynb").write_text(_nb(
        ("markdown", "# 1. Tiny"), ("code", 'profile = "manual"\nfail = False'),
        ("code", "if fail:\n    raise ValueError('boom')\nprint('ok', profile)"), tags={1: ["parameters"]}))
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], check=True)
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = tmp / "out"
    result = runner.run_chapters("smoke", root=root, out_dir=out, progress=False)
    return {"root": root, "out": out, "commit": commit, "result": result, "page": (out / "01_tiny.ipynb").read_bytes()}


def test_papermill_run_marks_profile_and_commit_and_a_failure_changes_nothing(tiny_run):
    """Real kernels: the page says which profile and commit built it; a failing cell leaves the page
    byte-identical, keeps the failed notebook beside it and says where, in one line."""
    root, out, commit = tiny_run["root"], tiny_run["out"], tiny_run["commit"]
    assert tiny_run["result"] == [("01", "ran")]
    page = out / "01_tiny.ipynb"
    nb = json.loads(page.read_text())
    assert nb["metadata"]["helpers"]["profile"] == "smoke" and nb["metadata"]["helpers"]["commit"] == commit
    assert not nb["metadata"]["helpers"]["dirty"]
    shown = "".join(nb["cells"][1]["source"])  # the cell under the title
    assert f"profile `smoke` at commit `{commit}`" in shown and "uncommitted" not in shown
    assert "ok smoke" in json.dumps(nb["cells"])
    before = page.read_bytes()
    with pytest.raises(SystemExit) as err:
        runner.run_chapters("smoke", root=root, out_dir=out, overrides={"fail": True}, progress=False)
    failed = out / "01_tiny.failed.ipynb"
    assert err.value.code == (f"[01] 01_tiny failed in cell 3: ValueError: boom; the failed notebook is {failed}; "
                              f"{page} is unchanged")
    assert page.read_bytes() == before
    errors = [o for c in json.loads(failed.read_text())["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["evalue"] == "boom"
    assert sorted(p.name for p in out.iterdir()) == [".runs.json", ".runs.json.lock", ".timings.json.lock",
                                                     "01_tiny.failed.ipynb", "01_tiny.ipynb",
                                                     "timings.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~mask for p in out.iterdir())  # not mkstemp's 0600


def test_the_built_page_shows_profile_and_commit(tiny_run, tmp_path):
    from helpers.book import build as book

    npm = ROOT / "build" / "npm"
    if not all((npm / "node_modules" / p.rsplit("@", 1)[0]).is_dir() for p in book.NPM_PACKAGES):
        pytest.skip("npm packages not cached in build/npm (make book fetches them once)")
    book_dir = tmp_path / "book"
    (book_dir / "notebooks").mkdir(parents=True)
    for name in ("_config.yml", "intro.md"):
        (book_dir / name).write_bytes((ROOT / "book" / name).read_bytes())
    (book_dir / "notebooks" / "01_tiny.ipynb").write_bytes(tiny_run["page"])
    book.build(book_dir, npm)
    html = (book_dir / "_build" / "html" / "notebooks" / "01_tiny.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert f"Executed with the profile smoke at commit {tiny_run['commit']} on" in text
    assert book.page_profiles(book_dir) == {"01_tiny": "smoke"}
    assert not book.was_reused(book_dir)
    book.build(book_dir, npm)  # nothing changed: the build is kept
    assert book.was_reused(book_dir)
    intro = book_dir / "intro.md"
    intro.write_text(intro.read_text() + "\nA sentence added after the first build.\n")
    book.build(book_dir, npm)  # a changed page: built again
    assert not book.was_reused(book_dir)
    assert "A sentence added after the first build." in (book_dir / "_build" / "html" / "intro.html").read_text()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_device_the_machine_lacks_is_refused_before_the_kernel():
    with pytest.raises(ValueError, match=r"device='cuda' but this machine has no CUDA GPU: use device=None"):
        params.validate({**ZOO, "device": "cuda"}, ZOO, nullable={"n_stats"})


def test_the_next_run_removes_what_killed_runs_left(project):
    import subprocess

    root = project["root"]
    out = root / "book" / "notebooks"
    out.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = [out / f".01_one.running-{dead.pid}-x.ipynb", out / f".tmp-{dead.pid}-y-.runs.json"]
    live = out / f".02_two.running-{os.getpid()}-z.ipynb"  # a run going on now (this process)
    for path in [*left, live]:
        path.write_text("{}")
    runner.run_chapters("default", ["01"], root=root, progress=False)
    assert not any(p.exists() for p in left) and live.exists()


def test_concurrent_runs_keep_every_entry_of_the_run_record(tmp_path):
    import subprocess
    import sys
    import textwrap

    path = tmp_path / ".runs.json"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from helpers.book import runner
        for i in range(100):
            runner._record_run(Path({str(path)!r}), "p" + sys.argv[1], f"ch{{sys.argv[1]}}_{{i}}", "k")
        """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)]) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert sum(len(v) for v in runner.read_runs(path).values()) == 300
