"""What every view shares: the config, the signing secret, the clock, the
state store of the request and the helpers that answer with a page.

``create_app`` keeps one ``WebContext`` in ``app.extensions``; the views
reach it through ``context()`` while a request is handled.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response, current_app, g, render_template

from publisher.config import Config
from publisher.mail import ConfirmationMailer, TokenClaims, UnsubscribeJournal, verify_token_ring
from publisher.schedules import parse_duration
from publisher.state import StateStore, StoreBusy

EXTENSION = "publisher.web"
SERVE_THREADS = 8  # waitress's threads
STORE_THREADS = SERVE_THREADS - 2  # how many of them may use the state store at once


@dataclass(frozen=True, slots=True)
class WebContext:
    """The settings ``create_app`` works out once for every request."""

    config: Config
    secret: bytes
    now: Callable[[], datetime]
    https: bool
    prefix: str  # the path of the site URL without its final slash
    trusted: tuple[ipaddress._BaseNetwork, ...]  # [serve] trusted_proxies
    csrf_cookie: str
    mailer: ConfirmationMailer
    journal: UnsubscribeJournal  # one-click unsubscribes kept while the store is busy
    store_slots: threading.BoundedSemaphore  # STORE_THREADS of them
    templates: Path  # the default web templates
    site_templates: Path  # the site's own, which win


def context() -> WebContext:
    return current_app.extensions[EXTENSION]


def store(wait: float | None = None) -> StateStore:
    """The state store of this request, opened on first use (closed by
    ``close_store``); ``wait``: seconds to wait for another process's write
    lock, instead of ``[serve] store_wait``.

    At most ``STORE_THREADS`` requests use it at once: while another
    process holds its write lock, the others are answered 503 at once
    instead of waiting too, so threads stay free for feeds and pages.
    """
    if "store" not in g:
        site = context()
        if not site.store_slots.acquire(blocking=False):
            raise StoreBusy(f"{site.config.state.path}: {STORE_THREADS} requests are waiting on the store already")
        g.store_slot = True
        wait = site.config.serve.store_wait if wait is None else wait
        g.store = StateStore.connect(site.config.state, check=False, wait=wait)
    return g.store


def close_store(_exc: BaseException | None) -> None:
    opened = g.pop("store", None)
    if opened is not None:
        opened.close()
    if g.pop("store_slot", False):
        context().store_slots.release()


def page(template: str, **values: Any) -> str:
    return render_template(template, **values)


def claims(token: str, purpose: str) -> TokenClaims | None:
    """What a signed link vouches for, under the current secret or a retired one still in its grace period."""
    site = context()
    mail = site.config.mail
    grace = parse_duration(mail.secret_grace)
    return verify_token_ring(site.secret, token, purpose, retired=mail.previous_secrets, grace=grace, now=site.now())


def invalid_link() -> Response:
    # One page for every bad token, whatever was wrong with it.
    response = Response(page("invalid_link.html"), status=400)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def token_page(html: str, status: int = 200) -> Response:
    response = Response(html, status=status)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def list_title(name: str) -> str:
    found = context().config.lists.get(name)
    return found.title if found is not None else name
