"""Atomic writes, full disks, stale temporary files of killed runs and locked records (helpers.data.files)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers.data import files


def test_atomic_write_gives_one_mode_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "a" / "f.bin"
    files.atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_a_full_disk_keeps_the_old_file_and_says_how_much_is_needed(small_disk):
    disk = small_disk(64 * 1024)
    path = disk / "model.pt"
    files.atomic_write(path, b"good" * 1000)
    with pytest.raises(files.DiskFull, match=r"disk full: writing model.pt needs 0.20 MB, 0.\d+ MB free .*set "
                                             r"HELPERS_DATA to a folder on a larger disk") as info:
        files.atomic_write(path, b"x" * 200_000)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"good" * 1000  # the good file survives
    assert sorted(p.name for p in disk.iterdir()) == ["model.pt"]  # no partial temporary file


def test_a_read_only_folder_names_the_fix(tmp_path, read_only):
    folder = tmp_path / "ro"
    with read_only(folder):
        with pytest.raises(files.NotWritable, match="set HELPERS_DATA to a writable folder"):
            files.check_writable(folder)
        with pytest.raises(files.NotWritable, match="cannot write .*f.bin"):
            files.atomic_write(folder / "f.bin", b"x")


def test_temporaries_of_killed_processes_are_removed_and_live_ones_kept(tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        open(os.path.join({str(tmp_path)!r}, f".tmp-{{os.getpid()}}-x-model.pt"), "wb").write(b"half")
        time.sleep(60)""")])
    for _ in range(100):
        if list(tmp_path.glob(".tmp-*")):
            break
        subprocess.run(["sleep", "0.05"])
    victim.kill()  # kill -9 mid-write
    victim.wait()
    mine = tmp_path / f".tmp-{os.getpid()}-y-map.pt"
    mine.write_bytes(b"in use")
    old = tmp_path / "tmpabc.tmp"
    old.write_bytes(b"legacy")
    os.utime(old, (0, 0))
    removed = files.remove_stale_temporaries(tmp_path, legacy=("tmp*.tmp",))
    assert sorted(p.name for p in removed) == sorted([f".tmp-{victim.pid}-x-model.pt", "tmpabc.tmp"])
    assert mine.exists()


def test_a_locked_record_keeps_every_entry_of_concurrent_writers(tmp_path):
    record = tmp_path / "runs.json"
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from helpers.data.files import atomic_write, locked
        path = Path({str(record)!r})
        for i in range(100):
            with locked(path):
                runs = json.loads(path.read_text()) if path.exists() else {{}}
                runs[f"{{sys.argv[1]}}-{{i}}"] = i
                atomic_write(path, json.dumps(runs).encode())
        """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len(json.loads(record.read_text())) == 300
