"""Helpers for files on disk that more than one stage needs."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Make the renames and links in ``folder`` durable; raises ``OSError``.

    A new name only survives a crash once its folder is flushed too.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
