"""Post metadata through a build: keys in any case, unknown keys as warnings
(the post still published), one key in two spellings rejected."""

from __future__ import annotations

from pathlib import Path

from publisher.content import load
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
    (blank_site / "posts" / "b.txt.meta.toml").write_text('tags = ["x"]\nweight = 3\n', encoding="utf-8")
    expected = (
        "posts/a.md:3: unknown key 'darft'",
        "posts/a.md:4: unknown key 'layout'",
        "posts/b.txt.meta.toml:2: unknown key 'weight'",
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
    path = post(blank_site, "a.md", "---\nlayout: post\n---\n# Title\n")
    config = load_config(blank_site / "publisher.toml")
    (outcome,) = load._parse_chunk(config, [(path, "posts/a.md", path.read_bytes())])
    result = load._unpacked(outcome)
    assert [str(w) for w in result.warnings] == ["posts/a.md:2: unknown key 'layout'"]


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
