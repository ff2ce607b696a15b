"""A hostile environment: output that cannot be written, a locked or corrupt state database.

The tests run as root, for whom permissions block nothing, so the faults
are made for real: a read-only bind mount and a tiny tmpfs (when this
machine lets the tests mount; skipped otherwise), the feeds folder replaced
by a file, a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored: writes fail
with EFBIG as on a full disk), another connection holding the database in
``BEGIN EXCLUSIVE``, and database files with garbage or cut short.

What must hold: the command fails with a clear one-line message naming the
file (exit 2, no traceback), the previous feeds stay byte for byte as they
were, and the state database is never reset or rewritten.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config

from .helpers.sites import SECRET, env, make_site, publisher

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages



def run(site: Path, *args: str, preexec=None) -> subprocess.CompletedProcess:
    """``publisher --config SITE ARGS``: in this process, like the console
    script (the same ``main``), or as a process of its own where it must be
    one (a resource limit to set, a server)."""
    if preexec is not None or args[0] == "serve":
        return subprocess.run(
            publisher(site, *args), env=env(), capture_output=True, text=True, timeout=120, preexec_fn=preexec
        )
    result = CliRunner().invoke(
        main, ["--config", str(site / "publisher.toml"), *args], env={"TEST_PUBLISHER_SECRET": SECRET}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"publisher {' '.join(args)} raised {result.exception!r}") from result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def big_post(site: Path, kilobytes: int = 120) -> None:
    """A new post large enough that its feeds cannot fit where they go."""
    (site / "posts" / "big.txt").write_text(
        "+++\ndate = 2024-02-01T10:00:00Z\n+++\nA big new post\n\n" + "Many words in a long paragraph. " * (kilobytes * 32) + "\n",
        encoding="utf-8",
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """make_site's site (one post, list "daily", 5 subscribers, the outbox), built once."""
    site = make_site(tmp_path / "site", None, 5)
    first = run(site, "build")
    assert first.returncode == 0, first.stderr
    return site


def assert_clear_failure(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in message, message


def last_build(site: Path) -> tuple:
    db = load_config(site / "publisher.toml").state.path
    connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT count(*), max(id) FROM builds").fetchone()
    finally:
        connection.close()


# --- output that cannot be written ----------------------------------------------------


@contextmanager
def mounted(*commands: list[str], target: Path) -> Iterator[None]:
    """Run ``mount`` commands for ``target``; skip when this machine refuses them."""
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        subprocess.run(["umount", str(target)], capture_output=True)
        detail = getattr(exc, "stderr", "") or exc
        pytest.skip(f"cannot mount here ({detail}); the RLIMIT_FSIZE and file-in-the-way tests still run")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True, capture_output=True)


@contextmanager
def tmpfs_with(feeds: Path, free: int) -> Iterator[None]:
    """``feeds`` on a small tmpfs holding its present files, with ``free`` bytes left."""
    saved = snapshot(feeds)
    with mounted(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(feeds)], target=feeds):
        for name, data in saved.items():
            (feeds / name).parent.mkdir(parents=True, exist_ok=True)
            (feeds / name).write_bytes(data)
        stat = os.statvfs(feeds)
        room = stat.f_bavail * stat.f_frsize
        assert room > free, "the tmpfs is too small for the test"
        (feeds / ".filler").write_bytes(b"\0" * (room - free))
        yield
        (feeds / ".filler").unlink()


def test_read_only_feeds_folder_fails_clearly_and_keeps_the_old_feeds(site: Path) -> None:
    feeds = site / "feeds"
    before, builds = snapshot(feeds), last_build(site)
    big_post(site)
    with mounted(
        ["mount", "--bind", str(feeds), str(feeds)], ["mount", "-o", "remount,ro,bind", str(feeds)], target=feeds
    ):
        done = run(site, "build")
        after = snapshot(feeds)
    assert_clear_failure(done, str(feeds / "rss.xml"), "cannot write", "Read-only file system")
    assert after == before
    assert last_build(site) == builds  # nothing published, nothing recorded


def test_full_disk_fails_clearly_and_keeps_the_old_feeds(site: Path) -> None:
    feeds = site / "feeds"
    before, builds = snapshot(feeds), last_build(site)
    big_post(site)
    with tmpfs_with(feeds, free=8 * 1024):
        done = run(site, "build")
        after = snapshot(feeds)
    assert_clear_failure(done, str(feeds / "rss.xml"), "cannot write", "No space left on device")
    assert {k: v for k, v in after.items() if k != ".filler"} == before
    assert last_build(site) == builds


def test_disk_filling_up_part_way_keeps_every_old_feed(site: Path) -> None:
    """The disk fills up after some feeds were staged: the build stops with
    exit 2 and every feed stays the old one (none was renamed before all
    were written), so RSS, Atom and JSON readers never see different posts,
    and the state store (rolled back) matches what is published."""
    feeds = site / "feeds"
    before, builds = snapshot(feeds), last_build(site)
    big_post(site)
    # The new feeds' sizes, from a build of the same content elsewhere.
    scratch = site.parent / "scratch"
    shutil.copytree(site, scratch, ignore=shutil.ignore_patterns("feeds", ".publisher"))
    rehearsal = run(scratch, "build")
    assert rehearsal.returncode == 0, rehearsal.stderr
    new_rss = (scratch / "feeds" / "rss.xml").stat().st_size
    new_atom = (scratch / "feeds" / "atom.xml").stat().st_size
    free = new_rss + 12 * 1024  # room for the new rss.xml, not then for the new atom.xml
    assert free - new_rss + len(before["rss.xml"]) + 8 * 1024 < new_atom
    with tmpfs_with(feeds, free=free):
        done = run(site, "build")
        after = snapshot(feeds)
    assert_clear_failure(done, "cannot write", "No space left on device")
    assert last_build(site) == builds
    changed = sorted(name for name, data in before.items() if after.get(name) != data)
    assert changed == [], f"feeds replaced by a build that failed: {changed}"


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_fails_the_build_clearly_and_keeps_the_old_feeds(site: Path) -> None:
    """RLIMIT_FSIZE: a write past the limit fails with EFBIG, as on a full disk."""
    feeds = site / "feeds"
    before, builds = snapshot(feeds), last_build(site)
    db = load_config(site / "publisher.toml").state.path
    limit = max(db.stat().st_size * 2, 512 * 1024)  # the state database still fits
    big_post(site, kilobytes=limit // 1024 + 200)  # its feeds do not
    done = run(site, "build", preexec=_file_size_limit(limit))
    assert_clear_failure(done, str(feeds / "rss.xml"), "cannot write", "File too large")
    assert snapshot(feeds) == before
    assert last_build(site) == builds
    assert not [p for p in feeds.rglob("*.tmp")]
    # Without the limit the same build succeeds: nothing was left half done.
    assert run(site, "build").returncode == 0


def test_feeds_folder_that_is_a_file_fails_clearly(site: Path) -> None:
    feeds = site / "feeds"
    shutil.rmtree(feeds)
    feeds.write_bytes(b"a file where the feeds folder goes")
    big_post(site)
    done = run(site, "build")
    assert_clear_failure(done, str(feeds / "rss.xml"), "cannot write")
    assert feeds.read_bytes() == b"a file where the feeds folder goes"


def test_a_feed_that_is_a_folder_fails_clearly_and_keeps_the_old_feeds(site: Path) -> None:
    """A folder in the way of the first feed: its rename fails, nothing is replaced."""
    feeds = site / "feeds"
    (feeds / "rss.xml").unlink()
    (feeds / "rss.xml").mkdir()
    (feeds / "rss.xml" / "keep").write_bytes(b"kept")
    before = snapshot(feeds)
    big_post(site)
    done = run(site, "build")
    assert_clear_failure(done, str(feeds / "rss.xml"), "cannot write")
    assert snapshot(feeds) == before


# --- a locked state database ---------------------------------------------------------


def test_a_locked_database_is_a_clear_error_within_the_busy_timeout(site: Path) -> None:
    """Each command gives up with "database is locked" while the lock is
    still held (it is released only once all of them ended), so none waits
    for it forever; how long the busy timeout took is the machine's business."""
    db = load_config(site / "publisher.toml").state.path
    csv_file = site / "more.csv"
    csv_file.write_text("email,name\nnew@example.net,New\n", encoding="utf-8")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        big_post(site, kilobytes=1)
        commands = {
            "build": ["build"],
            "send": ["send"],
            "subscribers add": ["subscribers", "add", "late@example.net"],
            "subscribers import": ["subscribers", "import", str(csv_file)],
        }
        processes = {
            name: subprocess.Popen(publisher(site, *args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, args in commands.items()
        }
        results = {}
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=300)
            results[name] = (process.returncode, stdout, stderr)
        before = holder.execute("SELECT count(*) FROM subscribers").fetchone(), holder.execute("SELECT count(*) FROM posts").fetchone()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for name, (code, stdout, stderr) in results.items():
        done = subprocess.CompletedProcess([name], code, stdout, stderr)
        assert_clear_failure(done, str(db), "database is locked")
    # Nothing was reset or half done: the same rows, and the next runs work.
    connection = sqlite3.connect(db)
    try:
        after = connection.execute("SELECT count(*) FROM subscribers").fetchone(), connection.execute("SELECT count(*) FROM posts").fetchone()
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()
    assert after == before == ((5,), (1,))
    assert run(site, "build").returncode == 0
    assert run(site, "send").returncode == 0


# --- a corrupt state database ----------------------------------------------------------

PAGE = 4096


def _corrupt(good: bytes, kind: str) -> bytes:
    noise = bytes((n * 7919 + 13) % 251 for n in range(len(good)))  # garbage, the same every run
    return {
        "garbage": noise,
        "cut-in-half": good[: len(good) // 2],
        "header-only": good[:100],
        "last-page-lost": good[:-PAGE],
        "first-page-zeroed": b"\0" * PAGE + good[PAGE:],
        "garbage-after-the-header": good[:PAGE] + noise[PAGE:],
    }[kind]


def _corrupt_site(site: Path, kind: str) -> tuple[Path, bytes]:
    db = load_config(site / "publisher.toml").state.path
    assert not db.with_name(db.name + "-wal").exists(), "the last run left a WAL behind"
    data = _corrupt(db.read_bytes(), kind)
    db.write_bytes(data)
    return db, data


def _every_command(site: Path) -> dict[str, subprocess.CompletedProcess]:
    """build, check, status and send, one after the other."""
    return {name: run(site, name) for name in ("build", "check", "status", "send")}


@pytest.mark.parametrize("kind", ["garbage", "cut-in-half", "header-only", "last-page-lost", "first-page-zeroed"])
def test_a_corrupt_database_is_refused_by_name_and_left_as_it_is(site: Path, kind: str) -> None:
    db, data = _corrupt_site(site, kind)
    for name, done in _every_command(site).items():
        assert_clear_failure(done, str(db), "cannot use the state database")
        assert "restore it from a backup" in done.stderr, name
    assert db.read_bytes() == data


def test_a_database_with_garbage_after_its_header_is_refused_by_every_command(site: Path) -> None:
    """A database whose first page is intact but whose other pages are
    garbage: opening reads every page (``PRAGMA quick_check``), so every
    command, read-only ones included, gives the one-line "cannot use the
    state database" naming the file, never a traceback from its first query."""
    db, data = _corrupt_site(site, "garbage-after-the-header")
    for name, done in _every_command(site).items():
        assert_clear_failure(done, str(db), "cannot use the state database")
    assert db.read_bytes() == data


def test_serve_checks_the_database_once_at_start_up(site: Path) -> None:
    """``publisher serve`` opens the store per request without reading every
    page; it reads them once before it listens, so damage stops it there."""
    db, data = _corrupt_site(site, "garbage-after-the-header")
    done = run(site, "serve", "--port", "0")
    assert_clear_failure(done, str(db), "cannot use the state database")
    assert db.read_bytes() == data


def test_a_database_cut_to_zero_bytes_is_not_silently_started_afresh(site: Path) -> None:
    """A state database truncated to 0 bytes (a crash of the file system, a
    failed copy) is not taken for a new one, which would mint every post's
    identity anew and forget every subscriber and issue: every command
    refuses it with "cannot use the state database", naming it, and leaves
    it as it is."""
    db, _ = _corrupt_site(site, "header-only")
    db.write_bytes(b"")
    for name, done in _every_command(site).items():
        assert_clear_failure(done, str(db), "cannot use the state database")
    assert db.read_bytes() == b""
