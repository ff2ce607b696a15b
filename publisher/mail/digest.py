"""Digests: which posts a list's next issue carries, and its messages.

The next issue of a list holds the published posts that no earlier issue of
that list carried (the state store records each issue's posts), newest
first, at most the list's ``max_posts``. No new posts, no issue. An issue
is rendered once (``render.render_issue``); each recipient's message is then
that rendering with their own fields filled in (``IssueMessages``: what
the recipients share is prepared once per issue, not per message).

    issue = next_issue(site, config.lists["daily"], store, now=now)
    if issue is None: ...            # nothing new for this list
    rendered = render_issue(issue, site.info, templates=...)
    messages = IssueMessages(config, issue, rendered)
    data = messages.compose(messages.recipient("a@b.org", "Ann"), now=now)
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.errors import ConfigError
from publisher.mail.message import MessageFactory, dkim_sign, list_id, make_message_id
from publisher.model import DigestList, Issue, Personal, RenderedIssue, Site, SiteInfo
from publisher.mail.render import PLACEHOLDER, placeholder_values
from publisher.state import StateStore
from publisher.mail.tokens import sign_token


def issue_url(site: SiteInfo, list_name: str, number: int) -> str:
    """Where the web version of an issue lives (the "view in browser" link)."""
    return f"{site.url}issues/{list_name}/{number}/"


def next_issue(
    site: Site, digest_list: DigestList, store: StateStore, *, now: datetime, force: bool = False
) -> Issue | None:
    """The list's next issue, or None when it has no new posts.

    ``force`` gives the newest posts even when all were sent (a preview).
    """
    sent = store.issues.posted_ids(digest_list.name)
    posts = tuple(p for p in site.posts if p.id not in sent)[: digest_list.max_posts]
    if not posts and force:
        posts = site.posts[: digest_list.max_posts]
    if not posts:
        return None
    number = store.issues.next_number(digest_list.name)
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


class IssueMessages:
    """The messages of one issue: prepared once, then one ``compose`` per recipient.

    Everything the recipients share (headers, the parts quoted-printable
    encoded but for the lines holding a placeholder, the DKIM key) is done
    here once; ``compose`` fills in one recipient. Worker threads may share
    one instance.

        messages = IssueMessages(config, issue, rendered)
        data = messages.compose(messages.recipient("a@b.org", "Ann"), now=now)
    """

    def __init__(self, config: Config, issue: Issue, rendered: RenderedIssue):
        self.config = config
        self.issue = issue
        self.host = urlsplit(config.site.url).hostname or "localhost"
        self.factory = MessageFactory(
            rendered.subject,
            rendered.html,
            rendered.text,
            slots=PLACEHOLDER,
            sender=config.mail.sender,
            reply_to=config.mail.reply_to,
            list_id=list_id(issue.list.name, issue.list.title, self.host),
            unsubscribe_mailto=config.mail.unsubscribe_mailto,
        )
        self._dkim = config.mail.dkim
        self._dkim_key = _dkim_key(config)

    def recipient(self, email: str, name: str = "") -> Personal:
        return recipient(self.config, self.issue, email, name)

    def message_id(self, email: str) -> str:
        return make_message_id(self.host, self.issue.list.name, str(self.issue.number), email)

    def compose(self, personal: Personal, *, now: datetime, message_id: str | None = None) -> bytes:
        """One recipient's complete message (DKIM-signed when configured)."""
        factory = self.factory
        data = factory.build(
            to=personal,
            unsubscribe_url=personal.unsubscribe_url,
            message_id=message_id or self.message_id(personal.email),
            date=now,
            html_values=placeholder_values(factory.html_slots, personal, html=True),
            text_values=placeholder_values(factory.text_slots, personal, html=False),
        )
        if self._dkim is not None and self._dkim_key is not None:
            data = dkim_sign(data, domain=self._dkim.domain, selector=self._dkim.selector, private_key=self._dkim_key)
        return data


def compose(
    config: Config,
    issue: Issue,
    rendered: RenderedIssue,
    personal: Personal,
    *,
    now: datetime,
    message_id: str | None = None,
) -> bytes:
    """One recipient's complete message (DKIM-signed when configured).

    For many recipients of one issue, make one ``IssueMessages`` and call
    its ``compose``: this prepares the issue anew each time.
    """
    return IssueMessages(config, issue, rendered).compose(personal, now=now, message_id=message_id)


def dkim_signed(config: Config, data: bytes) -> bytes:
    """``data`` DKIM-signed when ``[mail.dkim]`` is set, else as it is."""
    dkim, key = config.mail.dkim, _dkim_key(config)
    if dkim is None or key is None:
        return data
    return dkim_sign(data, domain=dkim.domain, selector=dkim.selector, private_key=key)


def _dkim_key(config: Config) -> bytes | None:
    """The PEM key of ``[mail.dkim]``, or None when messages are not signed."""
    dkim = config.mail.dkim
    if dkim is None:
        return None
    try:
        return dkim.key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(config.path), [f"[mail.dkim] key_file: {dkim.key_file}: {exc.strerror}"]) from None
