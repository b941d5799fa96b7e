"""Files that are either whole or absent: atomic writes with one file mode, checksums, and one-line errors for a
folder that cannot be written or a disk that is full (with the space needed), raised before anything is replaced.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

FILE_MODE = 0o644  # every file the package writes (before the umask): readable by all, like the zoo's files
TMP_PREFIX = ".tmp-"  # temporary files: .tmp-<pid>-<random>; a later run removes those whose process is gone


class NotWritable(OSError):
    """A folder the package must write to cannot be written; the message names the fix."""


class DiskFull(OSError):
    """No room for a file; the message gives the space needed and free."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fix(folder: Path) -> str:
    return f"set HELPERS_DATA to a writable folder (now {folder})"


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file there, or raise :class:`NotWritable` with one line."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=TMP_PREFIX + f"{os.getpid()}-probe-"):
            pass
    except OSError as err:
        raise NotWritable(f"cannot write to {folder} ({err.strerror or err}): {_fix(folder)}") from None


def disk_full(path: Path, needed: int) -> DiskFull:
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else path.anchor).free
    except OSError:
        free = 0
    return DiskFull(f"disk full: writing {path.name} needs {needed / 1e6:.2f} MB, {free / 1e6:.2f} MB free in "
                    f"{path.parent}: free some space or set HELPERS_DATA to a folder on a larger disk")


def give_file_mode(path: Path | str) -> None:
    """Give a file (e.g. one made by ``mkstemp``, mode 0600) :data:`FILE_MODE` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, FILE_MODE & ~umask)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync it, give it :data:`FILE_MODE`
    and rename it over ``path``: readers see the old file or the new one, never a part. On failure the old file is
    untouched and the temporary file removed; a full disk raises :class:`DiskFull`, a read-only folder
    :class:`NotWritable`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(path, len(data)) from None
        raise NotWritable(f"cannot write {path} ({err.strerror or err}): {_fix(path.parent)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        give_file_mode(tmp)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, len(data)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path, patterns: tuple[str, ...] = (f"{TMP_PREFIX}*",),
                              legacy: tuple[str, ...] = (), max_age: float = 3600.0) -> list[Path]:
    """Remove temporary files in ``folder`` left by runs that were killed: files named with a process id that no
    longer runs (this process's own and those of runs going on now are kept), and files of the ``legacy`` patterns
    (older versions named no process) once they are ``max_age`` seconds old. Returns what was removed."""
    import time

    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for pattern in legacy:
        for path in folder.glob(pattern):
            try:
                if time.time() - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    for pattern in patterns:
        for path in folder.glob(pattern):
            pid = _pid_of(path.name)
            if pid is None or pid == os.getpid() or _alive(pid):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def _pid_of(name: str) -> int | None:
    """The process id in a temporary file's name (``.tmp-<pid>-…``, ``<stem>.running-<pid>.ipynb``)."""
    for marker in (TMP_PREFIX, ".running-"):
        if marker in name:
            digits = name.split(marker, 1)[1].split("-", 1)[0].split(".", 1)[0]
            return int(digits) if digits.isdigit() else None
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (``fcntl.flock``: released when the process dies, so a killed run
    leaves no stale lock) while a record is read, changed and written, so concurrent runs keep each other's entries."""
    import fcntl

    path = Path(path)
    lock = path.with_name(f"{'' if path.name.startswith('.') else '.'}{path.name}.lock")  # hidden
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
