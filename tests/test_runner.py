import pytest

from helpers import runner
from helpers.runner import Chapter, find_chapters, parse_overrides

from .conftest import ROOT


def test_parse_overrides_reads_yaml_values():
    assert parse_overrides(["n_models=4", "arch=lenet", "n_train=null", "seeds=[1, 2]", "lr=1e-3"]) == {
        "n_models": 4, "arch": "lenet", "n_train": None, "seeds": [1, 2], "lr": 0.001}
    with pytest.raises(SystemExit, match="write -p key=value"):
        parse_overrides(["n_models"])


def test_profiles_exist_and_unknown_profile_is_explained():
    for name in ("smoke", "default", "paper", "colab"):
        prof = runner.load_profile(name, ROOT / "profiles")
        assert prof["parameters"]["dataset"] and "description" in prof
    assert runner.load_profile("paper", ROOT / "profiles")["env"]["HELPERS_ALLOW_DOWNLOAD"] == "1"
    assert runner.load_profile("default", ROOT / "profiles")["env"]["HELPERS_ALLOW_DOWNLOAD"] == "0"
    with pytest.raises(SystemExit, match="unknown profile 'fast': choose one of colab, default, paper, smoke"):
        runner.load_profile("fast", ROOT / "profiles")


def test_chapters_are_found_and_parameters_filtered():
    chapters = find_chapters(ROOT / "notebooks")
    assert chapters and chapters[0].id == "01"
    ch = chapters[0]
    declared = runner.declared_parameters(ch.path)
    assert {"dataset", "arch", "n_models", "profile"} <= set(declared)
    prof = {"parameters": {"n_models": 5, "not_a_parameter": 1}, "chapters": {"01": {"n_models": 7}}}
    params = runner.chapter_parameters(prof, ch, {"arch": "convnet"}, "x")
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
    declared = {c.id: set(runner.declared_parameters(c.path)) for c in chapters}
    for name in ("smoke", "default", "paper", "colab"):
        prof = runner.load_profile(name, ROOT / "profiles")
        for key in prof["parameters"]:
            missing = [cid for cid, keys in declared.items() if key not in keys]
            assert not missing, f"{name}: global parameter {key!r} is not declared by chapter(s) {missing}"
        for cid, overrides in prof["chapters"].items():
            assert cid in declared, f"{name}: no chapter {cid}"
            unknown = set(overrides) - declared[cid]
            assert not unknown, f"{name}: chapter {cid} does not declare {sorted(unknown)}"
