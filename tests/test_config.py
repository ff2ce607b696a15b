"""load_config: publisher.toml read once into frozen, checked settings."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .conftest import write_config
from publisher.config import (
    DEFAULT_PERMALINK,
    Config,
    DkimSettings,
    FeedSource,
    JobSettings,
    ServeSettings,
    SmtpSettings,
    load_config,
)
from publisher.errors import ConfigError, PublisherError
from publisher.model import Author, DigestList
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


# --- every section's messages, exactly ----------------------------------------


def _lines(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    return caught.value.problems


def test_unknown_key_names_the_file_section_key_and_every_known_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[feeds]\nitmes = 5\n")
    assert str(pytest.raises(ConfigError, load_config, path).value) == (
        f"{path}: [feeds] itmes: unknown key (known: out, url, items, full_content, hub, stylesheet)"
    )


def test_problems_in_every_section_are_reported_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET", "short")  # checked only once the rest is right
    path = tmp_path / "publisher.toml"
    path.write_text(
        '[lists.Daily]\ntitle = "D"\n[lists.weekly]\ntitel = "W"\n'
        "[serve]\nport = 0\n[jobs]\nbuild = 5\n[state]\npath = \"\"\n"
        '[mail]\nsender = "a@b.org"\ntransport = "smtp"\n[mail.dkim]\nselector = "s"\n'
        "[feeds]\nitems = 0\n[content]\nfetch_timeout = 0\n[site]\nurl = \"e.org\"\n[extra]\n",
        encoding="utf-8",
    )
    mail_keys = (
        "from, reply_to, transport, outbox, secret_env, secret_file, secret_grace, welcome, unsubscribe_mailto, "
        "bounce_address, templates, attempts, backoff, backoff_max, processes"
    )
    list_keys = (
        "title, description, max_posts, full_content, max_bytes, subject, preheader, schedule, catch_up, max_late, "
        "mode, backfill, backdated, test_prefix"
    )
    assert _lines(path) == [
        "[extra]: unknown section (known: site, content, feeds, state, jobs, bounces, serve, pages, mail, lists)",
        "[site] title: required, but missing",
        "[site] url: must be an absolute http(s) URL (got 'e.org')",
        "[content] fetch_timeout: must be a number greater than 0 (got 0)",
        "[feeds] items: must be a whole number of at least 1 (got 0)",
        "[state] path: must not be empty",
        "[jobs] build: must be a string (got int 5)",
        "[serve] port: must be a port number from 1 to 65535 (got 0)",
        f"[mail] sender: unknown key (known: {mail_keys})",
        "[mail.dkim] domain: required, but missing",
        "[mail.dkim] key_file: required, but missing",
        '[mail] transport: "smtp" needs a [mail.smtp] table with at least host',
        "[lists.Daily]: a list name is lower-case letters, digits, - and _",
        f"[lists.weekly] titel: unknown key (known: {list_keys})",
        "[lists.weekly] title: required, but missing",
    ]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("[mail]\nsmtp = 5\n", "[mail.smtp]: must be a table"),
        ("[mail.smtp]\nsecurity = \"ssl\"\n", "[mail.smtp] security: must be one of none, starttls, tls (got 'ssl')"),
        ("[mail.smtp]\nrate = -1\n", "[mail.smtp] rate: must be messages per second, 0 for unlimited (got -1)"),
        ("[mail.smtp]\npassword_env = \"a b\"\n", "[mail.smtp] password_env: must be the name of an environment variable (got 'a b')"),
        ("[mail]\nfrom = \"nobody\"\n", "[mail] from: must be an address such as 'Site <news@example.org>' (got 'nobody')"),
        ("[lists.daily]\ntitle = \"D\"\nsubject = \"a\\nb\"\n", "[lists.daily] subject: must be on one line"),
        ("[lists.daily]\ntitle = \"D\"\nmax_late = \"\"\n", "[lists.daily] max_late: must not be empty"),
        ("[lists.daily]\n", "[lists.daily] title: required, but missing"),
        ("[[content.feeds]]\nurl = \"x\"\n", "[content] feeds: entry 1: must be an absolute http(s) URL (got 'x')"),
    ],
)
def test_mail_lists_and_feed_sources_problems(tmp_path: Path, extra: str, problem: str) -> None:
    assert _lines(write_config(tmp_path, extra)) == [problem]


def test_subtables_that_are_not_tables_are_read_as_empty(tmp_path: Path) -> None:
    assert _lines(write_config(tmp_path, "[mail]\ndkim = 5\n")) == [
        "[mail.dkim]: must be a table",
        "[mail.dkim] domain: required, but missing",
        "[mail.dkim] selector: required, but missing",
        "[mail.dkim] key_file: required, but missing",
    ]
    assert _lines(write_config(tmp_path, "[lists]\ndaily = 5\n")) == [
        "[lists.daily]: must be a table",
        "[lists.daily] title: required, but missing",
    ]


def test_lists_that_are_not_tables(tmp_path: Path) -> None:
    path = tmp_path / "publisher.toml"
    path.write_text('lists = 5\n[site]\ntitle = "T"\nurl = "https://e.org/"\n', encoding="utf-8")
    assert _lines(path) == ['[lists]: must hold tables such as [lists.daily] title = "Daily digest"']


def test_a_short_signing_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    path = write_config(tmp_path, '[mail]\nsecret_file = "./keys/secret"\n')
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "secret").write_bytes(b"tiny\n")
    assert _lines(path) == [
        "[mail] secret_env/secret_file: the signing secret ($PUBLISHER_SECRET or ./keys/secret) "
        "is shorter than 16 bytes; use 32 random bytes or more"
    ]


# --- defaults, and the settings that follow from others ----------------------


def test_every_default(blank_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUBLISHER_SECRET", "PUBLISHER_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(blank_site / "publisher.toml")
    root = blank_site.resolve()
    assert config.path == blank_site / "publisher.toml"
    assert config.content.feeds == ()
    assert config.content.fetch_timeout == 20.0 and isinstance(config.content.fetch_timeout, float)
    assert config.content.fetch_max_bytes == 20_000_000
    assert (config.feeds.hub, config.feeds.stylesheet, config.feeds.full_content) == (None, False, True)
    mail = config.mail
    assert (mail.sender, mail.sender_address) == ("Test Site <editor@example.org>", "editor@example.org")
    assert (mail.reply_to, mail.unsubscribe_mailto, mail.transport, mail.dkim) == (None, None, "outbox", None)
    assert (mail.outbox, mail.templates) == (root / "outbox", root / "templates")
    assert (mail.secret_env, mail.secret_file, mail.secret) == ("PUBLISHER_SECRET", root / ".publisher" / "secret", None)
    assert (mail.attempts, mail.backoff, mail.backoff_max) == (4, 1.0, 60.0)
    assert mail.smtp == SmtpSettings(
        host="127.0.0.1", port=587, security="starttls", username=None, password=None,
        password_env="PUBLISHER_SMTP_PASSWORD", connections=4, rate=0.0, timeout=30.0,
        verify_certificates=True, messages_per_connection=100,
    )
    assert isinstance(mail.smtp.rate, float)
    assert config.jobs == JobSettings(build=None, bounces=None)
    assert (config.mail.bounce_address, config.bounces.maildir, config.bounces.imap) == (None, None, None)
    assert (config.bounces.soft_threshold, config.bounces.soft_window, config.bounces.processed) == (3, "7 days", "processed")
    assert config.serve == ServeSettings(
        host="127.0.0.1", port=8080, subscribe_per_address=3, subscribe_per_ip=20, trusted_proxies=("127.0.0.1", "::1"),
        connection_limit=1000, read_timeout=10, request_timeout=30, ipv6_prefix=64, mail_queue=1000,
        confirm_expiry="2 days", store_wait=2.0,
    )
    assert (mail.previous_secrets, mail.secret_grace, mail.welcome) == ((), "180 days", True)
    assert config.lists == {}


def test_a_list_takes_the_digest_defaults_and_lists_are_sorted(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[lists.weekly]\ntitle = "W"\nmax_posts = 5\n[lists.daily]\ntitle = " D "\n')
    lists = load_config(path).lists
    assert list(lists) == ["daily", "weekly"]
    assert lists["daily"] == DigestList(name="daily", title="D")
    assert lists["weekly"] == DigestList(name="weekly", title="W", max_posts=5)


def test_derived_and_relative_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PW", "hunter2")
    monkeypatch.setenv("SITE_SECRET", "s" * 32)
    path = tmp_path / "publisher.toml"
    path.write_text(
        '[site]\ntitle = "Solo"\nurl = "https://solo.example/blog"\n'
        '[feeds]\nout = "public/f"\n'
        '[[content.feeds]]\npath = "old/feed.xml"\n[[content.feeds]]\nurl = "https://o.example/f"\n'
        '[mail]\nsecret_env = "SITE_SECRET"\ntransport = "smtp"\n'
        '[mail.smtp]\nhost = "relay"\npassword_env = "SMTP_PW"\nrate = 2\n'
        '[mail.dkim]\ndomain = "solo.example"\nselector = "s1"\nkey_file = "keys/dkim.pem"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    root = tmp_path.resolve()
    assert config.feeds.out == root / "public" / "f"
    assert config.feeds.url == "https://solo.example/blog/f/"
    assert config.content.feeds == (
        FeedSource("old/feed.xml", None, root / "old" / "feed.xml"),
        FeedSource("https://o.example/f", "https://o.example/f", None),
    )
    assert config.mail.sender == "Solo <news@solo.example>"
    assert config.mail.secret == b"s" * 32
    assert (config.mail.smtp.host, config.mail.smtp.password, config.mail.smtp.rate) == ("relay", "hunter2", 2.0)
    assert config.mail.dkim == DkimSettings("solo.example", "s1", root / "keys" / "dkim.pem")


# --- the README's configuration reference -------------------------------------


def _reference_text() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return readme.split("## Configuration reference", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]


def _reference() -> dict:
    return tomllib.loads(_reference_text())


def _known(path: Path, section: str) -> list[str]:
    """The keys ``[section]`` knows, as its unknown-key problem lists them."""
    lines = [line for line in _lines(path) if line.startswith(f"[{section}] zzz: unknown key (known: ")]
    assert len(lines) == 1, _lines(path)
    return lines[0].split("(known: ", 1)[1].rstrip(")").split(", ")


def test_the_readme_reference_lists_every_setting(tmp_path: Path) -> None:
    reference = _reference()
    path = tmp_path / "publisher.toml"
    path.write_text("[zzz]\n", encoding="utf-8")
    (line,) = [line for line in _lines(path) if line.startswith("[zzz]")]
    assert line.split("(known: ", 1)[1].rstrip(")").split(", ") == [
        "site", "content", "feeds", "state", "jobs", "bounces", "serve", "pages", "mail", "lists"
    ]
    assert set(reference) == {"site", "content", "feeds", "state", "jobs", "bounces", "serve", "pages", "mail", "lists"}
    tables = {
        "site": reference["site"], "content": reference["content"], "feeds": reference["feeds"],
        "state": reference["state"], "jobs": reference["jobs"], "serve": reference["serve"],
        "pages": reference["pages"],
        "mail": {k: v for k, v in reference["mail"].items() if k not in ("smtp", "dkim")},
        "mail.smtp": reference["mail"]["smtp"], "mail.dkim": reference["mail"]["dkim"],
        "lists.daily": reference["lists"]["daily"],
        "bounces": {k: v for k, v in reference["bounces"].items() if k != "imap"},
        "bounces.imap": reference["bounces"]["imap"],
    }
    for section, table in tables.items():
        path.write_text(f"[{section}]\nzzz = 1\n", encoding="utf-8")
        assert set(_known(path, section)) == set(table), section


def test_the_readme_reference_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    path = tmp_path / "publisher.toml"
    path.write_text(_reference_text(), encoding="utf-8")
    config = load_config(path)
    assert config.mail.smtp.port == 587
    assert config.mail.dkim is not None and config.mail.dkim.key_file == tmp_path.resolve() / "dkim.pem"
    assert config.lists["daily"].schedule == "daily at 07:00"
    assert config.jobs.build == "every 10 minutes"
