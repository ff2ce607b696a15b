"""Writing output files atomically, and only when their bytes change.

A file is written to a temporary file in the same folder, flushed, fsynced
and renamed over the old one, so a reader polling it sees the whole old or
the whole new file, never a part. A file whose bytes are unchanged is not
touched (its mtime stays, so conditional GETs stay cheap).

    changed = write_if_changed(Path("feeds/rss.xml"), data)
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from publisher.errors import OutputError


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one step; raises ``OutputError``."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
        tmp_name = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def write_if_changed(path: Path, data: bytes, force: bool = False) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; True if written."""
    if not force and _same_bytes(path, data):
        return False
    write_atomic(path, data)
    return True


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def _stage(path: Path, data: bytes, mode: int) -> str:
    """Write ``data`` to a new temporary file beside ``path``; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return tmp_name


def write_changed(files: dict[Path, bytes], *, force: bool = False, mode: int = 0o644) -> list[Path]:
    """Replace every file whose bytes change, all or none.

    Every new file is first written in full to a temporary file beside its
    target; only when all are written are they renamed into place. A full
    disk therefore leaves every old file as it was, not some new and some
    old. Returns the paths that changed; raises ``OutputError``.
    """
    changed = {path: data for path, data in files.items() if force or not _same_bytes(path, data)}
    staged: list[tuple[str, Path]] = []
    current: Path | None = None
    try:
        for current, data in changed.items():
            staged.append((_stage(current, data, mode), current))
        for tmp_name, current in staged:
            os.replace(tmp_name, current)
        for current in {path.parent for path in changed}:
            dir_fd = os.open(current, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise OutputError(f"{current}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for tmp_name, _ in staged:
            if os.path.exists(tmp_name):
                try:
                    os.unlink(tmp_name)
                except OSError:
                    pass
    return list(changed)


def remove_temporaries(folder: Path) -> list[Path]:
    """Remove temporary files a killed writer left under ``folder``."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.rglob(".*.tmp"):
        if path.is_file() and _TEMPORARY.match(path.name):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed
