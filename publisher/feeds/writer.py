"""Writing output files atomically, and only when their bytes change.

A file is written to a temporary file in the same folder, flushed, fsynced
and renamed over the old one, so a reader polling it sees the whole old or
the whole new file, never a part. A file whose bytes are unchanged is not
touched (its mtime stays, so conditional GETs stay cheap). Several files
that must change together are staged one by one as they are made and
renamed into place only when all are written (``StagedFiles``).

    changed = write_if_changed(Path("feeds/rss.xml"), data)

    with StagedFiles() as staged:
        for name, render in documents:
            staged.add(out / name, render())
    replaced = staged.changed
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from publisher.errors import OutputError
from publisher.files import fsync_folder


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
        fsync_folder(path.parent)
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


def _stage(path: Path, data: bytes, mode: int, folders: set[Path], looks: dict, umask: int) -> str:
    """Write ``data`` to a new temporary file beside ``path`` (not flushed:
    ``StagedFiles.commit`` does that); returns its name.

    ``folders``: the folders known to exist (those made here are added), so
    that a folder of many files is made once, not asked for per file.
    ``looks``: where to keep the file's size and modification time in ns
    (a rename keeps them). ``umask``: the process's."""
    if path.parent not in folders:
        path.parent.mkdir(parents=True, exist_ok=True)
        folders.add(path.parent)
    fd, tmp_name = _new_temporary(path, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if mode & umask:  # made without some of the mode's bits
                os.fchmod(fd, mode)
            look = os.fstat(fd)
            looks[path] = (look.st_size, look.st_mtime_ns)
        finally:
            os.close(fd)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return tmp_name


def _umask() -> int:
    """This process's umask, read without changing it (Linux); 0o777 where it
    cannot be read, so that every file's mode is set after it is made."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777


_NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# Two processes forked from one may draw the same names: O_EXCL makes the second draw again.
_names = random.Random()


def _new_temporary(path: Path, mode: int = 0o600) -> tuple[int, str]:
    """A new file ``.NAME.XXXXXXXX.tmp`` beside ``path``, open for writing, made
    with ``mode`` less the umask (as ``tempfile.mkstemp`` makes one, without
    its cost for each of many files)."""
    folder, name = os.fspath(path.parent), path.name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp_name = os.path.join(folder, f".{name}.{''.join(_names.choices(_NAME_LETTERS, k=8))}.tmp")
        try:
            return os.open(tmp_name, flags, mode), tmp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free name for a temporary file beside it")


class StagingMark:
    """A file that is there (durably) while temporary files of a writer may
    be in its output folder, so that a later run looks through that folder
    for what a killed one left (``remove_temporaries(folder, mark.path)``)
    only when it is: not through every folder of a large output each time.

    ``set`` before making a temporary file; ``clear`` once none is left."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._set = False

    def set(self) -> None:
        if not self._set:
            write_atomic(self.path, b"temporary files of a build may be left in its output\n")
            self._set = True

    def clear(self, *, known: bool = False) -> None:
        """Remove the mark this run set (``known``: or found); raises ``OutputError``."""
        if self._set or known:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot remove: {exc.strerror or exc}") from exc
            self._set = False


# Up to this many files are flushed to disk one by one before they are
# renamed into place; more, with one flush of the file system (an fsync
# waits for the disk, each time).
SYNC_EACH_UP_TO = 16


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagedFiles:
    """Files written one at a time as they are made, renamed into place all or none.

    ``add`` writes a file's new bytes to a temporary file beside it at once
    (a file whose bytes are unchanged is skipped), so the caller can let the
    bytes go before making the next file. Leaving the ``with`` block renames
    every staged file into place; leaving it by an exception (the caller's,
    or an ``OutputError`` from a write) removes every temporary file and
    changes no file. A full disk therefore leaves every old file as it was,
    and no file's bytes are kept here once ``add`` returns.

        with StagedFiles() as staged:
            for document in documents:
                staged.add(out / document.name, document.render())
        staged.changed  # the paths replaced, in the order they were added
    """

    def __init__(self, *, force: bool = False, mode: int = 0o644, many: bool = False, mark: StagingMark | None = None) -> None:
        self._force = force
        self._mode = mode
        self._umask = _umask()
        self._mark = mark  # set before the first temporary file is made, cleared when none is left
        # Many files (a site's pages, or more than SYNC_EACH_UP_TO staged):
        # one flush of the file system before the renames and one after,
        # rather than an fsync per file and per folder, each of which waits
        # for the disk.
        self._many = many
        self._folders: set[Path] = set()
        self._staged: dict[Path, str] = {}
        self._closed = False
        self.changed: list[Path] = []
        self.looks: dict[Path, tuple[int, int]] = {}  # each file staged: its size and mtime in ns, as it is once in place

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def add(self, path: Path, data: bytes) -> bool:
        """Stage ``data`` for ``path`` unless the file holds exactly that; True if staged.

        Raises ``OutputError`` when the temporary file cannot be written.
        """
        if self._closed:
            raise RuntimeError(f"{path}: this staging is over (renamed or discarded); stage it in a new StagedFiles")
        if path in self._staged:
            raise ValueError(f"{path}: staged twice")
        if not self._force and _same_bytes(path, data):
            return False
        try:
            if self._mark is not None:
                self._mark.set()
            self._staged[path] = _stage(path, data, self._mode, self._folders, self.looks, self._umask)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        return True

    def commit(self) -> list[Path]:
        """Rename every staged file into place; the paths replaced. Raises ``OutputError``."""
        self._closed = True
        staged = list(self._staged)
        current: Path | None = None
        try:
            many = self._many or len(staged) > SYNC_EACH_UP_TO
            if many:
                os.sync()  # every staged byte on disk before any name points at it
            else:
                for current, tmp_name in self._staged.items():
                    _fsync_file(tmp_name)
            for current, tmp_name in self._staged.items():
                os.replace(tmp_name, current)
            if many:
                os.sync()
            else:
                for current in dict.fromkeys(path.parent for path in staged):
                    fsync_folder(current)
        except OSError as exc:
            raise OutputError(f"{current}: cannot write: {exc.strerror or exc}") from exc
        finally:
            self.discard()  # and the mark, now that no temporary file is left
        self.changed = staged
        return staged

    def discard(self) -> None:
        """Remove the temporary files not renamed into place; nothing more can be staged."""
        self._closed = True
        for tmp_name in self._staged.values():
            if os.path.exists(tmp_name):
                try:
                    os.unlink(tmp_name)
                except OSError:
                    pass
        self._staged.clear()
        if self._mark is not None:
            self._mark.clear()


def write_changed(
    files: Mapping[Path, bytes] | Iterable[tuple[Path, bytes]], *, force: bool = False, mode: int = 0o644
) -> list[Path]:
    """Replace every file whose bytes change, all or none.

    ``files`` is a mapping or an iterable of (path, bytes) pairs; a
    generator that makes each file's bytes as it is asked for the next has
    each file written to its temporary file, and its bytes released, before
    the next is made. Only when all are written are they renamed into place;
    an exception from the iteration or a write removes every temporary file
    and changes no file. Returns the paths that changed; raises
    ``OutputError``. See ``StagedFiles``.
    """
    pairs = files.items() if isinstance(files, Mapping) else files
    with StagedFiles(force=force, mode=mode) as staged:
        for path, data in pairs:
            staged.add(path, data)
            del data  # not held while the iteration makes the next file
    return staged.changed


def remove_temporaries(folder: Path, mark: Path | None = None) -> list[Path]:
    """Remove temporary files a killed writer left under ``folder``; with
    ``mark`` (the ``StagedFiles`` mark of the writers of ``folder``), only
    when that is there, and the mark too then."""
    removed: list[Path] = []
    if mark is not None:
        if not mark.exists():
            return removed
        removed = remove_temporaries(folder)
        StagingMark(mark).clear(known=True)
        return removed
    if not folder.is_dir():
        return removed
    # os.walk (scandir underneath): a pages folder has thousands of folders.
    for parent, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".") and _TEMPORARY.match(name):
                path = Path(parent) / name
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed

