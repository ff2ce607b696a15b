"""Digests: which posts a list's next issue carries, and its messages.

The next issue of a list holds the posts new since the previous issue's
cut-off (``new_posts`` states the rule), newest first: the first
``max_posts`` in full, the rest as links. No new posts, no issue. A list in
post mode makes one issue per new post. An issue
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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from publisher.config import Config
from publisher.errors import ConfigError
from publisher.mail.message import MessageFactory, dkim_sign, list_id, make_message_id
from publisher.mail.mime import dot_stuffed
from publisher.model import DigestList, Issue, Personal, Post, RenderedIssue, Site, SiteInfo
from publisher.mail.render import PLACEHOLDER, placeholder_values
from publisher.state import StateStore
from publisher.mail.tokens import sign_token
from publisher.schedules import parse_duration


def issue_url(site: SiteInfo, list_name: str, number: int) -> str:
    """Where the web version of an issue lives (the "view in browser" link)."""
    return f"{site.url}issues/{list_name}/{number}/"


@dataclass(frozen=True)
class ListHistory:
    """What a list's next issue is chosen against: ``since``, the previous
    issue's cut-off (the list's creation before its first issue); ``first``,
    no issue yet; ``sent``, the ids of the posts its issues carried."""

    since: datetime
    first: bool
    sent: frozenset[str]


def list_history(store: StateStore, list_name: str, *, now: datetime) -> ListHistory:
    """The list's history as the store has it; a list the store has not
    recorded yet (a read-only look at a new list) dates from ``now``."""
    cutoff = store.issues.last_cutoff(list_name)
    since = cutoff or store.issues.list_created(list_name) or now
    return ListHistory(since, cutoff is None, frozenset(store.issues.posted_ids(list_name)))


def new_posts(
    posts: tuple[Post, ...],
    digest_list: DigestList,
    history: ListHistory,
    first_seen: Mapping[str, datetime],
    *,
    now: datetime,
    backfill: int | None = None,
) -> tuple[Post, ...]:
    """The posts the list's next issue holds, newest first (pure).

    A post is new when no earlier issue of the list carried it, and it is
    dated after ``history.since`` (an undated post is dated when first
    seen), or was first seen after it with a date no more than the list's
    ``backdated`` before it (written earlier, published late). A post first
    seen long after its date (an import, a restored archive) is old.
    ``first_seen`` maps a post's source to when the store first saw it (not
    there: now). The first issue also holds the newest ``backfill`` posts
    (default: the list's own ``backfill``).
    """
    since, sent = history.since, history.sent
    oldest = since - parse_duration(digest_list.backdated)
    chosen = [
        post
        for post in posts
        if post.id not in sent
        and post.date is not None
        and (post.date > since or (first_seen.get(post.source, now) > since and post.date > oldest))
    ]
    count = digest_list.backfill if backfill is None else backfill
    if history.first and count:
        taken = {post.id for post in chosen}
        chosen += [post for post in posts if post.id not in sent and post.id not in taken][:count]
    chosen.sort(key=lambda post: (post.date, post.source), reverse=True)
    return tuple(chosen)


def next_issues(
    site: Site,
    digest_list: DigestList,
    store: StateStore,
    *,
    now: datetime,
    force: bool = False,
    backfill: int | None = None,
) -> list[Issue]:
    """The list's next issues: one (a digest of every new post), one per new
    post oldest first (a list in post mode), or none when nothing is new.

    ``publisher digest`` and ``publisher send`` both choose through this.
    An issue's cut-off is ``now``: a post seen by then and not in it is
    never mailed by the list (beyond ``max_posts`` a digest lists the rest
    as links). ``force`` gives the newest posts when nothing is new (a
    preview).
    """
    history = list_history(store, digest_list.name, now=now)
    first_seen = {source: record.first_seen for source, record in store.posts.records().items()}
    posts = new_posts(site.posts, digest_list, history, first_seen, now=now, backfill=backfill)
    if not posts and force:
        posts = site.posts[: 1 if digest_list.mode == "post" else digest_list.max_posts]
    groups = [(post,) for post in reversed(posts)] if digest_list.mode == "post" else [posts]
    number = store.issues.next_number(digest_list.name)
    return [
        Issue(
            list=digest_list,
            number=number + n,
            posts=group,
            created=now,
            web_url=issue_url(site.info, digest_list.name, number + n),
        )
        for n, group in enumerate(g for g in groups if g)
    ]


def next_issue(
    site: Site, digest_list: DigestList, store: StateStore, *, now: datetime, force: bool = False
) -> Issue | None:
    """The list's next issue (the first of ``next_issues``), or None when nothing is new."""
    issues = next_issues(site, digest_list, store, now=now, force=force)
    return issues[0] if issues else None


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

    def compose(self, personal: Personal, *, now: datetime, message_id: str | None = None, stuff: bool = False) -> bytes:
        """One recipient's complete message (DKIM-signed when configured);
        ``stuff``: as SMTP's DATA carries it (``mime.SmtpData``)."""
        factory = self.factory
        signed = self._dkim is not None and self._dkim_key is not None
        data = factory.build(
            to=personal,
            unsubscribe_url=personal.unsubscribe_url,
            message_id=message_id or self.message_id(personal.email),
            date=now,
            html_values=placeholder_values(factory.html_slots, personal, html=True),
            text_values=placeholder_values(factory.text_slots, personal, html=False),
            stuff=stuff and not signed,  # the signature is over the message itself
        )
        if signed:
            data = dkim_sign(data, domain=self._dkim.domain, selector=self._dkim.selector, private_key=self._dkim_key)
            return dot_stuffed(data) if stuff else data
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
