"""Atomic writes that skip unchanged bytes: the writer alone, then a real build."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from publisher.feeds import build as build_module
from publisher.feeds.build import build_site
from publisher.config import load_config
from publisher.errors import OutputError, PublisherError
from publisher.state.store import StateStore
from publisher.feeds.writer import StagedFiles, StagingMark, remove_temporaries, write_atomic, write_changed, write_if_changed

from .conftest import NOW, build
from .helpers.waiting import Poller

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


# --- write_changed and StagedFiles: staged one by one, renamed all or none ------------


class Watched(bytes):
    """Bytes that record in ``freed`` when they are freed: CPython frees an
    object as soon as its last reference goes, so a writer still holding
    them keeps them off the list."""

    def __new__(cls, data: bytes, label: str, freed: list[str]) -> Watched:
        made = super().__new__(cls, data)
        made.label, made.freed = label, freed
        return made

    def __del__(self) -> None:
        self.freed.append(self.label)


def _old_files(folder: Path, names: list[str]) -> dict[str, bytes]:
    """Write ``names`` into ``folder`` with old bytes and an old mtime."""
    old = {}
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"<old {name}/>".encode())
        os.utime(path, ns=(OLD_NS, OLD_NS))
        old[name] = path.read_bytes()
    return old


def _as_they_are(folder: Path, *, hidden: bool = True) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (without the dot-files when not ``hidden``): bytes and mtime."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (hidden or not p.name.startswith("."))
    }


def test_each_file_is_staged_and_let_go_before_the_next_is_made(tmp_path: Path) -> None:
    _old_files(tmp_path, ["rss.xml", "tags/news.xml", "atom.xml"])
    freed: list[str] = []
    seen: list[tuple[str, list[str], list[str]]] = []
    names = ["rss.xml", "tags/news.xml", "atom.xml"]

    def documents() -> Iterator[tuple[Path, bytes]]:
        for n, name in enumerate(names):
            if n:
                earlier = tmp_path / names[n - 1]
                staged = [earlier.parent / t for t in temp_files(earlier.parent) if t.startswith(f".{earlier.name}.")]
                seen.append((name, [p.read_bytes().decode() for p in staged], list(freed)))
                # Nothing is renamed while documents are still coming.
                assert earlier.read_bytes() == f"<old {names[n - 1]}/>".encode()
            yield tmp_path / name, Watched(f"<new {name}/>".encode() * 1000, name, freed)

    changed = write_changed(documents())

    assert seen == [
        ("tags/news.xml", ["<new rss.xml/>" * 1000], ["rss.xml"]),
        ("atom.xml", ["<new tags/news.xml/>" * 1000], ["rss.xml", "tags/news.xml"]),
    ]
    assert changed == [tmp_path / name for name in names]
    for name in names:
        assert (tmp_path / name).read_bytes() == f"<new {name}/>".encode() * 1000
    assert temp_files(tmp_path) == [] and temp_files(tmp_path / "tags") == []


def test_staged_files_let_the_bytes_go_when_add_returns(tmp_path: Path) -> None:
    freed: list[str] = []
    with StagedFiles() as staged:
        assert staged.add(tmp_path / "rss.xml", Watched(b"<rss/>", "rss", freed)) is True
        assert freed == ["rss"]
        assert len(temp_files(tmp_path)) == 1
        assert not (tmp_path / "rss.xml").exists()
        assert staged.add(tmp_path / "atom.xml", Watched(b"<feed/>", "atom", freed)) is True
        assert freed == ["rss", "atom"]
    assert staged.changed == [tmp_path / "rss.xml", tmp_path / "atom.xml"]
    assert (tmp_path / "rss.xml").read_bytes() == b"<rss/>"
    assert (tmp_path / "atom.xml").read_bytes() == b"<feed/>"
    assert temp_files(tmp_path) == []
    for name in ("rss.xml", "atom.xml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_failure_while_making_a_document_leaves_nothing_changed_and_no_temporary_file(tmp_path: Path) -> None:
    old = _old_files(tmp_path, ["rss.xml", "tags/news.xml", "atom.xml"])
    before = _as_they_are(tmp_path)
    staged_before_failure: list[str] = []

    def documents() -> Iterator[tuple[Path, bytes]]:
        yield tmp_path / "rss.xml", b"<new rss/>"
        yield tmp_path / "tags" / "news.xml", b"<new news/>"
        staged_before_failure.extend(temp_files(tmp_path) + temp_files(tmp_path / "tags"))
        raise RuntimeError("the Atom feed cannot be made")

    with pytest.raises(RuntimeError, match="the Atom feed cannot be made"):
        write_changed(documents())

    assert len(staged_before_failure) == 2, "the test shows nothing unless files were staged before the failure"
    assert _as_they_are(tmp_path) == before
    assert {name: data for name, (data, _) in before.items()} == old


def test_a_write_failure_in_the_middle_stops_the_iteration_and_changes_nothing(tmp_path: Path) -> None:
    _old_files(tmp_path, ["rss.xml"])
    (tmp_path / "tags").write_bytes(b"a file where a folder goes")
    before = _as_they_are(tmp_path)
    asked: list[str] = []

    def documents() -> Iterator[tuple[Path, bytes]]:
        for name in ("rss.xml", "tags/news.xml", "atom.xml"):
            asked.append(name)
            yield tmp_path / name, f"<new {name}/>".encode()

    with pytest.raises(OutputError) as caught:
        write_changed(documents())

    assert str(caught.value).startswith(f"{tmp_path / 'tags' / 'news.xml'}: cannot write: ")
    assert asked == ["rss.xml", "tags/news.xml"]
    assert temp_files(tmp_path) == []
    assert _as_they_are(tmp_path) == before


def test_a_folder_in_the_way_of_the_first_rename_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "rss.xml").mkdir()
    (tmp_path / "rss.xml" / "keep").write_bytes(b"kept")
    _old_files(tmp_path, ["atom.xml"])
    before = _as_they_are(tmp_path)

    with pytest.raises(OutputError) as caught:
        write_changed([(tmp_path / "rss.xml", b"<rss/>"), (tmp_path / "atom.xml", b"<feed/>")])

    assert str(caught.value).startswith(f"{tmp_path / 'rss.xml'}: cannot write: ")
    assert temp_files(tmp_path) == []
    assert _as_they_are(tmp_path) == before


def test_unchanged_files_are_not_staged_unless_forced(tmp_path: Path) -> None:
    _old_files(tmp_path, ["rss.xml", "atom.xml"])
    inode = (tmp_path / "rss.xml").stat().st_ino
    files = [(tmp_path / "rss.xml", b"<old rss.xml/>"), (tmp_path / "atom.xml", b"<new atom/>")]

    assert write_changed(iter(files)) == [tmp_path / "atom.xml"]
    assert (tmp_path / "rss.xml").stat().st_mtime_ns == OLD_NS
    assert (tmp_path / "rss.xml").stat().st_ino == inode

    assert write_changed(dict(files), force=True) == [tmp_path / "rss.xml", tmp_path / "atom.xml"]
    assert (tmp_path / "rss.xml").stat().st_mtime_ns != OLD_NS
    assert (tmp_path / "rss.xml").read_bytes() == b"<old rss.xml/>"
    assert temp_files(tmp_path) == []


def test_a_path_staged_twice_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="staged twice"):
        write_changed([(tmp_path / "rss.xml", b"<rss>1</rss>"), (tmp_path / "rss.xml", b"<rss>2</rss>")])
    assert list(tmp_path.iterdir()) == []


def test_nothing_can_be_staged_once_the_staging_is_over(tmp_path: Path) -> None:
    with StagedFiles() as staged:
        staged.add(tmp_path / "rss.xml", b"<rss/>")
    with pytest.raises(RuntimeError, match="staging is over"):
        staged.add(tmp_path / "atom.xml", b"<feed/>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rss.xml"]


def test_staged_files_know_how_each_file_looks_in_place_and_mode(tmp_path: Path) -> None:
    (tmp_path / "same.html").write_bytes(b"same")
    with StagedFiles(many=True, mode=0o640) as staged:
        for name, data in (("a/index.html", b"<p>a</p>"), ("b/c/index.html", b"<p>c</p>" * 5000), ("same.html", b"same")):
            staged.add(tmp_path / name, data)
    assert sorted(staged.looks) == [tmp_path / "a/index.html", tmp_path / "b/c/index.html"], "not the unchanged file"
    for path, look in staged.looks.items():
        now = path.stat()
        assert look == (now.st_size, now.st_mtime_ns)
        assert stat.S_IMODE(now.st_mode) == 0o640
    assert temp_files(tmp_path / "a") == [] and temp_files(tmp_path / "b" / "c") == []


def test_a_staging_mark_is_there_while_temporary_files_may_be_and_gone_after(tmp_path: Path) -> None:
    out, mark = tmp_path / "out", StagingMark(tmp_path / "staging")
    with StagedFiles(many=True, mark=mark) as staged:
        assert not mark.path.exists(), "set only when a file is staged"
        staged.add(out / "index.html", b"<p>1</p>")
        assert mark.path.exists() and temp_files(out)
    assert not mark.path.exists() and temp_files(out) == []
    with pytest.raises(RuntimeError):
        with StagedFiles(many=True, mark=mark) as staged:
            staged.add(out / "index.html", b"<p>2</p>")
            raise RuntimeError("a page failed")
    assert not mark.path.exists() and temp_files(out) == []
    # What a killed writer leaves: the mark and a temporary file; only the mark makes a look.
    (out / ".index.html.abcdefgh.tmp").write_bytes(b"half")
    assert remove_temporaries(out, mark.path) == []
    mark.path.write_bytes(b"")
    assert remove_temporaries(out, mark.path) == [out / ".index.html.abcdefgh.tmp"]
    assert not mark.path.exists() and (out / "index.html").read_bytes() == b"<p>1</p>"


def test_staged_files_a_killed_writer_leaves_are_removed_by_remove_temporaries(tmp_path: Path) -> None:
    staged = StagedFiles()
    staged.add(tmp_path / "rss.xml", b"<rss/>")
    staged.add(tmp_path / "tags" / "news.xml", b"<rss/>")
    left = [tmp_path / n for n in temp_files(tmp_path)] + [tmp_path / "tags" / n for n in temp_files(tmp_path / "tags")]
    assert len(left) == 2

    assert sorted(remove_temporaries(tmp_path)) == sorted(left)
    assert temp_files(tmp_path) == [] and temp_files(tmp_path / "tags") == []
    assert not (tmp_path / "rss.xml").exists()


# --- a concurrent reader never sees a partial file ----------------------------------


def _document(kind: str, size: int = 200_000) -> bytes:
    if kind == "a":
        doc = {"kind": "a", "text": "a" * size}
    else:
        doc = {"kind": "b", "numbers": list(range(size // 6))}
    data = json.dumps(doc).encode()
    assert len(data) >= size
    return data


@pytest.mark.slow
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


@pytest.mark.slow
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


def _watched_renders(monkeypatch: pytest.MonkeyPatch, on_render, freed: list[str] | None = None) -> None:
    """Make the build call ``on_render(name)`` before each feed it makes;
    with ``freed``, each feed's bytes record there when they are freed."""
    plain = build_module._documents

    def documents(config, site, cache):
        def render_of(document):
            def render() -> bytes:
                on_render(document.name)
                data = document.render()
                return data if freed is None else Watched(data, document.name, freed)

            return render

        return [replace(document, render=render_of(document)) for document in plain(config, site, cache)]

    monkeypatch.setattr(build_module, "_documents", documents)


def _two_posts(site: Path, version: int) -> None:
    for name in ("one", "two"):
        (site / "posts" / f"{name}.txt").write_text(
            f"Post {name}, version {version}\n\n" + f"Paragraph {version}. " * 200 + "\n", encoding="utf-8"
        )


def test_a_build_stages_each_feed_before_it_makes_the_next(blank_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_posts(blank_site, 1)
    build(blank_site)
    out = blank_site / "feeds"
    before = _as_they_are(out)
    _two_posts(blank_site, 2)
    made: list[str] = []
    freed: list[str] = []
    staged_then: list[int] = []

    def on_render(name: str) -> None:
        staged_then.append(len([p for p in out.rglob("*.tmp")]))
        assert _as_they_are(out, hidden=False) == before, "a feed was renamed before all were made"
        # The bytes of every feed made before are no longer held.
        assert freed == made
        made.append(name)

    _watched_renders(monkeypatch, on_render, freed)
    report = build(blank_site)

    assert len(made) >= 3 and set(report.written) == set(made)
    # When each feed is made, every feed made before it is already on disk.
    assert staged_then == list(range(len(made)))
    assert [p for p in out.rglob("*.tmp")] == []
    assert all("version 2" in (out / name).read_text(encoding="utf-8") for name in made)


def test_a_build_failing_while_making_a_feed_changes_no_feed_and_leaves_no_temporary_file(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_posts(blank_site, 1)
    build(blank_site)
    out = blank_site / "feeds"
    before = _as_they_are(out)
    config = load_config(blank_site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        outputs, last = store.builds.feed_outputs(), store.builds.last()
    finally:
        store.close()
    _two_posts(blank_site, 2)
    made: list[str] = []

    def on_render(name: str) -> None:
        made.append(name)
        if len(made) == 3:
            assert len([p for p in out.rglob("*.tmp")]) == 2, "the test shows nothing unless feeds were staged"
            raise OutputError(f"{name}: cannot be made")

    _watched_renders(monkeypatch, on_render)
    with pytest.raises(OutputError, match="cannot be made"):
        build(blank_site)

    assert [p for p in out.rglob("*.tmp")] == []
    assert _as_they_are(out) == before
    store = StateStore.open(config.state.path)
    try:
        assert store.builds.feed_outputs() == outputs
        assert store.builds.last() == last
    finally:
        store.close()


@pytest.mark.parametrize("count", [3, 40])
def test_a_few_files_are_flushed_one_by_one_many_with_one_flush_of_the_disk(tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.feeds import writer

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append("file"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: synced.append("all"))
    with StagedFiles() as staged:
        for n in range(count):
            staged.add(tmp_path / f"{n}.xml", b"<rss/>")
            assert synced == [], "nothing flushed before the renames are due"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.xml" for n in range(count))
    if count <= writer.SYNC_EACH_UP_TO:
        assert synced.count("file") == count + 1 and "all" not in synced  # each file, then the folder
    else:
        assert synced == ["all", "all"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_staged_files_get_their_mode_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with StagedFiles(mode=0o644) as staged:
            staged.add(tmp_path / "index.html", b"<p>a</p>")
        write_changed({tmp_path / "private.txt": b"secret"}, mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "index.html").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
