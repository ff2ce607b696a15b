"""Subscribing: ``POST /subscribe`` asks for a double opt-in
(``publisher.mail.optin``) with the same answer whatever the address, a
honeypot field and a rate limit per IP; ``/confirm/<token>`` confirms."""

from __future__ import annotations

import logging

from flask import Flask, Response, abort, redirect, request, url_for

from publisher.mail import (
    SubscriberError,
    clean_name,
    confirm_subscription,
    normalize_email,
    request_subscription,
    requested_lists,
)

from .context import claims, context, invalid_link, page, store, token_page
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
    require_csrf()
    site = context()
    config = site.config
    if not config.lists:
        abort(404)
    moment = site.now()
    db = store()
    refused = subscribe_refused(db, moment)
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
    chosen = [config.lists[n] for n in chosen_names]
    wanted = request_subscription(config, db, email, name, chosen, now=moment)
    if wanted:
        site.mailer.submit(email, wanted, now=moment)
    # The same page whatever became of the request.
    return Response(page("subscribed.html"))


def confirm(token: str):
    site = context()
    found = claims(token, "confirm")
    if found is None or not requested_lists(site.config, found):
        return invalid_link()
    if request.method != "POST":  # GET and HEAD
        return token_page(page("confirm.html", email=found.subscriber, chosen=requested_lists(site.config, found)))
    require_csrf()
    subscriber = confirm_subscription(site.config, store(), found, now=site.now())
    if subscriber is None:
        return invalid_link()
    return token_page(page("confirmed.html", email=found.subscriber, chosen=requested_lists(site.config, found)))
