"""Subscribing: ``POST /subscribe`` asks for a double opt-in
(``publisher.mail.optin``) with the same answer, after the same work,
whatever the address; a honeypot field and a rate limit per IP (per /64 for
IPv6). ``/confirm/<token>`` shows the request and confirms it, with the
name its owner gives there."""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, abort, redirect, request, url_for

from publisher.mail import SubscriberError, clean_name, confirm_subscription, normalize_email, pending_request

from .context import context, invalid_link, page, store, token_page
from .csrf import require_csrf
from .index import index_page
from .ratelimit import subscribe_refused

log = logging.getLogger("publisher.web")

HONEYPOT = "website"  # a field people never see; bots fill in anything called so


def register(app: Flask) -> None:
    app.get("/subscribe")(subscribe_form)
    app.post("/subscribe")(subscribe)
    app.route("/confirm/<token>", methods=["GET", "POST"])(confirm)


def subscribe_form():
    return redirect(url_for("index") + "#subscribe", code=303)


def subscribe():
    """The same work, and the same answer, whatever the address: the IP's
    allowance is counted and the request queued for the mailer, which
    records it and sends any confirmation after the answer has gone."""
    require_csrf()
    site = context()
    config = site.config
    if not config.lists:
        abort(404)
    moment = site.now()
    refused = subscribe_refused(store(), moment)
    if refused is not None:
        return refused
    if request.form.get(HONEYPOT, "").strip():
        log.info("subscribe: honeypot filled in; dropped")
        return Response(page("subscribed.html"))
    typed = request.form.get("email", "")[:320]
    name = clean_name(request.form.get("name", ""))
    chosen_names = [n for n in dict.fromkeys(request.form.getlist("list")) if n in config.lists]
    form = {"email": typed, "name": name, "lists": chosen_names}
    try:
        email = normalize_email(typed)
    except SubscriberError:
        return index_page(error="That does not look like an email address.", form=form, status=400)
    if not chosen_names:
        return index_page(error="Choose at least one list.", form=form, status=400)
    site.mailer.submit(email, name, chosen_names, now=moment)  # shed when full: the answer is the same
    return Response(page("subscribed.html"))


_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")


def confirm(token: str):
    site = context()
    if not _TOKEN.fullmatch(token):
        return invalid_link()
    db = store()
    found = pending_request(site.config, db, token, now=site.now())
    if found is None:
        return invalid_link()
    if request.method != "POST":  # GET and HEAD
        return token_page(page("confirm.html", email=found.email, chosen=found.lists, name=found.name))
    require_csrf()
    before = db.subscribers.find(found.email)
    subscriber = confirm_subscription(site.config, db, token, request.form.get("name", found.name), now=site.now())
    if subscriber is None:
        return invalid_link()
    if before is None or before.status != "active":
        site.mailer.welcome(subscriber.email, [l.name for l in found.lists], now=site.now())
    return token_page(page("confirmed.html", email=subscriber.email, chosen=found.lists))
