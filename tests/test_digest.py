"""Choosing a digest's posts: what a list has not had yet, newest first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from publisher.config import load_config
from publisher.mail.digest import next_issue, next_issues
from publisher.state.store import StateStore

from .conftest import NOW, build, write_config

LISTS = '[lists.daily]\ntitle = "Daily"\nmax_posts = 2\n\n[lists.weekly]\ntitle = "Weekly"\n'


def _site(site_dir: Path, days: range):
    write_config(site_dir, extra=LISTS)
    for day in days:
        (site_dir / "posts" / f"p{day}.txt").write_text(
            f"+++\ndate = 2024-01-{day:02d}T10:00:00Z\n+++\nPost {day}\n\nx\n", encoding="utf-8"
        )
    report = build(site_dir)
    config = load_config(site_dir / "publisher.toml")
    return config, report.site, StateStore.open(config.state.path)


def test_a_new_list_holds_nothing_old_unless_backfilled(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 6))  # the build records the lists as created at NOW
    daily = config.lists["daily"]
    assert next_issue(site, daily, store, now=NOW + timedelta(hours=1)) is None
    (issue,) = next_issues(site, daily, store, now=NOW, backfill=3)
    # Three posts in the issue; the renderer shows max_posts (2) of them in full.
    assert [p.title for p in issue.posts] == ["Post 5", "Post 4", "Post 3"]
    assert issue.number == 1
    assert issue.web_url == "https://example.org/issues/daily/1/"


def test_backfill_is_for_the_first_issue_and_each_list_on_its_own(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 6))
    daily, weekly = config.lists["daily"], config.lists["weekly"]
    (first,) = next_issues(site, daily, store, now=NOW, backfill=2)
    with store.transaction():
        store.issues.create("daily", first.number, NOW, "subject", [p.id for p in first.posts])
    # The archive is not mailed in instalments: once a list has an issue, backfill means nothing.
    assert next_issues(site, daily, store, now=NOW + timedelta(days=1), backfill=2) == []
    # The weekly list never had them: its own first issue may backfill.
    (weekly_first,) = next_issues(site, weekly, store, now=NOW, backfill=5)
    assert [p.title for p in weekly_first.posts] == ["Post 5", "Post 4", "Post 3", "Post 2", "Post 1"]


def test_nothing_new_means_no_issue_unless_forced(blank_site: Path) -> None:
    config, site, store = _site(blank_site, range(1, 3))
    daily = config.lists["daily"]
    assert next_issue(site, daily, store, now=NOW) is None
    preview = next_issue(site, daily, store, now=NOW, force=True)
    assert [p.title for p in preview.posts] == ["Post 2", "Post 1"]


# -- `publisher digest`: the rendered issue as files ---------------------------

import email
import email.policy
import re

from click.testing import CliRunner
from lxml import html as lxml_html

from publisher.app.cli import main


def _digest(site: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "digest", *args])


def _urls(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s<>\"]+", text))


def test_digest_files_of_the_sample_site(sample_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _digest(sample_site, "--out", str(out))
    assert result.exit_code == 0, result.output
    html_file, text_file, eml_file = (out / f"daily-1{s}" for s in (".html", ".txt", ".eml"))
    assert all(f.is_file() for f in (html_file, text_file, eml_file))
    data = eml_file.read_bytes()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"\n" not in data.replace(b"\r\n", b"")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.defects == [] and all(part.defects == [] for part in msg.walk())
    assert msg["From"] == "War in Context <news@example.org>"
    assert msg["To"] == "Editor <editor@example.org>"
    assert msg["Subject"].startswith("War in Context: The U.S. has been speaking to Hamas")
    assert msg["List-Id"] == "Daily digest <daily.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<https://example\.org/unsubscribe/v1\.[\w-]+\.[\w-]+\.[\w-]+>", msg["List-Unsubscribe"])
    assert msg["Message-ID"].endswith("@example.org>") and msg["Date"] and msg["MIME-Version"] == "1.0"
    text_part, html_part = msg.get_payload()
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    text, html = text_part.get_content(), html_part.get_content()
    assert text.replace("\r\n", "\n") == text_file.read_text(encoding="utf-8").replace("\r\n", "\n")
    doc = lxml_html.fromstring(html)
    hrefs = {a.get("href") for a in doc.iter("a")}
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    # Both parts carry the same post and the same links.
    assert _urls(text) == hrefs
    for words in ("The U.S. has been speaking to Hamas", "Sheera Frenkel", "BBC News"):
        assert words in text and words in doc.text_content()


def test_digest_without_new_posts_writes_nothing(sample_site: Path, tmp_path: Path) -> None:
    from publisher.config import load_config

    build(sample_site)
    config = load_config(sample_site / "publisher.toml")
    store = StateStore.open(config.state.path)
    report = build(sample_site)
    with store.transaction():
        store.issues.create("daily", 1, NOW, "s", [p.id for p in report.site.posts])
    store.close()
    out = tmp_path / "out"
    result = _digest(sample_site, "--out", str(out))
    assert result.exit_code == 0
    assert "nothing to render" in result.output
    assert not out.exists()
    forced = _digest(sample_site, "--out", str(out), "--force")
    assert forced.exit_code == 0 and (out / "daily-2.eml").is_file()


def test_template_typo_is_a_clear_error_in_check_and_digest(sample_site: Path) -> None:
    email_templates = sample_site / "templates" / "email"
    email_templates.mkdir(parents=True)
    (email_templates / "_post.html").write_text("<p>{{ post.titel }}</p>\n", encoding="utf-8")
    runner = CliRunner()
    for command in (["check"], ["digest", "--out", str(sample_site / "o")]):
        result = runner.invoke(main, ["--config", str(sample_site / "publisher.toml"), *command])
        assert result.exit_code == 2, result.output
        assert "_post.html:1" in result.stderr and "titel" in result.stderr
        assert "Traceback" not in result.output


def test_digest_is_dkim_signed_when_configured(sample_site: Path, tmp_path: Path) -> None:
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (sample_site / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    config = sample_site / "publisher.toml"
    config.write_text(
        config.read_text().replace(
            "[lists.daily]",
            '[mail.dkim]\ndomain = "example.org"\nselector = "news"\nkey_file = "dkim.pem"\n\n[lists.daily]',
        )
    )
    result = _digest(sample_site, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = (tmp_path / "daily-1.eml").read_bytes()
    assert data.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"Sheera", b"Sheerx"), dnsfunc=dns)


def test_secret_from_the_environment_wins(sample_site: Path, monkeypatch) -> None:
    from publisher.config import load_config
    from publisher.mail.tokens import verify_token

    monkeypatch.setenv("PUBLISHER_SECRET", "an-environment-secret-of-enough-length")
    result = _digest(sample_site, "--out", str(sample_site / "o"))
    assert result.exit_code == 0
    assert not (sample_site / ".publisher" / "secret").exists()
    msg = email.message_from_bytes((sample_site / "o" / "daily-1.eml").read_bytes(), policy=email.policy.default)
    token = msg["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    claims = verify_token(b"an-environment-secret-of-enough-length", token)
    assert (claims.subscriber, claims.list_name) == ("editor@example.org", "daily")
    assert load_config(sample_site / "publisher.toml").mail.secret == b"an-environment-secret-of-enough-length"
