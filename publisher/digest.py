"""Digests: which posts a list's next issue carries, and its messages.

The next issue of a list holds the published posts that no earlier issue of
that list carried (the state store records each issue's posts), newest
first, at most the list's ``max_posts``. No new posts, no issue. An issue
is rendered once (``render.render_issue``); each recipient's message is then
that rendering with their own fields filled in (``compose``).

    issue = next_issue(site, config.lists["daily"], store, now=now)
    if issue is None: ...            # nothing new for this list
    rendered = render_issue(issue, site.info, templates=...)
    data = compose(config, issue, rendered, recipient(config, issue, "a@b.org", "Ann"), now=now)
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.errors import ConfigError
from publisher.message import build_message, dkim_sign, list_id, make_message_id
from publisher.model import DigestList, Issue, Personal, RenderedIssue, Site, SiteInfo
from publisher.render import personalize
from publisher.store import StateStore
from publisher.tokens import sign_token


def issue_url(site: SiteInfo, list_name: str, number: int) -> str:
    """Where the web version of an issue lives (the "view in browser" link)."""
    return f"{site.url}issues/{list_name}/{number}/"


def next_issue(
    site: Site, digest_list: DigestList, store: StateStore, *, now: datetime, force: bool = False
) -> Issue | None:
    """The list's next issue, or None when it has no new posts.

    ``force`` gives the newest posts even when all were sent (a preview).
    """
    sent = store.issued_post_ids(digest_list.name)
    posts = tuple(p for p in site.posts if p.id not in sent)[: digest_list.max_posts]
    if not posts and force:
        posts = site.posts[: digest_list.max_posts]
    if not posts:
        return None
    number = store.next_issue_number(digest_list.name)
    return Issue(
        list=digest_list,
        number=number,
        posts=posts,
        created=now,
        web_url=issue_url(site.info, digest_list.name, number),
    )


def _secret(config: Config) -> bytes:
    if config.mail.secret is None:
        raise ConfigError(
            str(config.path),
            [
                f"[mail]: no secret to sign unsubscribe links: set ${config.mail.secret_env}, "
                f"or create {config.relative(config.mail.secret_file)} (`publisher digest` and "
                "`publisher init` write one)"
            ],
        )
    return config.mail.secret


def recipient(config: Config, issue: Issue, email: str, name: str = "") -> Personal:
    """The fields of one recipient's copy: their own signed links."""
    secret = _secret(config)
    site = config.site.url
    unsubscribe = sign_token(secret, email, issue.list.name)
    preferences = sign_token(secret, email, issue.list.name, purpose="preferences")
    return Personal(
        email=email,
        name=name,
        unsubscribe_url=f"{site}unsubscribe/{unsubscribe}",
        preferences_url=f"{site}preferences/{preferences}",
        view_url=issue.web_url,
    )


def compose(
    config: Config,
    issue: Issue,
    rendered: RenderedIssue,
    personal: Personal,
    *,
    now: datetime,
    message_id: str | None = None,
) -> bytes:
    """One recipient's complete message (DKIM-signed when configured)."""
    html, text = personalize(rendered, personal)
    host = urlsplit(config.site.url).hostname or "localhost"
    data = build_message(
        rendered.subject,
        html,
        text,
        sender=config.mail.sender,
        to=personal,
        reply_to=config.mail.reply_to,
        list_id=list_id(issue.list.name, issue.list.title, host),
        unsubscribe_url=personal.unsubscribe_url,
        unsubscribe_mailto=config.mail.unsubscribe_mailto,
        message_id=message_id or make_message_id(host, issue.list.name, str(issue.number), personal.email),
        date=now,
    )
    dkim = config.mail.dkim
    if dkim is not None:
        try:
            key = dkim.key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(str(config.path), [f"[mail.dkim] key_file: {dkim.key_file}: {exc.strerror}"]) from None
        data = dkim_sign(data, domain=dkim.domain, selector=dkim.selector, private_key=key)
    return data
