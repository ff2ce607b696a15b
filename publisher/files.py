"""Helpers for files on disk that more than one stage needs."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("publisher.files")

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def fsync_folder(folder: Path) -> None:
    """Make the renames and links in ``folder`` durable; raises ``OSError``.

    A new name only survives a crash once its folder is flushed too.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private(path: Path, mode: int) -> bool:
    """Take away every permission of the group and others on ``path`` (a
    file with ``PRIVATE_FILE``, a folder with ``PRIVATE_FOLDER`` in mind),
    with a warning naming it; True if anything changed. Raises ``OSError``.
    """
    current = stat.S_IMODE(os.stat(path).st_mode)
    if not current & 0o077:
        return False
    os.chmod(path, current & ~0o077 & 0o7777 | (mode & 0o700 & ~current))
    log.warning("%s: was readable by others (mode %o); now %o", path, current, stat.S_IMODE(os.stat(path).st_mode))
    return True


def private_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) readable by the owner alone, or
    make an existing one so. Raises ``OSError``."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    make_private(folder, PRIVATE_FOLDER)
