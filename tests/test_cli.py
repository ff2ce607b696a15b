"""The command line contract: output, exit codes, and what is (not) written.

Exit codes: 0 success; 1 finished but some inputs were rejected (each named
on stderr as ``path:line: reason``); 2 usage or configuration error (nothing
written). No traceback reaches the user for an expected failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from publisher import __version__
from publisher.state.store import StateStore

from .conftest import invoke, write_config

FEEDS = ("rss.xml", "atom.xml", "feed.json")
OLD_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09, in nanoseconds


# The sample site and `publisher init` keep the example address until the owner sets theirs.
PLACEHOLDER_WARNING = (
    "warning: publisher.toml: [site] url is still the placeholder https://example.org/; "
    "set it to the address where readers find the site (feeds and emails link there)\n"
)


@pytest.fixture
def blank_site(tmp_path: Path) -> Path:
    """The shared blank site, at an address of its own: stderr holds only what a test is about."""
    site = tmp_path / "blank"
    site.mkdir()
    write_config(site, url='"https://news.test-site.net/"')
    return site


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime_ns."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def rss_titles(site: Path) -> list[str]:
    doc = etree.parse(str(site / "feeds" / "rss.xml"))
    return [item.findtext("title") for item in doc.getroot().findall("./channel/item")]


def good_posts(site: Path) -> None:
    (site / "posts" / "a.txt").write_text("First good post\n\nThe body of the first.\n", encoding="utf-8")
    (site / "posts" / "b.txt").write_text(
        "+++\ndate = 2024-03-01T10:00:00Z\ntags = [\"news\"]\n+++\nSecond good post\n\nMore text.\n",
        encoding="utf-8",
    )


# --- build and check on good sites ------------------------------------------


def feed_files(site: Path) -> int:
    """How many files the build has written under feeds/."""
    return sum(1 for p in (site / "feeds").rglob("*") if p.is_file())


def test_build_sample_site_exits_0_and_prints_the_feed_paths(
    sample_site: Path, monkeypatch: pytest.MonkeyPatch, state_backend: str
) -> None:
    monkeypatch.chdir(sample_site)
    result = invoke("build")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == PLACEHOLDER_WARNING
    lines = result.stdout.splitlines()
    assert lines[0] == f"Built 1 post into feeds/: {feed_files(sample_site)} written, 0 unchanged"
    for name in FEEDS:
        assert f"  feeds/{name}" in lines
        assert (sample_site / "feeds" / name).stat().st_size > 0
    assert (sample_site / ".publisher" / "state.db").is_file() == (state_backend == "sqlite")
    assert len(rss_titles(sample_site)) == 1


def test_second_build_reports_files_unchanged(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sample_site)
    assert invoke("build").exit_code == 0
    result = invoke("build")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"Built 1 post into feeds/: 0 written, {feed_files(sample_site)} unchanged"


def test_check_good_site_exits_0_and_writes_nothing(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sample_site)
    before = tree(sample_site)

    result = invoke("check")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == PLACEHOLDER_WARNING
    assert result.stdout.strip() == "publisher.toml: ok; 1 post would be published"
    assert not (sample_site / "feeds").exists()
    assert not (sample_site / ".publisher").exists()
    assert tree(sample_site) == before


def test_check_after_a_build_writes_nothing(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` writes nothing, also where a state database already exists.

    Fails today: the read-only SQLite connection that `check` opens on a
    WAL-mode database creates state.db-wal and state.db-shm and leaves them.
    """
    monkeypatch.chdir(sample_site)
    assert invoke("build").exit_code == 0
    before = tree(sample_site)

    result = invoke("check")

    assert result.exit_code == 0, result.stderr
    assert tree(sample_site) == before


def test_check_bad_post_exits_1_naming_path_and_line(blank_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_posts(blank_site)
    (blank_site / "posts" / "bad.txt").write_bytes(b"")
    monkeypatch.chdir(blank_site)

    result = invoke("check")

    assert result.exit_code == 1
    assert result.stderr == "posts/bad.txt:1: empty file\n"
    assert "2 posts would be published, 1 input rejected" in result.stdout
    assert not (blank_site / "feeds").exists()
    assert not (blank_site / ".publisher").exists()


def test_build_with_one_bad_post_exits_1_and_publishes_the_rest(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_posts(blank_site)
    (blank_site / "posts" / "bad.txt").write_text(
        "---\ntags: [x]\ndate: 2014-02-30\n---\nBad post\n", encoding="utf-8"
    )
    monkeypatch.chdir(blank_site)

    result = invoke("build")

    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("posts/bad.txt:3: date: ")
    expected = f"Built 2 posts into feeds/: {feed_files(blank_site)} written, 0 unchanged, 1 input rejected"
    assert expected in result.stdout
    assert sorted(rss_titles(blank_site)) == ["First good post", "Second good post"]


# --- each kind of bad input names its file and line --------------------------

BAD_INPUTS = [
    # (id, bytes of posts/bad.txt, sidecar bytes or None, expected prefix, words in the reason)
    (
        "undecodable-bytes",
        b"Title\n\nok\n\xff\xfe bad",
        None,
        "posts/bad.txt:4: ",  # the \xff is on the fourth line
        "not valid UTF-8 (byte 0xff at column 1)",
    ),
    ("empty-file", b"", None, "posts/bad.txt:1: ", "empty file"),
    ("whitespace-only", b"  \n\t\n   \r\n", None, "posts/bad.txt:1: ", "empty file"),
    (
        "front-matter-only-no-title",
        b"---\ndate: 2020-01-01\ntags: [x]\n---\n",
        None,
        "posts/bad.txt:5: ",  # where the (missing) body would start
        "no title",
    ),
    (
        "yaml-does-not-parse",
        b"---\ndate: 2020-01-01\ntitle: a: b\ntags: [x]\n---\nBody\n",
        None,
        "posts/bad.txt:3: ",
        "front matter is not valid YAML",
    ),
    (
        "toml-does-not-parse",
        b'+++\ndate = 2020-01-01\ntitle = \ntags = ["x"]\n+++\nBody\n',
        None,
        "posts/bad.txt:3: ",
        "front matter is not valid TOML",
    ),
    (
        "toml-does-not-parse-on-last-line",
        b'+++\ntags = ["x"]\ntitle = \n+++\nBody\n',
        None,
        "posts/bad.txt:3: ",
        "front matter is not valid TOML",
    ),
    (
        "impossible-date-yaml",
        b"---\ntags: [x]\ndate: 2014-02-30\n---\nTitle\n",
        None,
        "posts/bad.txt:3: ",
        "date: '2014-02-30' is not a date",
    ),
    (
        "impossible-date-toml-string",
        b'+++\ntags = ["x"]\ndate = "2014-02-30"\n+++\nTitle\n',
        None,
        "posts/bad.txt:3: ",
        "date: '2014-02-30' is not a date",
    ),
    (
        "impossible-date-toml-datetime",
        b'+++\ntags = ["x"]\ndate = 2014-02-30\n+++\nTitle\n',
        None,
        "posts/bad.txt:3: ",
        "front matter is not valid TOML",
    ),
    (
        "front-matter-never-closed",
        b"---\ntitle: Hello\n\nBody text.\n",
        None,
        "posts/bad.txt:1: ",
        "never closed",
    ),
    (
        "utf-16",
        "Title\n\nBody in UTF-16.\n".encode("utf-16"),
        None,
        "posts/bad.txt:1: ",
        "UTF-16",
    ),
    (
        "sidecar-bad-toml",
        b"A fine title\n\nA fine body.\n",
        b'tags = ["a"]\ndate = \nslug = "x"\n',
        "posts/bad.txt.meta.toml:2: ",
        "not valid TOML",
    ),
]


@pytest.mark.parametrize(
    "data, sidecar, prefix, reason",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_named_by_path_and_line(
    blank_site: Path,
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    sidecar: bytes | None,
    prefix: str,
    reason: str,
) -> None:
    good_posts(blank_site)
    (blank_site / "posts" / "bad.txt").write_bytes(data)
    if sidecar is not None:
        (blank_site / "posts" / "bad.txt.meta.toml").write_bytes(sidecar)
    monkeypatch.chdir(blank_site)

    result = invoke("build")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0]
    assert reason in lines[0][len(prefix) :], lines[0]
    assert sorted(rss_titles(blank_site)) == ["First good post", "Second good post"]

    check = invoke("check")
    assert check.exit_code == 1
    assert check.stderr == result.stderr


# --- configuration errors -----------------------------------------------------


def test_config_error_exits_2_with_one_line_and_writes_nothing(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(blank_site, url='"example.org"')
    good_posts(blank_site)
    monkeypatch.chdir(blank_site)
    before = tree(blank_site)

    for command in ("build", "check"):
        result = invoke(command)
        assert result.exit_code == 2
        assert result.stderr == (
            "publisher.toml: [site] url: must be an absolute http(s) URL (got 'example.org')\n"
        )
        assert result.stdout == ""
    assert not (blank_site / "feeds").exists()
    assert not (blank_site / ".publisher").exists()
    assert tree(blank_site) == before


def test_config_with_several_problems_lists_each_on_its_own_line(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(blank_site, '[feeds]\nitems = 0\n', url='"example.org"', timezone='"Nowhere/Land"')
    monkeypatch.chdir(blank_site)
    result = invoke("build")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "[site] url",
        "[site] timezone",
        "[feeds] items",
    ]
    assert all(line.startswith("publisher.toml: ") for line in lines)
    assert not (blank_site / "feeds").exists()
    assert not (blank_site / ".publisher").exists()


def test_missing_config_exits_2_and_suggests_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("build")
    assert result.exit_code == 2
    assert result.stderr.startswith("publisher.toml: no such file")
    assert "publisher init" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_command_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_error_in_a_real_process_has_no_traceback(blank_site: Path) -> None:
    write_config(blank_site, timezone='"Mars/Olympus"')
    proc = subprocess.run(
        [sys.executable, "-m", "publisher", "build"],
        cwd=blank_site,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("publisher.toml: [site] timezone: must be an IANA time zone")
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not (blank_site / "feeds").exists()
    assert not (blank_site / ".publisher").exists()


# --- verbosity -----------------------------------------------------------------


def test_quiet_prints_nothing_on_success(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sample_site)
    result = invoke("-q", "build")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""
    assert all((sample_site / "feeds" / name).is_file() for name in FEEDS)

    result = invoke("-q", "check")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_quiet_still_reports_rejected_files(blank_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_posts(blank_site)
    (blank_site / "posts" / "bad.txt").write_bytes(b"   \n")
    monkeypatch.chdir(blank_site)
    result = invoke("-q", "build")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "posts/bad.txt:1: empty file\n"


@pytest.mark.slow
def test_verbose_adds_log_lines_on_stderr(sample_site: Path) -> None:
    # A real process: logging is configured once per process, so -v is
    # checked where a user would see it.
    command = [sys.executable, "-m", "publisher"]
    plain = subprocess.run(command + ["build"], cwd=sample_site, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0
    assert plain.stderr == PLACEHOLDER_WARNING

    verbose = subprocess.run(
        command + ["-v", "build", "--force"], cwd=sample_site, capture_output=True, text=True, timeout=120
    )
    assert verbose.returncode == 0, verbose.stderr
    log_lines = verbose.stderr.splitlines()
    for name in FEEDS:
        assert any(
            line.startswith("INFO publisher.build: wrote ") and f"feeds/{name}" in line for line in log_lines
        ), log_lines
    # -v adds log lines on stderr; stdout says the same as without it.
    assert verbose.stdout == plain.stdout
    assert verbose.stdout.startswith("Built 1 post into feeds/: ")
    assert " written, 0 unchanged" in verbose.stdout.splitlines()[0]


@pytest.mark.slow
def test_console_script_builds_quietly(sample_site: Path) -> None:
    script = Path(sys.executable).parent / "publisher"
    assert script.is_file()
    proc = subprocess.run(
        [str(script), "-q", "build"], cwd=sample_site, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""
    for name in FEEDS:
        assert (sample_site / "feeds" / name).stat().st_size > 0

    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_python_m_publisher_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "publisher", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"publisher, version {__version__}"
    assert proc.stderr == ""


# --- init ------------------------------------------------------------------------


def test_init_creates_a_site_that_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "mysite")
    assert result.exit_code == 0, result.stderr

    site = tmp_path / "mysite"
    for name in ("publisher.toml", "posts/hello-world.txt", ".gitignore"):
        assert (site / name).is_file(), name
        assert f"created {Path('mysite') / name}" in result.stdout
    assert ".publisher/" in (site / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "cd mysite && publisher build" in result.stdout

    monkeypatch.chdir(site)
    result = invoke("build")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == PLACEHOLDER_WARNING
    for name in FEEDS:
        assert (site / "feeds" / name).stat().st_size > 0
    assert rss_titles(site) == ["Hello, world"]

    check = invoke("check")
    assert check.exit_code == 0, check.stderr
    assert check.stderr == PLACEHOLDER_WARNING
    # Once the owner sets the site's address, the warning goes.
    config = site / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('url = "https://example.org/"', 'url = "https://blog.test-site.net/"'),
        encoding="utf-8",
    )
    for command in ("check", "build"):
        quiet = invoke(command)
        assert quiet.exit_code == 0 and quiet.stderr == "", (command, quiet.stderr)

    # The scheduler has jobs to run from the start.
    status = invoke("status")
    assert status.exit_code == 0, status.stderr
    assert "build" in status.stdout and "digest:daily" in status.stdout
    once = invoke("run", "--once")
    assert once.exit_code == 0, once.stderr


def test_init_refuses_an_existing_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "existing"
    site.mkdir()
    config = site / "publisher.toml"
    config.write_text("# my own config\n", encoding="utf-8")
    before = config.stat().st_mtime_ns
    monkeypatch.chdir(tmp_path)

    result = invoke("init", "existing")

    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "publisher.toml" in result.stderr
    assert "already exists" in result.stderr
    assert config.read_text(encoding="utf-8") == "# my own config\n"
    assert config.stat().st_mtime_ns == before
    assert sorted(p.name for p in site.iterdir()) == ["publisher.toml"]


# --- --config --------------------------------------------------------------------


@pytest.mark.sqlite_only  # the SQLite file itself
def test_config_option_resolves_paths_relative_to_the_config(
    sample_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = invoke("--config", "../site/publisher.toml", "build")

    assert result.exit_code == 0, result.stderr
    assert "Built 1 post into feeds/" in result.stdout
    for name in FEEDS:
        assert (sample_site / "feeds" / name).is_file()
    assert (sample_site / ".publisher" / "state.db").is_file()
    assert list(elsewhere.iterdir()) == []

    check = invoke("--config", str(sample_site / "publisher.toml"), "check")
    assert check.exit_code == 0, check.stderr
    assert list(elsewhere.iterdir()) == []


# --- --force and unchanged files -------------------------------------------------


def test_build_leaves_unchanged_files_alone_and_force_rewrites_them(
    sample_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample_site)
    assert invoke("build").exit_code == 0
    paths = [sample_site / "feeds" / name for name in FEEDS]
    contents = [p.read_bytes() for p in paths]
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS))

    result = invoke("build")
    assert result.exit_code == 0
    assert f"0 written, {feed_files(sample_site)} unchanged" in result.stdout
    assert [p.stat().st_mtime_ns for p in paths] == [OLD_NS] * 3

    result = invoke("build", "--force")
    assert result.exit_code == 0
    assert f"{feed_files(sample_site)} written, 0 unchanged" in result.stdout
    for path, content in zip(paths, contents):
        assert path.stat().st_mtime_ns != OLD_NS
        assert path.read_bytes() == content


# --- the state database ------------------------------------------------------------


@pytest.mark.sqlite_only  # the SQLite file itself
@pytest.mark.parametrize("command", ["build", "check"])
def test_corrupt_state_database_exits_2_and_touches_nothing(
    sample_site: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(sample_site)
    assert invoke("build").exit_code == 0
    # A new post: a build that went ahead would change the feeds.
    (sample_site / "seeds" / "new.txt").write_text("A new post\n\nNew text.\n", encoding="utf-8")
    db = sample_site / ".publisher" / "state.db"
    for leftover in (db.with_name("state.db-wal"), db.with_name("state.db-shm")):
        leftover.unlink(missing_ok=True)
    garbage = b"this is not a database\x00\xff" * 400
    db.write_bytes(garbage)
    feeds_before = tree(sample_site / "feeds")
    rss_before = (sample_site / "feeds" / "rss.xml").read_bytes()

    result = invoke(command)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert str(Path(".publisher") / "state.db") in lines[0]
    assert tree(sample_site / "feeds") == feeds_before
    assert (sample_site / "feeds" / "rss.xml").read_bytes() == rss_before
    assert db.read_bytes() == garbage


def test_unwritable_feeds_folder_exits_2_and_records_no_build(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_posts(blank_site)
    (blank_site / "feeds").write_text("a file where the feeds folder should be\n", encoding="utf-8")
    monkeypatch.chdir(blank_site)

    result = invoke("build")

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "rss.xml: cannot write" in lines[0]
    store = StateStore.open(blank_site / ".publisher" / "state.db")
    try:
        assert store.builds.last() is None
        assert store.posts.recall("posts/a.txt") is None
    finally:
        store.close()


def test_build_counts_the_files_that_are_no_posts_and_v_names_them(
    blank_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_posts(blank_site)
    (blank_site / "posts" / "logo.png").write_bytes(b"\x89PNG\r\n")
    (blank_site / "posts" / "about.md").write_text("---\nlayout: page\ntitle: About\n---\nMe.\n", encoding="utf-8")
    (blank_site / "posts" / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")
    monkeypatch.chdir(blank_site)
    result = invoke("build")
    assert result.exit_code == 0, result.stderr
    # robots.txt is excluded by the built-in [content] exclude: meant, so not counted.
    assert result.stdout.splitlines()[-1] == (
        "  2 files skipped: 1 a page (layout: page), not a post, 1 no reader for .png (publisher -v names them)"
    )
    verbose = invoke("-v", "build")
    assert "skipped: posts/logo.png: no reader for .png" in verbose.stderr.splitlines()
    assert "skipped: posts/robots.txt: excluded by [content] exclude" in verbose.stderr.splitlines()
    assert invoke("check").stdout.splitlines()[-1].startswith("  2 files skipped:")
