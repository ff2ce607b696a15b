"""The digest renderer, on the seed post and generated posts, with the real templates."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import lxml.html
import pytest

from publisher.mail import render
from publisher.errors import PublisherError
from publisher.model import RenderedIssue
from publisher.mail.render import TemplateError, personalize, render_issue, split_css

from .conftest import DATA
from .helpers.issues import NASTY_NAME, SITE, generated_post, long_posts, recipient, sample_issue

EMAIL = DATA / "email"
URL_IN_TEXT = re.compile(r"https?://\S+")
REF = re.compile(r"\[(\d+)\]")


def flat(text: str) -> str:
    """A text part's words on one line, without the "> " of quotes."""
    return " ".join(re.sub(r"(?m)^>( |$)", "", text).split())


def parse(html: str):
    return lxml.html.document_fromstring(html.encode("utf-8"))


def hrefs(html: str) -> list[str]:
    return [a.get("href") for a in parse(html).iter("a")]


def text_links(text: str) -> dict[int, str]:
    """The numbered list after "Links:" in a text part."""
    head, _, listing = text.rpartition("\nLinks:\n")
    assert head, "no Links: section"
    links = {}
    for line in listing.strip("\n").split("\n"):
        number, url = re.fullmatch(r"\[(\d+)\] (\S+)", line).groups()
        links[int(number)] = url
    return links


@pytest.fixture(params=[False, True], ids=["summaries", "full"])
def rendered(request) -> RenderedIssue:
    return render_issue(sample_issue(full_content=request.param), SITE)


@pytest.fixture
def parts(rendered: RenderedIssue) -> tuple[str, str]:
    return personalize(rendered, recipient())


# -- the HTML part ---------------------------------------------------------------


def test_html_is_an_email_layout(rendered: RenderedIssue) -> None:
    doc = parse(rendered.html)
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert doc.get("lang") == "en" and doc.get("dir") == "ltr"
    assert doc.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    tables = doc.xpath("//table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    container = doc.xpath("//table[contains(@class, 'container')]")[0]
    assert "max-width:600px" in container.get("style").replace(" ", "")
    # Outlook for Windows ignores max-width: a fixed 600 px table in an MSO comment.
    mso = [c.text for c in doc.iter(lxml.etree.Comment) if c.text.startswith("[if mso]")]
    assert any('width="600"' in text for text in mso)


def test_css_is_inlined_and_media_queries_stay_in_a_style_block(rendered: RenderedIssue) -> None:
    doc = parse(rendered.html)
    post_cell = doc.xpath("//td[contains(@class, 'post')]")[0]
    assert "padding:24px 24px 8px 24px" in post_cell.get("style")
    title_link = doc.xpath("//h2[contains(@class, 'post-title')]/a")[0]
    assert "color:#1f2328" in title_link.get("style")
    styles = "\n".join(s.text for s in doc.iter("style"))
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media screen and (max-width: 620px)" in styles
    # Dark-mode rules beat the inlined styles only with !important, kept as written.
    assert "background-color: #0d1117 !important" in styles
    assert not doc.xpath("//style[@data-premailer]"), "premailer's marker is removed"


def test_preheader_is_hidden_and_padded(rendered: RenderedIssue) -> None:
    doc = parse(rendered.html)
    div = doc.xpath("//body/div[contains(@class, 'preheader')]")[0]
    assert "display:none" in div.get("style")
    text = div.text_content()
    assert text.startswith(rendered.preheader)
    assert text[len(rendered.preheader):].count("\u200c\u00a0") >= 40
    # First thing in the body, so that inboxes show it as the preview.
    assert doc.body[0] is div


def test_no_apos_and_no_auto_widths(rendered: RenderedIssue) -> None:
    assert "O'Brien" in rendered.subject + rendered.preheader  # there is an apostrophe to escape
    html, _ = personalize(rendered, recipient())
    assert "&apos;" not in html
    assert "O&#39;Brien" in html  # the recipient's name, from personalize
    assert not re.search(r'(?:width|height)\s*=\s*["\']?auto', html, re.I)
    images = parse(html).xpath("//img")
    assert images
    for img in images:
        assert re.fullmatch(r"\d+", img.get("width")), img.get("width")
        assert img.get("alt")


def test_every_href_is_absolute_after_personalize(parts: tuple[str, str]) -> None:
    html, _ = parts
    links = hrefs(html)
    assert len(links) >= 8
    for href in links:
        assert re.match(r"https?://[^/\s]+", href), href
    assert "https://example.org/unsubscribe?t=a'b&list=daily" in links


def test_rtl_language_sets_dir() -> None:
    site = dataclasses.replace(SITE, language="ar")
    doc = parse(render_issue(sample_issue(), site).html)
    assert doc.get("lang") == "ar" and doc.get("dir") == "rtl"


# -- dates in the site's language ----------------------------------------------------

# Created on 3 May 2024 at 09:00 in New York; the seed post is dated 4 June 2014 there.
MAY_ISSUE_CREATED = datetime(2024, 5, 3, 13, 0, tzinfo=timezone.utc)


def dated_parts(language: str) -> tuple[str, str]:
    issue = dataclasses.replace(sample_issue(), created=MAY_ISSUE_CREATED)
    return personalize(render_issue(issue, dataclasses.replace(SITE, language=language)), recipient())


def issue_line(html: str) -> str:
    return parse(html).xpath("//p[contains(@class, 'issue-line')]")[0].text_content()


@pytest.mark.parametrize(
    ("language", "issue_day", "post_day"),
    [
        ("fr", "3 mai 2024", "4 juin 2014"),
        ("de", "3. Mai 2024", "4. Juni 2014"),
        ("pt-BR", "3 de maio de 2024", "4 de junho de 2014"),
        ("ru", "3 мая 2024 г.", "4 июня 2014 г."),
    ],
)
def test_dates_are_in_the_site_language_in_both_parts(language: str, issue_day: str, post_day: str) -> None:
    html, text = dated_parts(language)
    # flat(): CLDR puts a narrow no-break space in some dates ("2024\u202fг.").
    assert issue_day in flat(issue_line(html))
    meta = parse(html).xpath("//p[contains(@class, 'post-meta')]")[0].text_content()
    assert post_day in flat(meta)  # still the site's time zone: 03:30 UTC on the 5th is the 4th
    assert f"Daily digest · No. 3 · {issue_day}" in flat(text)
    assert f"{post_day} · Paul Woodward" in flat(text)
    for english in ("May", "June"):
        assert english not in issue_line(html) and english not in meta


def test_linked_posts_dates_are_in_the_site_language() -> None:
    issue = dataclasses.replace(sample_issue(max_bytes=1), created=MAY_ISSUE_CREATED)
    rendered = render_issue(issue, dataclasses.replace(SITE, language="fr"))
    assert rendered.linked_posts == 3
    linked = [span.text_content() for span in parse(rendered.html).xpath("//span[@class='linked-date']")]
    assert linked and all("juin 2014" in date for date in linked), linked
    assert "· 4 juin 2014" in flat(rendered.text)


@pytest.mark.parametrize("language", ["en", "en-US", "en-GB"])
def test_english_dates_keep_day_month_year(language: str) -> None:
    html, text = dated_parts(language)
    assert "Daily digest · No. 3 · 3 May 2024" in issue_line(html)
    assert "4 June 2014 · Paul Woodward · 1 comment" in text


def test_a_language_without_dates_falls_back_to_english(caplog: pytest.LogCaptureFixture) -> None:
    # The config rejects such a tag; a SiteInfo made another way still renders.
    # (qaa: a private-use tag no other test uses, as the warning comes once per tag.)
    with caplog.at_level(logging.WARNING, logger="publisher.dates"):
        html, text = dated_parts("qaa")
    assert "3 May 2024" in issue_line(html)
    assert "4 June 2014 · Paul Woodward · 1 comment" in text
    assert "language 'qaa': unknown locale 'qaa'; dates are shown in English" in caplog.text


# -- the text part -----------------------------------------------------------------


def test_text_wraps_at_72_columns_except_urls(rendered: RenderedIssue) -> None:
    _, text = personalize(rendered, recipient(email="s@example.com"))
    long_lines = [line for line in text.split("\n") if len(line) > 72]
    for line in long_lines:
        assert URL_IN_TEXT.search(line), line
    # The seed's long paragraphs really were wrapped, and quoted with "> ".
    assert sum(line.startswith("> ") for line in text.split("\n")) >= 4


def test_long_urls_are_never_broken() -> None:
    url = "https://news.example.com/" + "very-long-path-segment-" * 6 + "end"
    post = dataclasses.replace(generated_post(7), content_html=f'<p>Read <a href="{url}">this</a> now.</p>')
    rendered = render_issue(sample_issue(full_content=True, posts=(post,)), SITE)
    assert url in text_links(rendered.text).values()


def test_links_are_numbered_and_listed(parts: tuple[str, str]) -> None:
    _, text = parts
    links = text_links(text)
    assert sorted(links) == list(range(1, len(links) + 1))
    body = text.rpartition("\nLinks:\n")[0]
    used = {int(n) for n in REF.findall(body)}
    assert used == set(links)
    assert not URL_IN_TEXT.search(body.replace("soren@example.com", "")), "URLs only in the list"


def test_both_parts_carry_the_same_posts_and_links(parts: tuple[str, str]) -> None:
    html, text = parts
    doc = parse(html)
    titles = [a.text_content() for a in doc.xpath("//h2[contains(@class, 'post-title')]/a")]
    assert titles == [p.title for p in sample_issue().posts]
    for title in titles:
        assert " ".join(title.split()) in flat(text)
    assert set(hrefs(html)) == set(text_links(text).values())


def test_excerpt_sources_in_both_parts(parts: tuple[str, str]) -> None:
    html, text = parts
    cites = [c.text_content() for c in parse(html).iter("cite")]
    assert cites == ["Sheera Frenkel", "BBC News"]
    assert "Sheera Frenkel reports:" in text
    assert "BBC News reports:" in text
    blockquotes = parse(html).xpath("//blockquote[contains(@class, 'excerpt')]")
    assert "United States officials" in blockquotes[0].text_content()


def test_full_content_renders_every_excerpt_paragraph_summaries_the_first() -> None:
    last = "watched “very closely”"
    full = render_issue(sample_issue(full_content=True), SITE)
    summary = render_issue(sample_issue(full_content=False), SITE)
    assert last in full.html and last in flat(full.text)
    assert last not in summary.html and last not in flat(summary.text)
    # Generated posts (no blocks): content_html in full, the summary otherwise.
    assert "marker body1x" in full.html and "marker body1x" in full.text
    assert "marker summary1x" in summary.html and "marker summary1x" in summary.text
    assert "marker body1x" not in summary.html


def test_post_meta_date_in_site_time_zone_author_and_comments(parts: tuple[str, str]) -> None:
    html, text = parts
    meta = parse(html).xpath("//p[contains(@class, 'post-meta')]")[0].text_content()
    assert "4 June 2014" in meta  # 03:30 UTC on the 5th is the 4th in New York
    assert "Paul Woodward" in meta  # the site's author: the seed names none
    assert "1 comment" in meta
    assert "4 June 2014 · Paul Woodward · 1 comment" in text


# -- personalisation -------------------------------------------------------------------


def test_personalize_escapes_for_html_and_keeps_text_raw(parts: tuple[str, str]) -> None:
    html, text = parts
    doc = parse(html)
    assert not doc.xpath("//script")
    names = [span.text_content() for span in doc.xpath("//span[contains(@class, 'recipient-name')]")]
    assert names == [NASTY_NAME]
    assert NASTY_NAME not in html
    assert f"Hello {NASTY_NAME}," in text
    assert "%%PUB:" not in html and "%%PUB:" not in text


def test_escape_html_writes_the_entities_it_always_has() -> None:
    # &quot; and &#39; (never &#34; or &apos;): the bytes of an HTML part
    # do not change with the library that escapes.
    assert render.escape_html("""Ann "Doc" O'Brien <a@b> & co""") == (
        "Ann &quot;Doc&quot; O&#39;Brien &lt;a@b&gt; &amp; co"
    )
    assert render.escape_html("&#34; &quot;") == "&amp;#34; &amp;quot;"
    assert type(render.escape_html("plain")) is str


def test_placeholders_survive_escaping_and_inlining(rendered: RenderedIssue) -> None:
    for field in ("email", "unsubscribe_url", "preferences_url", "view_url"):
        assert f"%%PUB:{field}%%" in rendered.html
        assert f"%%PUB:{field}%%" in rendered.text


def test_empty_name_takes_the_templates_fallback(rendered: RenderedIssue) -> None:
    html, text = personalize(rendered, recipient(name=""))
    assert "Hello there," in text
    span = parse(html).xpath("//span[contains(@class, 'recipient-name')]")[0]
    assert span.text_content() == "there"


def test_premailer_runs_once_per_issue_not_per_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class CountingPremailer(render.Premailer):
        def transform(self, *args, **kwargs):
            calls.append(1)
            return super().transform(*args, **kwargs)

    monkeypatch.setattr(render, "Premailer", CountingPremailer)
    rendered = render_issue(sample_issue(), SITE)
    assert len(calls) == 1
    seen = set()
    for n in range(1000):
        html, text = personalize(rendered, recipient(name=f"Reader {n}", email=f"r{n}@example.com"))
        seen.add(html)
        assert f"r{n}@example.com" in text
    assert len(calls) == 1
    assert len(seen) == 1000


# -- templates ---------------------------------------------------------------------------


def test_a_typo_names_the_template_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_issue(sample_issue(), SITE, templates=EMAIL / "typo")
    assert isinstance(caught.value, PublisherError)
    assert str(caught.value).startswith(f"{EMAIL / 'typo'}/digest.html:4: ")
    assert "titel" in str(caught.value)


def test_an_undefined_name_in_a_partial_names_the_partial() -> None:
    with pytest.raises(TemplateError) as caught:
        render_issue(sample_issue(), SITE, templates=EMAIL / "undefined_name")
    assert str(caught.value) == f"{EMAIL / 'undefined_name'}/_post.html:4: 'summry' is undefined"


def test_a_syntax_error_names_the_template_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_issue(sample_issue(), SITE, templates=EMAIL / "syntax")
    assert caught.value.template == f"{EMAIL / 'syntax'}/digest.txt"
    assert caught.value.line == 5


def test_a_subject_typo_names_the_list_key() -> None:
    issue = sample_issue(subject="{{ site.titel }}")
    with pytest.raises(TemplateError, match=r"^\[lists\.daily\] subject:1: .*titel"):
        render_issue(issue, SITE)


def test_personal_fields_cannot_go_in_the_subject() -> None:
    with pytest.raises(TemplateError, match="subject.*same for every recipient"):
        render_issue(sample_issue(subject="Hi {{ personal('name') }}"), SITE)


def test_an_unknown_personal_field_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "_post.html").write_text('<tr><td>{{ personal("nickname") }}</td></tr>\n', encoding="utf-8")
    with pytest.raises(TemplateError, match=r"_post\.html:1: personal\('nickname'\): no such field"):
        render_issue(sample_issue(), SITE, templates=tmp_path)


def test_a_site_override_of_a_partial_is_used() -> None:
    rendered = render_issue(sample_issue(), SITE, templates=EMAIL / "override")
    doc = parse(rendered.html)
    kickers = doc.xpath("//p[contains(@class, 'site-card-kicker')]")
    assert len(kickers) == 3
    assert not doc.xpath("//p[contains(@class, 'read-more')]")  # the default partial's
    assert doc.xpath("//td[contains(@class, 'footer')]")  # base.html still the default


def test_a_missing_site_folder_falls_back_to_the_defaults(tmp_path: Path) -> None:
    rendered = render_issue(sample_issue(), SITE, templates=tmp_path / "absent")
    assert "Read more" in rendered.html


def test_subject_and_preheader_are_one_line() -> None:
    post = dataclasses.replace(generated_post(1), title="Broken\r\nBcc: victim@example.com\ttitle")
    rendered = render_issue(sample_issue(posts=(post, generated_post(2))), SITE)
    assert rendered.subject == "War in Context: Broken Bcc: victim@example.com title and 1 more"
    assert "\n" not in rendered.preheader and "\r" not in rendered.preheader
    assert rendered.preheader.startswith("Broken Bcc: victim@example.com title · Generated post 2")


# -- stylesheets -------------------------------------------------------------------------


def test_nested_media_dark_mode_stylesheet_does_not_crash_premailer() -> None:
    rendered = render_issue(sample_issue(), SITE, templates=EMAIL / "dark")
    doc = parse(rendered.html)
    styles = [s.text for s in doc.iter("style")]
    kept = [s for s in styles if "@media (prefers-color-scheme: dark)" in s]
    assert len(kept) == 1
    # Kept as written: premailer neither parsed nor reformatted it.
    assert "@media (max-width: 600px) {\n    .post { padding: 12px !important;" in kept[0]
    assert "@supports" in kept[0]
    # The plain rules of that stylesheet were inlined.
    cell = doc.xpath("//td[contains(@class, 'post')]")[0]
    assert "padding:20px" in cell.get("style")
    assert "font-family:Georgia, serif" in cell.get("style")


def test_split_css_separates_at_rules_however_nested() -> None:
    css = (
        "/* a { color: red } */ a { color: blue; }\n"
        "@import url('x.css');\n"
        "@media (prefers-color-scheme: dark) { @media (max-width: 600px) { a { color: '}' } } }\n"
        'p::before { content: "{"; }\n'
    )
    inlined, kept = split_css(css)
    assert inlined == 'a { color: blue; }\np::before { content: "{"; }'
    assert kept == (
        "@import url('x.css');\n"
        "@media (prefers-color-scheme: dark) { @media (max-width: 600px) { a { color: '}' } } }"
    )


def test_split_css_keeps_each_rule_as_written() -> None:
    # Quotes, escapes, numbers and line breaks as in the file; a comment
    # inside a rule is one space, one between rules is dropped.
    css = (
        "td { font-family: 'Segoe UI', \\31 0px; font: 1.5em/1.2 serif }\r\n/* between */\r\n"
        "a/* inside */{ color: #0b5cad !important; }\r\n"
        "@media screen {\r\n  .b { content: '\\'' }\r\n}\r\n"
        "/* not closed"
    )
    inlined, kept = split_css(css)
    assert inlined == "td { font-family: 'Segoe UI', \\31 0px; font: 1.5em/1.2 serif }\na { color: #0b5cad !important; }"
    assert kept == "@media screen {\r\n  .b { content: '\\'' }\r\n}"


# -- the size cap ----------------------------------------------------------------------------


def test_an_issue_that_fits_has_every_post_in_full() -> None:
    rendered = render_issue(sample_issue(full_content=True), SITE)
    assert (rendered.full_posts, rendered.linked_posts) == (3, 0)
    assert "Read the rest online" not in rendered.html
    assert "Read the rest online" not in rendered.text


def test_size_cap_links_the_later_posts() -> None:
    max_bytes = 60_000
    issue = sample_issue(full_content=True, posts=long_posts(60), max_bytes=max_bytes)
    rendered = render_issue(issue, SITE)
    assert rendered.full_posts + rendered.linked_posts == 60
    assert 0 < rendered.full_posts < 60
    assert len(rendered.html.encode("utf-8")) <= max_bytes
    doc = parse(rendered.html)
    rest = [a for a in doc.iter("a") if a.text_content() == "Read the rest online"]
    assert [a.get("href") for a in rest] == ["https://example.org/issues/daily/3/"]
    # Every post is still there, as a title and link.
    full = doc.xpath("//h2[contains(@class, 'post-title')]/a/@href")
    linked = doc.xpath("//p[contains(@class, 'linked-post')]/a/@href")
    assert full + linked == [p.url for p in issue.posts]
    assert len(linked) == rendered.linked_posts
    # The text part carries the same split.
    last_full, first_linked = rendered.full_posts, rendered.full_posts + 1
    for part in (rendered.html, rendered.text):
        assert f"marker body{last_full}x" in part
        assert f"marker body{first_linked}x" not in part
    assert "Read the rest online: [" in rendered.text
    assert "https://example.org/issues/daily/3/" in text_links(rendered.text).values()


def test_size_cap_takes_the_most_posts_that_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs: list[str] = []

    class RecordingPremailer(render.Premailer):
        def transform(self, *args, **kwargs):
            outputs.append(super().transform(*args, **kwargs))
            return outputs[-1]

    monkeypatch.setattr(render, "Premailer", RecordingPremailer)
    max_bytes = 40_000
    rendered = render_issue(sample_issue(full_content=True, posts=long_posts(20), max_bytes=max_bytes), SITE)
    n = rendered.full_posts
    assert 0 < n < 20
    # The search tried one more post in full, and that did not fit.
    one_more = [html for html in outputs if f"marker body{n + 1}x" in html]
    assert one_more and all(len(html.encode()) > max_bytes for html in one_more)
    # A binary search, not one render per post count.
    assert len(outputs) <= 1 + 5


def test_size_cap_when_even_links_do_not_fit() -> None:
    rendered = render_issue(sample_issue(full_content=True, posts=long_posts(5), max_bytes=1_000), SITE)
    assert (rendered.full_posts, rendered.linked_posts) == (0, 5)
    assert "Read the rest online" in rendered.html
