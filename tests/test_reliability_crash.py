"""Crashes: ``publisher send``, ``build`` and ``run --once`` killed with SIGKILL.

Real processes against a real SQLite file and a real SMTP server on
127.0.0.1 (tests/smtp_server.py). The kill points are random but seeded, so
a failure can be replayed. After every kill the state database passes
``PRAGMA integrity_check``, and the next run finishes the work:

- ``send``, killed at 12 points (3 while it starts, 9 at random counts of
  messages delivered): every subscriber gets the digest, at most one
  duplicate per connection per kill, one issue, every delivery ``sent``;
  after each kill what the store calls sent the server has, and at most a
  pool's worth more is in flight.
- ``build --force``, killed 8 times while it writes the feeds, with a reader
  thread polling the feeds all along: every read parses as a whole old or
  whole new feed, never a part of one.
- ``run --once``, killed twice in the middle of a digest job sending to a
  slow server: the next run finishes the issue.
"""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from publisher.config import load_config
from publisher.state.store import StateStore

from .helpers.smtp_server import SmtpServer
from .helpers.feeds import SCHEMAS, read_feed
from .helpers.sites import due_now, env, make_site, publisher, scheduled_site
from .helpers.waiting import Poller
from .helpers.waiting import wait_for

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

SEED = 20261129
ATOM_NS = "{http://www.w3.org/2005/Atom}"


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of the state database, as a new process would open it."""
    connection = sqlite3.connect(db)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def kill(process: subprocess.Popen) -> bool:
    """SIGKILL ``process``; True if it was still running (the kill interrupted it)."""
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return running


def sent_in_store(db: Path) -> tuple[int, int, set[str]]:
    """(issues, deliveries, addresses marked sent), read without changing anything."""
    connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        issues = connection.execute("SELECT count(*) FROM issues").fetchone()[0]
        deliveries = connection.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        sent = {row[0].lower() for row in connection.execute("SELECT email FROM deliveries WHERE status = 'sent'")}
        return issues, deliveries, sent
    finally:
        connection.close()


# --- publisher send ----------------------------------------------------------------


def test_send_killed_at_twelve_random_points_loses_nobody(tmp_path: Path) -> None:
    total, pool = 150, 4
    rng = random.Random(SEED)
    startup_kills = [rng.uniform(0.05, 0.7) for _ in range(3)]  # seconds after the start
    count_kills = sorted(rng.sample(range(5, total - 5), 9))  # messages delivered
    everyone = {f"reader{n}@example.net" for n in range(total)}
    with SmtpServer(slow=0.01) as server:
        site = make_site(tmp_path / "site", server.port, total, connections=pool)
        db = load_config(site / "publisher.toml").state.path
        command = publisher(site, "send")
        kills = 0
        for delay in startup_kills:
            process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            assert kill(process), f"send finished within {delay:.2f} s: the kill came too late"
            kills += 1
            assert integrity(db) == "ok"
        for target in count_kills:
            process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: len(server.delivered()) >= target or process.poll() is not None)
            assert kill(process), f"send ended before message {target}: {process.stderr.read()!r}"
            kills += 1
            # The state after the crash: whole, one issue with its whole
            # audience, and nothing called sent that the server lacks.
            assert integrity(db) == "ok"
            issues, deliveries, sent = sent_in_store(db)
            assert (issues, deliveries) == (1, total)
            delivered = set(server.delivered())
            assert sent <= delivered
            # In flight at this kill: at most one per connection; messages in
            # flight at earlier kills may not have been sent again yet.
            assert len(delivered - sent) <= pool * kills, "more in flight than there are connections"
        final = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        assert "Traceback" not in final.stderr
        delivered = server.delivered()
    assert kills >= 10
    assert set(delivered) == everyone
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= pool * kills
    print(f"send: {kills} kills, {len(delivered)} delivered, {duplicates} duplicates")
    assert integrity(db) == "ok"
    store = StateStore.open(db)
    try:
        (issue,) = store.issues.all("daily")
        assert issue.status == "sent"
        assert store.deliveries.counts(issue.id) == {"sent": total}
    finally:
        store.close()


# --- publisher build ----------------------------------------------------------------

BUILD_KILLS = 8
FINAL_VERSION = 99
POSTS = 120


def _write_posts(site: Path, version: int) -> None:
    """POSTS long posts and one whose title carries ``version``: each build writes new feeds."""
    posts = site / "posts"
    if not (posts / "p000.txt").exists():
        for n in range(POSTS):
            (posts / f"p{n:03d}.txt").write_text(
                f"+++\ndate = 2024-01-01T{n // 60:02d}:{n % 60:02d}:00Z\ntags = [\"News\"]\n+++\nPost {n}\n\n"
                + f"Paragraph of post {n}, long enough to make the feeds a few megabytes. " * 60
                + "\n",
                encoding="utf-8",
            )
    (posts / "version.txt").write_text(
        f"+++\ndate = 2024-06-01T10:00:00Z\ntags = [\"News\"]\n+++\nVersion {version}\n\nThe build of version {version}.\n",
        encoding="utf-8",
    )


def _whole_feed(path: Path, data: bytes) -> None:
    """A feed read while builds come and go: it parses, and holds every post and one version."""
    if path.suffix == ".json":
        titles = [item["title"] for item in json.loads(data)["items"]]
    else:
        root = etree.fromstring(data)
        entries = root.findall("./channel/item") or root.findall(f"{ATOM_NS}entry")
        titles = [e.findtext("title") or e.findtext(f"{ATOM_NS}title") for e in entries]
    assert len(titles) == POSTS + 1, f"{len(titles)} entries"
    assert len([t for t in titles if t.startswith("Version ")]) == 1


@dataclass
class KilledBuilds:
    site: Path
    interrupted: int = 0
    while_writing: int = 0
    poller_failures: list[str] = field(default_factory=list)
    poller_reads: int = 0
    temp_files_after_kills: list[str] = field(default_factory=list)
    final: subprocess.CompletedProcess | None = None
    temp_files_after_final: list[str] = field(default_factory=list)


def _versions(feeds: Path) -> set[int]:
    """The versions the feed files show right now."""
    found = set()
    for path in sorted(feeds.rglob("*")):
        if path.suffix in (".xml", ".json") and not path.name.startswith("."):
            found |= {int(v) for v in re.findall(rb"Version (\d+)", path.read_bytes())}
    return found


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.tmp"))


@pytest.fixture(scope="module")
def killed_builds(tmp_path_factory: pytest.TempPathFactory) -> KilledBuilds:
    rng = random.Random(SEED + 1)
    site = tmp_path_factory.mktemp("killed-builds") / "site"
    site.mkdir()
    (site / "posts").mkdir()
    (site / "publisher.toml").write_text(
        '[site]\ntitle = "Crash Site"\nurl = "https://example.org/"\ntimezone = "UTC"\n'
        'author = { name = "Editor", email = "editor@example.org" }\n\n[content]\npaths = ["posts"]\n\n'
        f"[feeds]\nitems = {POSTS + 1}\n",
        encoding="utf-8",
    )
    _write_posts(site, 0)
    first = subprocess.run(publisher(site, "build"), env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # How long a whole build --force takes here, for the kills at random moments.
    started = time.monotonic()
    timed = subprocess.run(publisher(site, "build", "--force"), env=env(), capture_output=True, text=True, timeout=300)
    assert timed.returncode == 0, timed.stderr
    duration = time.monotonic() - started
    feeds = site / "feeds"
    result = KilledBuilds(site)
    poller = Poller([feeds / "rss.xml", feeds / "atom.xml", feeds / "feed.json", feeds / "tags" / "news.xml"], _whole_feed)
    poller.start()
    assert poller.first_read.wait(60)
    try:
        # A build that ends before its kill (the machine got faster than
        # when the build was timed) does not count: the next version tries
        # again, with the shorter time.
        version = 0
        while result.interrupted < BUILD_KILLS and version < 3 * BUILD_KILLS:
            version += 1
            _write_posts(site, version)
            before = set(_temp_files(feeds))  # left by the kills before
            started = time.monotonic()
            process = subprocess.Popen(publisher(site, "build", "--force"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if version % 2:
                # The moment a new temporary feed file appears, plus a little.
                wait_for(lambda: bool(set(_temp_files(feeds)) - before) or process.poll() is not None)
                writing = process.poll() is None
                time.sleep(rng.uniform(0, 0.002))
            else:
                # A random moment in the second half of the build, when it writes.
                deadline = time.monotonic() + duration * rng.uniform(0.5, 0.9)
                writing = False
                while time.monotonic() < deadline:
                    writing = writing or bool(set(_temp_files(feeds)) - before)
                    time.sleep(0.001)
            if not kill(process):
                duration = min(duration, time.monotonic() - started)
                continue
            result.interrupted += 1
            # Some feeds new and some old: the kill came in the middle of writing them.
            versions = _versions(feeds)
            result.while_writing += writing or len(versions) > 1
            assert integrity(site / ".publisher" / "state.db") == "ok"
        # A kill between a temporary file's creation and its rename leaves it
        # behind; if none of the kills above did, a few more try to.
        for extra in range(20):
            if _temp_files(feeds):
                break
            _write_posts(site, version + 1 + extra)
            process = subprocess.Popen(publisher(site, "build", "--force"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: bool(_temp_files(feeds)) or process.poll() is not None)
            kill(process)
        result.temp_files_after_kills = _temp_files(feeds)
        _write_posts(site, FINAL_VERSION)
        result.final = subprocess.run(publisher(site, "build"), env=env(), capture_output=True, text=True, timeout=300)
        result.temp_files_after_final = _temp_files(feeds)
    finally:
        poller.finish()
    result.poller_failures = poller.failures
    result.poller_reads = poller.reads
    return result


def test_a_build_killed_while_writing_never_shows_a_reader_part_of_a_feed(killed_builds: KilledBuilds) -> None:
    assert killed_builds.interrupted == BUILD_KILLS, "a build finished before its kill"
    assert killed_builds.while_writing >= BUILD_KILLS // 2, "too few kills landed while feeds were written"
    assert killed_builds.poller_reads > 100
    assert killed_builds.poller_failures == []
    print(f"build: {killed_builds.interrupted} kills, {killed_builds.while_writing} while writing, {killed_builds.poller_reads} reads")


def test_the_build_after_the_kills_finishes_and_its_feeds_validate(killed_builds: KilledBuilds) -> None:
    final = killed_builds.final
    assert final is not None and final.returncode == 0, final and final.stderr
    assert "Traceback" not in final.stderr
    feeds = killed_builds.site / "feeds"
    parsed = read_feed(feeds / "atom.xml")
    assert parsed.bozo == 0
    assert f"Version {FINAL_VERSION}" in [e.title for e in parsed.entries]
    schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    assert schema.validate(etree.parse(str(feeds / "atom.xml"))), schema.error_log
    assert integrity(killed_builds.site / ".publisher" / "state.db") == "ok"


def test_the_build_after_the_kills_clears_the_temporary_files_they_left(killed_builds: KilledBuilds) -> None:
    """A build killed between creating a feed's temporary file
    (``.rss.xml.XXXX.tmp``) and renaming it leaves that file in the feeds
    folder; the next build removes it, so crashes leave no litter in the
    folder the web server publishes."""
    assert killed_builds.temp_files_after_kills, "no kill left a temporary file: the test shows nothing"
    assert killed_builds.temp_files_after_final == []


# --- publisher run --once ----------------------------------------------------------------


def test_run_once_killed_mid_digest_then_the_next_run_finishes_the_issue(tmp_path: Path) -> None:
    total, pool = 300, 4
    rng = random.Random(SEED + 2)
    everyone = {f"reader{n}@example.net" for n in range(total)}
    with SmtpServer(slow=0.02) as server:
        site = scheduled_site(tmp_path, schedule="every minute", subscribers=total, port=server.port, connections=pool)
        due_now(site)
        db = load_config(site / "publisher.toml").state.path
        kills = 0
        for target in sorted(rng.sample(range(20, total - 40), 2)):
            process = subprocess.Popen(publisher(site, "run", "--once"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: len(server.delivered()) >= target or process.poll() is not None)
            assert kill(process), f"run --once ended before message {target}: {process.stderr.read()!r}"
            kills += 1
            assert integrity(db) == "ok"
            issues, deliveries, sent = sent_in_store(db)
            assert (issues, deliveries) == (1, total)
            assert sent <= set(server.delivered())
        again = subprocess.run(publisher(site, "run", "--once"), env=env(), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert "Traceback" not in again.stderr
        delivered = server.delivered()
    assert set(delivered) == everyone
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= pool * kills
    print(f"run --once: {kills} kills, {len(delivered)} delivered, {duplicates} duplicates")
    assert integrity(db) == "ok"
    store = StateStore.open(db)
    try:
        (issue,) = store.issues.all("daily")
        assert issue.status == "sent"
        assert store.deliveries.counts(issue.id) == {"sent": total}
        assert store.jobs.get("digest:daily").status == "ok"
    finally:
        store.close()
