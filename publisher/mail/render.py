"""The digest renderer: an ``Issue`` becomes a ``RenderedIssue`` once, and
``personalize`` fills it in for each recipient.

Jinja2 and premailer live here and nowhere else. An issue is rendered by
Jinja2 and its CSS inlined by premailer once per issue (a few times more only
when the size cap has to choose how many posts fit); what differs between
recipients (the fields of ``Personal``) goes in as ASCII placeholders such as
``%%PUB:unsubscribe_url%%`` that survive escaping and inlining, and
``personalize`` swaps them for each recipient's values by joining
precomputed pieces: no template, no CSS parser, no HTML parser per recipient.

    rendered = render_issue(issue, site, templates=Path("templates/email"))
    html, text = personalize(rendered, Personal(email=..., name=..., ...))

Templates come from the site's folder first, then ``templates/email/`` of the
project (``digest.html``, ``digest.txt``, ``base.html``, ``_post.html``,
``_post.txt``, ``style.css``). Autoescaping is on for HTML and every undefined
name or attribute is an error: a typo raises ``TemplateError`` naming the
template and line instead of sending a silently empty email.

``style.css`` is split (by tinycss2) before premailer sees it: plain rules
are inlined into ``style`` attributes (and kept in ``<head>``); every @-rule
(``@media``, dark mode) goes into a ``<style data-premailer="ignore">``
block, which premailer leaves untouched: it cannot crash on nested
``@media`` (premailer issue 290) nor strip the ``!important`` dark-mode
overrides need. The text part's wrapping and HTML-to-text are in
``plaintext``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import tinycss2
from markupsafe import Markup
from premailer import Premailer

from publisher.dates import format_day
from publisher.errors import PublisherError
from publisher.mail.plaintext import html_text, tidy_text, wrap
from publisher.model import DigestList, Excerpt, Issue, Personal, RenderedIssue, SiteInfo
from publisher.resources import compiled_templates, default_templates
from publisher.text import one_line

log = logging.getLogger("publisher.render")

#: The names ``personal()`` accepts in a template: the fields of ``Personal``.
PERSONAL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Personal))

# A placeholder: the field's name, then the UTF-8 hex of a fallback used when
# the recipient's value is empty ("Hello %%PUB:name:7468657265%%" → "there").
# Only ASCII letters, digits, "%", ":" and "_": autoescaping, premailer and
# lxml's URL-attribute escaping all leave it as it is.
_TOKEN = re.compile(r"%%PUB:(" + "|".join(PERSONAL_FIELDS) + r")(?::([0-9a-f]+))?%%")

# Scripts written right to left (primary language subtags).
_RTL_LANGUAGES = frozenset(
    "ar arc ckb dv fa ha he iw khw ks ku ps sd ug ur yi".split()
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AUTO_SIZE = re.compile(r'\s(?:width|height)\s*=\s*"auto"', re.I)
_SIZED_TAG = re.compile(r"<(?:img|table|td)\b[^>]*>", re.I)

# Errors a template's own expressions can raise (``{{ posts|length - "a" }}``);
# raised from our code instead, they are bugs and pass through.
_EXPRESSION_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)


class TemplateError(PublisherError):
    """A digest template cannot be rendered: ``template:line: reason``.

    ``template`` is the file as the user knows it (``templates/email/digest.html``
    or the site's own file), or the config key of a string template
    (``[lists.daily] subject``).
    """

    def __init__(self, template: str, line: int | None, reason: str):
        self.template = template
        self.line = line
        self.reason = reason
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {reason}")


# -- rendering ---------------------------------------------------------------


def render_issue(issue: Issue, site: SiteInfo, *, templates: Path | None = None) -> RenderedIssue:
    """Render ``issue`` once: subject, preheader, inlined HTML and text part.

    ``templates`` is the site's folder of email templates; a file there
    overrides the default of the same name. When the HTML passes
    ``issue.list.max_bytes``, the largest number of leading posts that fits
    is kept in full and the rest become title-and-link entries followed by a
    "Read the rest online" link to ``issue.web_url``; the text part carries
    the same split. Placeholders stand where ``personalize`` puts each
    recipient's values, so the size measured excludes those (keep
    ``max_bytes`` a little under the 102 KB Gmail clips at).
    """
    return _IssueRenderer(site, templates).render(issue)


def render_confirmation(
    site: SiteInfo, lists: Sequence[DigestList], confirm_url: str, *, templates: Path | None = None
) -> tuple[str, str, str]:
    """(subject, html, text) of the double opt-in email asking to confirm ``lists``.

    From ``confirm.html`` and ``confirm.txt`` (the site's ``templates/email/``
    first, as for digests); their context is ``site``, ``lists`` and
    ``confirm_url``. Nothing in it is personal but the link, so nothing is
    left for ``personalize``.
    """
    renderer = _IssueRenderer(site, templates)
    context = {
        "site": site,
        "lists": tuple(lists),
        "confirm_url": confirm_url,
        "text_direction": text_direction(site.language),
    }
    subject = renderer._line("Confirm your subscription to {{ site.title }}", context, "confirmation subject")
    html = renderer._render(renderer._template("confirm.html"), context)
    text = tidy_text(renderer._render(renderer._template("confirm.txt"), {**context, "links": _Links()}))
    return subject, html, text


def render_welcome(
    site: SiteInfo,
    lists: Sequence[DigestList],
    *,
    name: str,
    preferences_url: str,
    templates: Path | None = None,
) -> tuple[str, str, str] | None:
    """(subject, html, text) of the email that welcomes a subscriber who just
    confirmed ``lists``; None when there is no ``welcome.html`` template
    (neither the site's ``templates/email/`` nor the default has one).

    Context: ``site``, ``lists``, ``name`` (the confirmed name, maybe empty)
    and ``preferences_url``, plus ``text_direction``.
    """
    renderer = _IssueRenderer(site, templates)
    try:
        renderer.env.get_template("welcome.html")
    except jinja2.TemplateNotFound:
        return None
    context = {
        "site": site,
        "lists": tuple(lists),
        "name": name,
        "preferences_url": preferences_url,
        "text_direction": text_direction(site.language),
    }
    subject = renderer._line("Welcome to {{ site.title }}", context, "welcome subject")
    html = renderer._render(renderer._template("welcome.html"), context)
    text = tidy_text(renderer._render(renderer._template("welcome.txt"), {**context, "links": _Links()}))
    return subject, html, text


@dataclasses.dataclass(frozen=True)
class _Stylesheet:
    """``style.css`` split for premailer: rules to inline, @-rules to keep."""

    inlined: Markup
    kept: Markup


class _Links:
    """The numbered links of a text part: ``ref(url)`` → ``"[3]"``."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self._numbers: dict[str, int] = {}

    def ref(self, url: str | None) -> str:
        if not url:
            return ""
        number = self._numbers.get(url)
        if number is None:
            self.urls.append(url)
            number = self._numbers[url] = len(self.urls)
        return f"[{number}]"

    def __iter__(self):
        return iter(self.urls)


class _IssueRenderer:
    """One Jinja2 environment (templates compiled once) for one issue."""

    def __init__(self, site: SiteInfo, templates: Path | None):
        self.site = site
        self._folders: list[tuple[str, str]] = []  # (searchpath, shown as)
        if templates is not None and Path(templates).is_dir():
            self._folders.append((str(templates), str(templates)))
        self._folders.append((str(default_templates() / "email"), "templates/email"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(path) for path, _ in self._folders]),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm"), default_for_string=False, default=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=compiled_templates(),
        )
        self.env.globals.update(personal=placeholder, stylesheet=self._stylesheet)
        self.env.filters.update(
            local_date=self._local_date,
            iso=_iso,
            wrap=wrap,
            ref=_ref,
            html_text=_html_text_filter,
        )
        self.env.tests["excerpt"] = lambda block: isinstance(block, Excerpt)
        self._css: _Stylesheet | None = None

    # -- the pieces ----------------------------------------------------------

    def render(self, issue: Issue) -> RenderedIssue:
        digest = issue.list
        total = len(issue.posts)
        # A digest shows at most max_posts in full, the rest as "and N more"
        # links; a list in post mode sends each post in full, on its own.
        most = min(total, digest.max_posts)
        template = "digest"
        if digest.mode == "post":
            most, template = total, "post"
            digest = dataclasses.replace(digest, full_content=True, subject=post_subject(digest.subject))
        base = {
            "site": self.site,
            "issue": issue,
            "list": digest,
            "posts": issue.posts,
            "text_direction": text_direction(self.site.language),
        }
        subject = self._line(digest.subject, base, f"[lists.{digest.name}] subject")
        preheader = self._line(digest.preheader, base, f"[lists.{digest.name}] preheader")
        base.update(subject=subject, preheader=preheader)
        html_template = self._template(f"{template}.html")
        text_template = self._template(f"{template}.txt")

        def context(full: int) -> dict[str, Any]:
            return {**base, "full_posts": full, "linked_posts": total - full, "links": _Links()}

        def html_for(full: int) -> str:
            return self._inline(self._render(html_template, context(full)))

        html = html_for(most)
        full = most
        if _size(html) > digest.max_bytes and most:
            full, html = _largest_fit(html_for, most, digest.max_bytes, first=html)
            log.info(
                "issue %d of list %s: %d of %d posts in full, %d as links (%d bytes, max_bytes %d)",
                issue.number, digest.name, full, total, total - full, _size(html), digest.max_bytes,
            )
            if _size(html) > digest.max_bytes:
                log.warning(
                    "issue %d of list %s: %d bytes even with every post as a link (max_bytes %d)",
                    issue.number, digest.name, _size(html), digest.max_bytes,
                )
        text = tidy_text(self._render(text_template, context(full)))
        return RenderedIssue(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            full_posts=full,
            linked_posts=total - full,
        )

    def _line(self, source: str, context: dict[str, Any], name: str) -> str:
        """A one-line string template (subject, preheader): no CR/LF, no controls."""
        try:
            template = self.env.from_string(source)
            text = template.render({**context, "personal": _no_personal})
        except Exception as exc:
            raise self._error(exc, name) from exc
        return one_line(_CONTROL.sub(" ", text))

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except Exception as exc:
            raise self._error(exc, f"templates/email/{name}") from exc

    def _render(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        try:
            return template.render(context)
        except Exception as exc:
            raise self._error(exc, self._shown(template.filename, template.name)) from exc

    def _inline(self, html: str) -> str:
        """premailer's one pass over the issue's HTML, then Outlook fixes."""
        try:
            inlined = Premailer(
                html,
                keep_style_tags=True,
                strip_important=False,
                remove_classes=False,
                disable_validation=True,
                cssutils_logging_level=logging.CRITICAL,
                allow_network=False,
            ).transform()
        except Exception as exc:  # premailer, cssutils, cssselect and lxml each raise their own
            raise TemplateError("style.css", None, f"CSS cannot be inlined: {exc}") from exc
        return _for_outlook(inlined)

    def _stylesheet(self) -> _Stylesheet:
        if self._css is None:
            try:
                source, _, _ = self.env.loader.get_source(self.env, "style.css")
            except jinja2.TemplateNotFound as exc:
                raise jinja2.TemplateRuntimeError("style.css not found") from exc
            inlined, kept = split_css(source)
            # The stylesheet is the site's own file, not user input: trusted.
            self._css = _Stylesheet(Markup(inlined), Markup(kept))
        return self._css

    def _local_date(self, value: datetime) -> str:
        return format_day(value, self.site.timezone, self.site.language)

    # -- errors --------------------------------------------------------------

    def _shown(self, filename: str | None, name: str | None) -> str:
        """A template file as the user knows it: site folder or templates/email."""
        if filename:
            for searchpath, shown in self._folders:
                prefix = searchpath.rstrip("/") + "/"
                if filename.startswith(prefix):
                    return f"{shown}/{filename[len(prefix):]}"
        return f"templates/email/{name}" if name else (filename or "template")

    def _error(self, exc: Exception, fallback: str) -> Exception:
        """``exc`` as a ``TemplateError`` with the template and line it came from."""
        if isinstance(exc, TemplateError):
            return exc
        if isinstance(exc, jinja2.TemplateSyntaxError):
            where = self._shown(exc.filename, exc.name) if exc.filename or exc.name else fallback
            return TemplateError(where, exc.lineno, exc.message or str(exc))
        where, line = fallback, None
        for frame in traceback.extract_tb(exc.__traceback__):
            # Jinja2 rewrites tracebacks so that template frames carry the
            # template's file name and line; string templates are "<template>".
            if not frame.filename.endswith(".py"):
                where = fallback if frame.filename == "<template>" else self._shown(frame.filename, None)
                line = frame.lineno
        if isinstance(exc, jinja2.TemplateNotFound):
            return TemplateError(where, line, f"template {exc.name!r} not found")
        if isinstance(exc, jinja2.TemplateError):
            return TemplateError(where, line, exc.message or type(exc).__name__)
        if isinstance(exc, _EXPRESSION_ERRORS) and line is not None:
            return TemplateError(where, line, f"{type(exc).__name__}: {exc}")
        return exc


_DIGEST_SUBJECT = DigestList.__dataclass_fields__["subject"].default


def post_subject(subject: str) -> str:
    """The subject of a list in post mode: the post's title, unless the list sets its own."""
    return "{{ posts[0].title }}" if subject == _DIGEST_SUBJECT else subject


def _largest_fit(
    html_for: Callable[[int], str], total: int, max_bytes: int, *, first: str
) -> tuple[int, str]:
    """The most leading posts in full (fewer than ``total``) whose HTML fits.

    A full post is larger than its title-and-link entry, so the size grows
    with the number in full: a binary search over 0..total-1 takes about
    log2(total) renders. When even none in full fits, none it is.
    """
    rendered = {total: first}

    def size(full: int) -> int:
        if full not in rendered:
            rendered[full] = html_for(full)
        return _size(rendered[full])

    low, high, best = 0, total - 1, 0
    while low <= high:
        middle = (low + high) // 2
        if size(middle) <= max_bytes:
            best, low = middle, middle + 1
        else:
            high = middle - 1
    size(best)
    return best, rendered[best]


def _size(html: str) -> int:
    return len(html.encode("utf-8"))


def _for_outlook(html: str) -> str:
    """Outlook for Windows shows ``&apos;`` as is, and ``width="auto"`` breaks
    its images: neither may reach the email."""
    html = html.replace("&apos;", "&#39;")
    return _SIZED_TAG.sub(lambda m: _AUTO_SIZE.sub("", m.group(0)), html)


def text_direction(language: str) -> str:
    """``rtl`` for languages written right to left, else ``ltr``."""
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return "rtl" if primary in _RTL_LANGUAGES else "ltr"


def _iso(value: datetime) -> str:
    return value.isoformat()


# -- placeholders ------------------------------------------------------------


def placeholder(name: str, fallback: str = "") -> Markup:
    """The token standing for a recipient's field; ``fallback`` when it is empty.

    In templates: ``{{ personal("unsubscribe_url") }}``,
    ``Hello {{ personal("name", "there") }}``.
    """
    if name not in PERSONAL_FIELDS:
        raise jinja2.UndefinedError(
            f"personal({name!r}): no such field; use one of {', '.join(PERSONAL_FIELDS)}"
        )
    suffix = f":{fallback.encode('utf-8').hex()}" if fallback else ""
    return Markup(f"%%PUB:{name}{suffix}%%")


def _no_personal(name: str, fallback: str = "") -> str:
    raise jinja2.TemplateRuntimeError(
        f"personal({name!r}) cannot go in the subject or preheader: they are the same for every recipient"
    )


@dataclasses.dataclass(frozen=True)
class _Pieces:
    """A rendered part cut at its placeholders: literal, field, literal, …"""

    literals: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]  # (field name, fallback)

    def fill(self, values: dict[str, str], escape: Callable[[str], str]) -> str:
        out = [self.literals[0]]
        filled: dict[tuple[str, str], str] = {}
        for field, literal in zip(self.fields, self.literals[1:]):
            value = filled.get(field)
            if value is None:
                name, fallback = field
                value = filled[field] = escape(values[name] or fallback)
            out.append(value)
            out.append(literal)
        return "".join(out)


@functools.lru_cache(maxsize=32)
def _pieces(part: str) -> _Pieces:
    """Cut once per rendered part (keyed by the string: its hash is cached)."""
    split = _TOKEN.split(part)
    literals = tuple(split[0::3])
    fields = tuple(
        (name, bytes.fromhex(fallback).decode("utf-8") if fallback else "")
        for name, fallback in zip(split[1::3], split[2::3])
    )
    return _Pieces(literals, fields)


def escape_html(value: str) -> str:
    """Escaped for HTML text and double- or single-quoted attributes, by
    ``markupsafe.escape``; ``'`` as ``&#39;`` (Outlook does not know
    ``&apos;``), ``"`` as ``&quot;`` as ever (markupsafe writes ``&#34;``)."""
    return str.replace(markupsafe.escape(value), "&#34;", "&quot;")


#: What a placeholder looks like: ``MessageFactory`` cuts the parts at these.
PLACEHOLDER = _TOKEN


@functools.lru_cache(maxsize=256)
def _field(token: str) -> tuple[str, str]:
    """(field name, fallback) of one placeholder."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ValueError(f"{token!r} is not a placeholder")
    return match[1], bytes.fromhex(match[2]).decode("utf-8") if match[2] else ""


def placeholder_values(tokens: Iterable[str], personal: Personal, *, html: bool) -> dict[str, str]:
    """Each placeholder in ``tokens`` → the recipient's value, as ``personalize``
    puts it in the HTML part (``html``: escaped) or the text part (as is)."""
    values = {}
    for token in tokens:
        name, fallback = _field(token)
        value = getattr(personal, name) or fallback
        values[token] = escape_html(value) if html else value
    return values


def personalize(rendered: RenderedIssue, personal: Personal) -> tuple[str, str]:
    """(html, text) of ``rendered`` for one recipient.

    Each placeholder becomes the recipient's value, HTML-escaped in the HTML
    part and as is in the text part. Cheap: the parts are cut at their
    placeholders once (cached), then each recipient costs one join per part.
    """
    values = {name: getattr(personal, name) or "" for name in PERSONAL_FIELDS}
    html = _pieces(rendered.html).fill(values, escape_html)
    text = _pieces(rendered.text).fill(values, str)
    return html, text


# -- CSS ---------------------------------------------------------------------


def split_css(css: str) -> tuple[str, str]:
    """(plain rules, @-rules) of a stylesheet, each in source order, comments dropped.

    tinycss2 finds the top-level rules, however nested their blocks, so every
    @-rule is kept away from premailer. Each rule is the source text from its
    start to where the next top-level item starts, a comment inside it as
    one space; what tinycss2 cannot read as a rule is dropped.
    """
    # tinycss2 places each node by (line, column), a line ending at CRLF, CR, LF or FF.
    line_starts = [0] + [match.end() for match in _CSS_NEWLINE.finditer(css)]

    def offset(node: Any) -> int:
        return line_starts[node.source_line - 1] + node.source_column - 1

    # Comments and whitespace kept: they are where one rule's text ends.
    nodes = tinycss2.parse_stylesheet(css)
    plain: list[str] = []
    at_rules: list[str] = []
    for index, node in enumerate(nodes):
        if node.type not in ("qualified-rule", "at-rule"):
            continue
        position = offset(node)
        end = offset(nodes[index + 1]) if index + 1 < len(nodes) else len(css)
        pieces = []
        for comment in _comments(node):
            start = offset(comment)
            pieces.append(css[position:start])
            close = css.find("*/", start + 2, end)
            position = end if close < 0 else close + 2
            pieces.append(" ")
        pieces.append(css[position:end])
        text = "".join(pieces).strip()
        if text:
            (at_rules if node.type == "at-rule" else plain).append(text)
    return "\n".join(plain), "\n".join(at_rules)


_CSS_NEWLINE = re.compile(r"\r\n|[\r\n\f]")


def _comments(node: Any) -> Iterable[Any]:
    """The comments inside a tinycss2 rule, at any depth, in source order."""
    for name in ("prelude", "content", "arguments"):
        for inner in getattr(node, name, None) or ():
            if inner.type == "comment":
                yield inner
            else:
                yield from _comments(inner)


# -- the text part's filters -----------------------------------------------------


@jinja2.pass_context
def _ref(context: jinja2.runtime.Context, url: str | None) -> str:
    return context["links"].ref(url)


@jinja2.pass_context
def _html_text_filter(context: jinja2.runtime.Context, fragment: str) -> str:
    return html_text(fragment, context["links"].ref)
