"""load_config: publisher.toml read once into frozen, checked settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .conftest import write_config
from publisher.config import DEFAULT_PERMALINK, Config, load_config
from publisher.errors import ConfigError, PublisherError
from publisher.model import Author
from publisher.content.readers import DEFAULT_BOILERPLATE


def _problems(exc: ConfigError) -> list[str]:
    return str(exc).splitlines()


# --- the sample config -------------------------------------------------------


def test_sample_config_loads_its_values(sample_site: Path) -> None:
    config = load_config(sample_site / "publisher.toml")

    assert isinstance(config, Config)
    assert config.site.title == "War in Context"
    assert config.site.url == "https://example.org/"
    assert config.site.description == "News and views"
    assert config.site.language == "en"
    assert config.site.timezone == ZoneInfo("America/New_York")
    assert config.site.author == Author(name="Editor", email="editor@example.org")
    assert config.feeds.items == 20
    assert config.feeds.full_content is True
    # Keys the sample leaves out take their defaults.
    assert config.content.permalink == DEFAULT_PERMALINK
    assert config.content.boilerplate == DEFAULT_BOILERPLATE


def test_sample_config_paths_are_relative_to_the_config_file_not_the_cwd(
    sample_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(Path("..") / "site" / "publisher.toml")

    root = sample_site.resolve()
    assert config.root == root
    assert config.content.paths == (root / "seeds",)
    assert config.feeds.out == root / "feeds"
    assert config.state.path == root / ".publisher" / "state.db"
    for path in (*config.content.paths, config.feeds.out, config.state.path):
        assert path.is_absolute()
        assert elsewhere.resolve() not in path.parents


def test_feeds_url_defaults_to_site_url_plus_feeds(sample_site: Path) -> None:
    config = load_config(sample_site / "publisher.toml")
    assert config.feeds.url == "https://example.org/feeds/"
    assert config.site_info.feeds_url == "https://example.org/feeds/"


def test_feeds_url_follows_a_site_url_with_a_path_and_no_trailing_slash(tmp_path: Path) -> None:
    path = write_config(tmp_path, url='"https://example.org/blog"')
    config = load_config(path)
    assert config.site.url == "https://example.org/blog/"
    assert config.feeds.url == "https://example.org/blog/feeds/"


def test_explicit_feeds_url_is_kept(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[feeds]\nurl = "https://cdn.example.net/f/"\n')
    assert load_config(path).feeds.url == "https://cdn.example.net/f/"


def test_settings_are_frozen(sample_site: Path) -> None:
    config = load_config(sample_site / "publisher.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.site.title = "Changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.feeds.items = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.state = None  # type: ignore[misc]
    assert config.site.title == "War in Context"


def test_minimal_config_defaults(blank_site: Path) -> None:
    config = load_config(blank_site / "publisher.toml")
    root = blank_site.resolve()
    assert config.site.timezone == ZoneInfo("UTC")
    assert config.site.language == "en"
    assert config.site.description == ""
    assert config.content.paths == (root / "posts",)
    assert config.feeds.out == root / "feeds"
    assert config.feeds.items == 20
    assert config.state.path == root / ".publisher" / "state.db"


def test_site_author_defaults_to_the_site_title(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_text('[site]\ntitle = "Solo"\nurl = "https://solo.example/"\n', encoding="utf-8")
    assert load_config(path).site.author == Author(name="Solo")


# --- every problem reported at once ------------------------------------------


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_text(
        "[site]\n"
        'url = "example.org"\n'  # not absolute
        "language = 5\n"  # wrong type
        'colour = "blue"\n'  # unknown key
        # title: required, missing
        "\n[feeds]\n"
        'items = "many"\n',  # wrong type
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)

    exc = caught.value
    lines = _problems(exc)
    assert len(lines) == 5, lines
    assert len(exc.problems) == 5
    for line in lines:
        assert line.startswith(f"{path}: "), line
    expected = {
        "[site] url: must be an absolute http(s) URL (got 'example.org')",
        "[site] title: required",
        "[site] colour: unknown key",
        "[site] language: must be",
        "[feeds] items: must be a whole number",
    }
    for start in expected:
        assert sum(line.startswith(f"{path}: {start}") for line in lines) == 1, (start, lines)


def test_config_error_is_a_publisher_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, url='"ftp://example.org/"')
    with pytest.raises(PublisherError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: [site] url: must be an absolute http(s) URL (got 'ftp://example.org/')"
    )


@pytest.mark.parametrize("language", ["fr", "pt-BR", "de-CH", "zh-Hant-TW"])
def test_languages_with_dates_are_accepted(tmp_path: Path, language: str) -> None:
    path = write_config(tmp_path, language=f'"{language}"')
    assert load_config(path).site.language == language


@pytest.mark.parametrize(
    ("language", "reason"),
    [("xq", "unknown locale 'xq'"), ("en-GB-oed", "'en-GB-oed' is not a valid locale identifier")],
)
def test_a_language_dates_cannot_be_written_in_is_an_error(tmp_path: Path, language: str, reason: str) -> None:
    # Well-formed as a tag, but Babel has no dates for it: every date would be English.
    path = write_config(tmp_path, language=f'"{language}"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: [site] language: must be a language dates can be written in, "
        f"such as 'en', 'fr', 'de' or 'pt-BR' (got '{language}': {reason})"
    )


def test_error_lines_use_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, url='"example.org"')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("publisher.toml"))
    assert str(caught.value) == (
        "publisher.toml: [site] url: must be an absolute http(s) URL (got 'example.org')"
    )


def test_unknown_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[feed]\nitems = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = _problems(caught.value)
    assert line.startswith(f"{path}: [feed]: unknown section")
    assert "site, content, feeds, state" in line


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_text('feeds = "feeds"\n[site]\ntitle = "T"\nurl = "https://e.org/"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(line.startswith(f"{path}: [feeds]: must be a table") for line in _problems(caught.value))


@pytest.mark.parametrize("zone", ['"Mars/Olympus_Mons"', '""', "5", '"../../etc/passwd"'])
def test_bad_timezone(tmp_path: Path, zone: str) -> None:
    path = write_config(tmp_path, timezone=zone)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = _problems(caught.value)
    assert line.startswith(f"{path}: [site] timezone: must be an IANA time zone")


def test_good_timezone(tmp_path: Path) -> None:
    path = write_config(tmp_path, timezone='"Asia/Kolkata"')
    assert load_config(path).site.timezone == ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize(
    "permalink, reason",
    [
        ('"{year}/{month}/"', "must contain {slug}"),
        ('"{year}/{nope}/{slug}/"', "may use only {year}, {month}, {day} and {slug}"),
        ('"{0}/{slug}/"', "may use only"),
        ('"{slug"', "may use only"),
        ('"https://elsewhere.example/{slug}/"', "must be relative to [site] url"),
        ('"/{year}/{slug}/"', "must be relative to [site] url"),
        ('""', "must not be empty"),
    ],
)
def test_bad_permalink(tmp_path: Path, permalink: str, reason: str) -> None:
    path = write_config(tmp_path, f"permalink = {permalink}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = _problems(caught.value)
    assert line.startswith(f"{path}: [content] permalink: {reason}"), line


def test_good_permalink(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'permalink = "posts/{year}/{month}/{day}/{slug}.html"\n')
    assert load_config(path).content.permalink == "posts/{year}/{month}/{day}/{slug}.html"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_text('[site]\ntitle = "T"\nurl = "https://e.org/\ntimezone = "UTC"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = _problems(caught.value)
    assert line.startswith(f"{path}:3: not valid TOML: "), line


def test_invalid_toml_on_the_last_line_names_that_line(tmp_path: Path) -> None:
    # tomllib reports an error at the very end as "(at end of document)",
    # without a line number; the error is still on line 3, not line 1.
    path = tmp_path / "publisher.toml"
    path.write_text('[site]\ntitle = "T"\nurl = [\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = _problems(caught.value)
    assert line.startswith(f"{path}:3: not valid TOML: "), line


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_bytes(b'[site]\ntitle = "Caf\xe9"\nurl = "https://e.org/"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: is not UTF-8 text"


def test_config_with_a_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_bytes(b'\xef\xbb\xbf[site]\ntitle = "T"\nurl = "https://e.org/"\n')
    assert load_config(path).site.title == "T"


def test_missing_file_says_to_run_init(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "publisher.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no such file")
    assert "publisher init" in message
    assert not path.parent.exists()
