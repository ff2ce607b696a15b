"""``create_app``: the Flask application for a config, its views from one
module per area and ``FeedFiles`` in front."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from werkzeug.exceptions import HTTPException

from publisher.config import Config
from publisher.dates import format_day
from publisher.errors import ConfigError
from publisher.app.common import make_transport
from publisher.mail import ConfirmationMailer, UnsubscribeJournal
from publisher.resources import default_templates
from publisher.state import StateStore

from . import archive, csrf, hooks, index, leaving, subscribe
from .context import EXTENSION, STORE_THREADS, WebContext, close_store, context, page
from .feed_files import FeedFiles
from .headers import CSP, SECURITY_HEADERS, PublicHost
from .quiet import Quiet
from .ratelimit import store_busy
from .site_files import SiteFiles

MAX_REQUEST_BYTES = 64 * 1024


def create_app(
    config: Config,
    *,
    transport=None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """The WSGI application for ``config``.

    ``transport`` sends confirmation emails (default: the configured one);
    ``clock`` gives the current time (default: the system clock, in UTC).
    The config must have a signing secret (``publisher serve`` creates one).
    """
    if config.mail.secret is None:
        raise ConfigError(
            str(config.path),
            [f"[mail]: `serve` needs the secret that signs links: set ${config.mail.secret_env} "
             f"or create {config.relative(config.mail.secret_file)}"],
        )
    https = config.site.url.startswith("https:")
    prefix = _site_prefix(config)
    site = WebContext(
        config=config,
        secret=config.mail.secret,
        now=clock or (lambda: datetime.now(timezone.utc)),
        https=https,
        prefix=prefix,
        trusted=tuple(ipaddress.ip_network(p, strict=False) for p in config.serve.trusted_proxies),
        csrf_cookie="__Host-publisher_csrf" if https and not prefix else "publisher_csrf",
        mailer=ConfirmationMailer(config, transport or make_transport(config)),
        journal=UnsubscribeJournal(config.state.path),
        store_slots=threading.BoundedSemaphore(STORE_THREADS),
        templates=default_templates() / "web",
        site_templates=config.mail.templates / "web",
    )
    app = _flask_app(site)
    # Innermost: the views' answers counted, for the mailer to wait for quiet.
    site.mailer.quiet = quiet = Quiet(app.wsgi_app)
    app.wsgi_app = quiet  # type: ignore[method-assign]
    if config.pages.enabled:
        app.wsgi_app = SiteFiles(app.wsgi_app, config.pages.out)  # type: ignore[method-assign]
    app.wsgi_app = FeedFiles(  # type: ignore[method-assign]
        app.wsgi_app, config.feeds.out, _feeds_mount(config), view=config.feeds.stylesheet
    )
    if prefix:
        app.wsgi_app = _PrefixMiddleware(app.wsgi_app, prefix)  # type: ignore[method-assign]
    app.wsgi_app = PublicHost(app.wsgi_app, config.site.url)  # type: ignore[method-assign]

    # The store is checked (every page read) and migrated once, here; each
    # request then opens it without reading the whole file again.
    StateStore.connect(config.state).close()

    app.teardown_appcontext(close_store)
    app.context_processor(_common)
    app.after_request(_security_headers)
    app.errorhandler(HTTPException)(_http_error)
    app.errorhandler(Exception)(store_busy)
    for area in (index, archive, subscribe, leaving, hooks):
        area.register(app)
    index.register_feed_files(app)
    return app


def _flask_app(site: WebContext) -> Flask:
    # Named after the package, as its logger is.
    app = Flask("publisher.app.web", static_folder=None, template_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES, MAX_FORM_PARTS=100)
    app.url_map.merge_slashes = False  # "//etc/passwd" is a 404, not a redirect
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(folder)) for folder in (site.site_templates, site.templates) if folder.is_dir()]
    )
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.extensions["publisher.mailer"] = site.mailer
    app.extensions[EXTENSION] = site
    return app


def _site_prefix(config: Config) -> str:
    """The path of the site URL without its final slash ("" at a host's root)."""
    return urlsplit(config.site.url).path.rstrip("/")


def _feeds_mount(config: Config) -> str:
    """Where the feeds folder is served besides the root: the path of
    ``[feeds] url`` under the site URL, else the folder's own name."""
    if config.feeds.url.startswith(config.site.url):
        return config.feeds.url[len(config.site.url) :]
    return config.feeds.out.name + "/"


class _PrefixMiddleware:
    """Serves the app under the site URL's path (``https://example.org/news/``):
    the prefix moves from PATH_INFO to SCRIPT_NAME, so generated links carry it."""

    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Security-Policy", CSP)]
            start_response("404 Not Found", headers + list(SECURITY_HEADERS.items()))
            return [b"Not found\n"]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.app(environ, start_response)


# -- every request -----------------------------------------------------------------


def _common() -> dict[str, Any]:
    """What every template may use."""
    config = context().config
    return {
        "site": config.site_info,
        "lists": list(config.lists.values()),
        "csrf_field": csrf.csrf_field,
        "honeypot": subscribe.HONEYPOT,
        "local_date": _local_date,
    }


def _local_date(moment: datetime) -> str:
    config = context().config
    return format_day(moment, config.site.timezone, config.site.language)


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("Cache-Control", "no-store")
    csrf.set_cookie(response)
    return response


def _http_error(exc: HTTPException):
    if isinstance(exc.response, Response):  # abort(Response(...)) carries its own page
        return exc.response
    response = Response(page("error.html", code=exc.code, title=exc.name), status=exc.code or 500)
    if exc.code == 405:
        response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or ())
    return response
