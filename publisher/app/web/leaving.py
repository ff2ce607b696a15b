"""Leaving: ``/unsubscribe/<token>`` (RFC 8058 one-click on POST) and
``/preferences/<token>``; a GET only shows a page with a button. A one-click
unsubscribe is never lost: while another process holds the state store's
write lock it goes to the journal (``publisher.mail.unsubscribe_journal``)
and is answered 200 all the same."""

from __future__ import annotations

from flask import Flask, request, url_for

from publisher.mail import remove_subscriber, sign_token
from publisher.state import is_busy

from .context import claims, context, invalid_link, list_title, page, store, token_page
from .csrf import require_csrf


# A one-click unsubscribe waits this long for the write lock before it goes
# to the journal: the mail provider posting it gives up after a few seconds.
UNSUBSCRIBE_WAIT = 1.0


def register(app: Flask) -> None:
    app.route("/unsubscribe/<token>", methods=["GET", "POST"])(unsubscribe)
    app.route("/preferences/<token>", methods=["GET", "POST"])(preferences)


def preferences_url(email: str, list_name: str) -> str:
    return url_for("preferences", token=sign_token(context().secret, email, list_name, purpose="preferences"))


def unsubscribe(token: str):
    found = claims(token, "unsubscribe")
    if found is None:
        return invalid_link()
    if request.method != "POST":  # GET and HEAD
        # Shows a button only: link scanners that follow every URL in a
        # message must not unsubscribe anyone.
        if store().subscribers.find(found.subscriber) is None:
            return invalid_link()
        return token_page(page("unsubscribe.html", email=found.subscriber, list_title=list_title(found.list_name)))
    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click; no
    # CSRF token (it has no page to take one from): the signed token in
    # the URL is the authority.
    if request.form.get("List-Unsubscribe") != "One-Click":
        return invalid_link()
    try:
        db = store(wait=UNSUBSCRIBE_WAIT)
        with db.transaction():
            after = remove_subscriber(db.subscribers, found.subscriber, found.list_name, now=context().now())
            db.confirmations.withdraw(found.subscriber)
    except Exception as exc:
        if not is_busy(exc):
            raise
        # Another process holds the write lock; the sender will not ask
        # twice: keep the unsubscribe in the journal, applied when it frees.
        context().journal.record(found.subscriber, found.list_name, now=context().now())
        after = True
    if after is None:
        return invalid_link()
    return token_page(
        page(
            "unsubscribed.html",
            email=found.subscriber,
            list_title=list_title(found.list_name),
            preferences=preferences_url(found.subscriber, found.list_name),
        )
    )


def preferences(token: str):
    found = claims(token, "preferences")
    if found is None:
        return invalid_link()
    db = store()
    subscriber = db.subscribers.find(found.subscriber)
    if subscriber is None:
        return invalid_link()
    now = context().now
    left = None
    if request.method == "POST":
        require_csrf()
        leave = request.form.get("leave", "")
        if leave == "*":
            subscriber = remove_subscriber(db.subscribers, subscriber.email, None, now=now()) or subscriber
            left = "every list"
        elif leave in subscriber.lists:
            subscriber = remove_subscriber(db.subscribers, subscriber.email, leave, now=now()) or subscriber
            left = list_title(leave)
    names = list(dict.fromkeys([*context().config.lists, *subscriber.lists]))
    rows = [{"name": n, "title": list_title(n), "on": n in subscriber.lists} for n in names]
    return token_page(page("preferences.html", subscriber=subscriber, rows=rows, left=left))
