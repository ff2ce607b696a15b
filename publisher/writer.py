"""Writing output files atomically, and only when their bytes change.

A file is written to a temporary file in the same folder, flushed, fsynced
and renamed over the old one, so a reader polling it sees the whole old or
the whole new file, never a part. A file whose bytes are unchanged is not
touched (its mtime stays, so conditional GETs stay cheap).

    changed = write_if_changed(Path("feeds/rss.xml"), data)
"""

from __future__ import annotations

import os
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
