"""Atomic writes that skip unchanged bytes: the writer alone, then a real build."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from lxml import etree

from publisher.build import build_site
from publisher.config import load_config
from publisher.errors import OutputError, PublisherError
from publisher.store import StateStore
from publisher.writer import write_atomic, write_if_changed

from .conftest import NOW

OLD_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09, in nanoseconds


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


# --- write_if_changed ----------------------------------------------------------


def test_new_file_is_written(tmp_path: Path) -> None:
    target = tmp_path / "feed.json"
    assert write_if_changed(target, b'{"a": 1}\n') is True
    assert target.read_bytes() == b'{"a": 1}\n'


def test_identical_bytes_are_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "rss.xml"
    target.write_bytes(b"<rss/>\n")
    os.utime(target, ns=(OLD_NS, OLD_NS))
    inode = target.stat().st_ino

    assert write_if_changed(target, b"<rss/>\n") is False

    assert target.stat().st_mtime_ns == OLD_NS
    assert target.stat().st_ino == inode
    assert target.read_bytes() == b"<rss/>\n"


@pytest.mark.parametrize(
    "new",
    [b"<rss>changed</rss>\n", b"<rss/>\r\n", b"<rsS/>\n", b""],
    ids=["longer", "same-length-different-bytes", "same-length-one-letter", "empty"],
)
def test_different_bytes_are_written(tmp_path: Path, new: bytes) -> None:
    target = tmp_path / "rss.xml"
    target.write_bytes(b"<rss/>\n")
    os.utime(target, ns=(OLD_NS, OLD_NS))

    assert write_if_changed(target, new) is True

    assert target.read_bytes() == new
    assert target.stat().st_mtime_ns != OLD_NS


def test_force_rewrites_identical_bytes(tmp_path: Path) -> None:
    target = tmp_path / "atom.xml"
    target.write_bytes(b"<feed/>\n")
    os.utime(target, ns=(OLD_NS, OLD_NS))

    assert write_if_changed(target, b"<feed/>\n", force=True) is True

    assert target.stat().st_mtime_ns != OLD_NS
    assert target.read_bytes() == b"<feed/>\n"


def test_missing_folders_are_created(tmp_path: Path) -> None:
    target = tmp_path / "feeds" / "tags" / "news.xml"
    assert write_if_changed(target, b"<rss/>") is True
    assert target.read_bytes() == b"<rss/>"


def test_files_are_mode_644_whatever_the_umask(tmp_path: Path) -> None:
    existing = tmp_path / "existing.xml"
    existing.write_bytes(b"old")
    existing.chmod(0o600)
    old_umask = os.umask(0o077)
    try:
        write_if_changed(tmp_path / "new.xml", b"new")
        write_if_changed(existing, b"replaced")
        write_atomic(tmp_path / "atomic.xml", b"atomic")
    finally:
        os.umask(old_umask)
    for name in ("new.xml", "existing.xml", "atomic.xml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_no_temp_files_left_after_success(tmp_path: Path) -> None:
    for n in range(5):
        write_if_changed(tmp_path / "rss.xml", f"<rss>{n}</rss>".encode())
        write_if_changed(tmp_path / "feed.json", f'{{"n": {n}}}'.encode())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.json", "rss.xml"]


def test_failed_write_raises_output_error_and_leaves_no_temp_file(tmp_path: Path) -> None:
    # Tests run as root, so permissions cannot block the write; a directory
    # where the file should go makes the final rename fail instead.
    target = tmp_path / "rss.xml"
    target.mkdir()
    (target / "keep").write_bytes(b"kept")
    (tmp_path / "atom.xml").write_bytes(b"<feed/>")

    with pytest.raises(OutputError) as caught:
        write_if_changed(target, b"<rss/>")

    assert isinstance(caught.value, PublisherError)
    assert str(caught.value).startswith(f"{target}: cannot write: ")
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atom.xml", "rss.xml"]
    assert target.is_dir()
    assert (target / "keep").read_bytes() == b"kept"
    assert (tmp_path / "atom.xml").read_bytes() == b"<feed/>"


def test_failed_write_when_the_folder_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "feeds"
    blocker.write_bytes(b"not a folder")

    with pytest.raises(OutputError) as caught:
        write_atomic(blocker / "rss.xml", b"<rss/>")

    assert str(caught.value).startswith(f"{blocker / 'rss.xml'}: cannot write: ")
    assert blocker.read_bytes() == b"not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds"]


# --- a concurrent reader never sees a partial file ----------------------------------


class Poller(threading.Thread):
    """Reads files in a loop until stopped; records every read it could not accept."""

    def __init__(self, paths: list[Path], accept):
        super().__init__(daemon=True)
        self.paths = paths
        self.accept = accept
        self.stop = threading.Event()
        self.reads = 0
        self.first_read = threading.Event()
        self.wanted: int | None = None
        self.enough = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for path in self.paths:
                try:
                    data = path.read_bytes()
                    self.accept(path, data)
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    self.failures.append(f"{path.name}: {exc!r}")
                self.reads += 1
            self.first_read.set()
            if self.wanted is not None and self.reads >= self.wanted:
                self.enough.set()

    def finish(self) -> None:
        # Let it read every file at least once more after the last write, then stop.
        self.wanted = self.reads + 2 * len(self.paths)
        assert self.enough.wait(60), "the reader thread stopped reading"
        self.stop.set()
        self.join()


def _document(kind: str, size: int = 200_000) -> bytes:
    if kind == "a":
        doc = {"kind": "a", "text": "a" * size}
    else:
        doc = {"kind": "b", "numbers": list(range(size // 6))}
    data = json.dumps(doc).encode()
    assert len(data) >= size
    return data


def test_concurrent_reader_sees_only_whole_files(tmp_path: Path) -> None:
    a, b = _document("a"), _document("b")
    assert a != b
    target = tmp_path / "feed.json"
    write_if_changed(target, a)

    def accept(path: Path, data: bytes) -> None:
        if data not in (a, b):
            raise AssertionError(f"partial read: {len(data)} bytes")

    poller = Poller([target], accept)
    poller.start()
    assert poller.first_read.wait(60)
    written = 0
    for n in range(320):
        written += write_if_changed(target, b if n % 2 == 0 else a)
    poller.finish()

    assert written == 320
    assert poller.failures == []
    assert poller.reads > 1
    assert target.read_bytes() == a
    assert temp_files(tmp_path) == []


# --- end to end: a build never exposes a half-written feed --------------------------


def _parse_feed(path: Path, data: bytes) -> None:
    if path.suffix == ".json":
        feed = json.loads(data)
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert len(feed["items"]) == 2
    else:
        root = etree.fromstring(data)
        items = root.findall("./channel/item") or root.findall("{http://www.w3.org/2005/Atom}entry")
        assert len(items) == 2


def test_feeds_are_always_whole_while_the_site_rebuilds(blank_site: Path, tmp_path: Path) -> None:
    posts = blank_site / "posts"
    (posts / "steady.txt").write_text("A steady post\n\nIt never changes.\n", encoding="utf-8")
    changing = posts / "changing.txt"
    versions = [
        "A changing post\n\n" + "First version of a long paragraph. " * 400 + "\n",
        "A changing post\n\n" + "Second version, different words. " * 300 + "\n",
    ]
    changing.write_text(versions[0], encoding="utf-8")
    config = load_config(blank_site / "publisher.toml")
    out = config.feeds.out
    store = StateStore.open(tmp_path / "state.db")
    try:
        first = build_site(config, store=store, now=NOW)
        assert first.errors == ()
        assert {"atom.xml", "feed.json", "rss.xml"} <= set(first.written)

        paths = [out / "rss.xml", out / "atom.xml", out / "feed.json"]
        poller = Poller(paths, _parse_feed)
        poller.start()
        assert poller.first_read.wait(60)
        for n in range(1, 41):
            changing.write_text(versions[n % 2], encoding="utf-8")
            report = build_site(config, store=store, now=NOW)
            assert report.errors == ()
            assert {"atom.xml", "feed.json", "rss.xml"} <= set(report.written), n
        poller.finish()
    finally:
        store.close()

    assert poller.failures == []
    assert poller.reads > len(paths)
    # Nothing half-written is left behind: no temporary files anywhere.
    assert [p for p in out.rglob("*") if p.name.endswith(".tmp")] == []
