"""Post metadata through a build: keys in any case, unknown keys as warnings
(the post still published), one key in two spellings rejected."""

from __future__ import annotations

from pathlib import Path

from publisher.content import parsing
from publisher.feeds.build import check_site
from publisher.config import load_config
from publisher.state.store import StateStore

from .conftest import NOW, SteppedClock, build, write_config


def post(site: Path, name: str, text: str) -> Path:
    path = site / "posts" / name
    path.write_text(text, encoding="utf-8")
    return path


def titles(report) -> list[str]:
    return [p.title for p in report.site.posts]


def test_capitalised_draft_is_held_back_in_front_matter_and_sidecar(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\nDraft: true\n---\n# In front matter\n")
    post(blank_site, "b.txt", "Sidecar draft\n\nBody.\n")
    (blank_site / "posts" / "b.txt.meta.toml").write_text("DRAFT = true\n", encoding="utf-8")
    post(blank_site, "c.md", "+++\nDraft = false\n+++\n# Published\n")
    report = build(blank_site)
    assert (report.errors, report.warnings) == ((), ())
    assert titles(report) == ["Published"]


def test_unknown_keys_are_build_warnings_and_the_post_is_published(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\ntitle: Misspelt\ndarft: true\nlayout: post\n---\nBody.\n")
    post(blank_site, "b.txt", "With a sidecar\n\nBody.\n")
    (blank_site / "posts" / "b.txt.meta.toml").write_text('tags = ["x"]\nalaises = ["/old/"]\n', encoding="utf-8")
    # layout is Jekyll's and changes nothing in a feed: no warning.
    expected = (
        "posts/a.md:3: unknown key 'darft'",
        "posts/b.txt.meta.toml:2: unknown key 'alaises'",
    )
    report = build(blank_site)
    assert report.errors == ()
    assert report.warnings == expected
    assert sorted(titles(report)) == ["Misspelt", "With a sidecar"]
    # Read again from the cache of readings: still said, every build.
    again = build(blank_site)
    assert again.written == ()
    assert again.warnings == expected
    config = load_config(blank_site / "publisher.toml")
    store = StateStore.open(config.state.path, readonly=True)
    try:
        checked = check_site(config, store=store, now=NOW)
    finally:
        store.close()
    assert checked.warnings == expected


def test_a_key_in_two_spellings_rejects_that_post_only(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\ndraft: false\nDraft: true\n---\n# Which?\n")
    post(blank_site, "b.txt", "Two spellings in the sidecar\n\nBody.\n")
    (blank_site / "posts" / "b.txt.meta.toml").write_text('title = "x"\nTitle = "y"\n', encoding="utf-8")
    post(blank_site, "c.md", "# Fine\n")
    report = build(blank_site)
    assert titles(report) == ["Fine"]
    assert sorted(str(e).split(": ")[0] for e in report.errors) == ["posts/a.md:3", "posts/b.txt.meta.toml:2"]


def test_warnings_survive_parsing_in_worker_processes(blank_site: Path) -> None:
    path = post(blank_site, "a.md", "---\nlayuot: post\n---\n# Title\n")
    config = load_config(blank_site / "publisher.toml")
    (outcome,) = parsing._parse_chunk(config, [(path, "posts/a.md", path.read_bytes())])
    result = parsing._unpacked(outcome)
    assert [str(w) for w in result.warnings] == ["posts/a.md:2: unknown key 'layuot'"]


def test_check_and_build_print_the_warnings(blank_site: Path) -> None:
    from click.testing import CliRunner

    from publisher.app.cli import main

    write_config(blank_site, url='"https://news.test-site.net/"')
    post(blank_site, "a.md", "---\ntitle: Misspelt\ndarft: true\n---\nBody.\n")
    config = str(blank_site / "publisher.toml")
    for command in ("check", "build"):
        result = CliRunner().invoke(main, ["--config", config, command], obj={"clock": SteppedClock(NOW)})
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == ["warning: posts/a.md:3: unknown key 'darft'"], command


# -- other tools' keys ------------------------------------------------------------


def test_an_enclosure_in_front_matter_is_one_in_every_feed(blank_site: Path) -> None:
    post(blank_site, "episode-1.md", "---\ntitle: Episode 1\ndate: 2024-01-01\naudio: https://cdn.example/ep1.mp3\n---\nShow notes.\n")
    post(
        blank_site,
        "episode-2.md",
        "---\ntitle: Episode 2\ndate: 2024-02-01\nenclosure:\n  url: https://cdn.example/ep2.m4a\n"
        "  type: audio/x-m4a\n  length: 1234\n---\nShow notes.\n",
    )
    report = build(blank_site)
    assert report.errors == ()
    enclosures = {p.title: [(e.url, e.type, e.length) for e in p.enclosures] for p in report.site.posts}
    assert enclosures == {
        "Episode 1": [("https://cdn.example/ep1.mp3", "audio/mpeg", 0)],
        "Episode 2": [("https://cdn.example/ep2.m4a", "audio/x-m4a", 1234)],
    }
    rss = (blank_site / "feeds" / "rss.xml").read_text(encoding="utf-8")
    assert '<enclosure url="https://cdn.example/ep2.m4a" length="1234" type="audio/x-m4a"/>' in rss


def test_a_bad_enclosure_or_status_rejects_the_post_naming_the_line(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\ntitle: A\npodcast: ftp://x/ep.mp3\n---\nx\n")
    post(blank_site, "b.md", "---\ntitle: B\nStatus: maybe\n---\nx\n")
    report = build(blank_site)
    assert report.site.posts == ()
    assert sorted(str(e) for e in report.errors) == [
        "posts/a.md:3: podcast: url must be an absolute http(s) URL, got 'ftp://x/ep.mp3'",
        "posts/b.md:3: Status: status must be one of published, publish, draft, hidden, got 'maybe'",
    ]


def test_a_file_opening_with_prose_and_a_colon_is_not_a_metadata_header(blank_site: Path) -> None:
    post(blank_site, "a.md", "# Title\n\nNote: this is prose.\n")
    post(blank_site, "b.md", "Remember: bring water\nAnd: a map\n\nMore text.\n")
    report = build(blank_site)
    assert [str(e) for e in report.errors] == ["posts/b.md:1: no title: give a title in front matter or start with a # heading"]
    assert [p.title for p in report.site.posts] == ["Title"]


def test_slugs_given_explicitly_that_clash_reject_the_later_naming_both(blank_site: Path) -> None:
    post(blank_site, "a.md", "---\ntitle: A\nslug: same\ndate: 2024-01-01\n---\nx\n")
    post(blank_site, "b.md", "---\ntitle: B\nslug: same\ndate: 2024-01-02\n---\nx\n")
    report = build(blank_site)
    assert [p.title for p in report.site.posts] == ["A"]
    assert [str(e) for e in report.errors] == [
        "posts/b.md: URL https://example.org/2024/01/same/ is already used by posts/a.md"
    ]
