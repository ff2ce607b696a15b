"""What every view shares: the config, the signing secret, the clock, the
state store of the request and the helpers that answer with a page.

``create_app`` keeps one ``WebContext`` in ``app.extensions``; the views
reach it through ``context()`` while a request is handled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response, current_app, g, render_template

from publisher.config import Config
from publisher.mail import ConfirmationMailer, TokenClaims, verify_token
from publisher.state import StateStore

EXTENSION = "publisher.web"


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
    templates: Path  # the default web templates
    site_templates: Path  # the site's own, which win


def context() -> WebContext:
    return current_app.extensions[EXTENSION]


def store() -> StateStore:
    """The state store of this request, opened on first use (closed by ``close_store``)."""
    if "store" not in g:
        g.store = StateStore.connect(context().config.state, check=False)
    return g.store


def close_store(_exc: BaseException | None) -> None:
    opened = g.pop("store", None)
    if opened is not None:
        opened.close()


def page(template: str, **values: Any) -> str:
    return render_template(template, **values)


def claims(token: str, purpose: str) -> TokenClaims | None:
    return verify_token(context().secret, token, purpose)


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
