"""The web server: the feeds over HTTP, subscribing, unsubscribing and the issue archive.

Flask and waitress live in this package and nowhere else. ``create_app``
(``app.py``) builds the WSGI application from a config; ``serve``
(``server.py``) runs it under waitress.

    app = create_app(config)     # a Flask app; app.extensions["publisher.mailer"] sends confirmations
    serve(app, host="127.0.0.1", port=8080, on_ready=print)

What it answers (under the path of ``[site] url``):

- ``/`` the index: feed autodiscovery, the latest posts (from the feeds
  folder's ``feed.json``) and the subscribe form; ``/site.css`` its stylesheet.
- the feeds folder, at the path of ``[feeds] url`` (``/feeds/rss.xml``) and
  at the root (``/rss.xml``): feed content types, a strong ``ETag`` and
  ``Last-Modified``, ``304`` for ``If-None-Match`` and ``If-Modified-Since``,
  gzip when accepted. Only regular files with a feed's extension inside the
  folder are served; ``..``, dot files, encoded slashes and backslashes, NUL
  and symlinks that lead out are 404. ``FeedFiles`` answers these ahead of
  Flask: a poll that gets a 304 costs a ``stat`` and no routing.
- ``/issues/`` and ``/issues/<list>/<number>/``: the web version of each
  issue sent (the frozen rendering, with neutral personal values).
- ``POST /subscribe``: double opt-in (``publisher.mail.optin``); the same answer
  whatever the address, a honeypot field, rate limits per IP and address.
- ``/confirm/<token>``, ``/unsubscribe/<token>`` (RFC 8058 one-click on
  POST), ``/preferences/<token>``: a GET only shows a page with a button;
  a bad token gets one generic 400 page.

The package: ``app.py`` the factory; one module of views per area
(``index.py``, ``subscribe.py``, ``leaving.py``, ``archive.py``), sharing
``context.py``; ``csrf.py`` and ``ratelimit.py``; ``feed_files.py`` the
feeds folder; ``headers.py`` the security headers and CSPs.

Each request that needs the state store opens its own ``StateStore``
(SQLite connections are never shared between waitress's threads) and
closes it at the end; ``create_app`` checks the file's integrity once, so
a request does not read the whole file first.
"""

from __future__ import annotations

from .app import MAX_REQUEST_BYTES, create_app
from .feed_files import (
    ATOM_TYPE,
    FEED_MAX_AGE,
    JSON_FEED_TYPE,
    RSS_TYPE,
    XSLT_TYPE,
    FeedFiles,
    feed_content_type,
    resolve_feed_file,
)
from .ratelimit import EVENT_RETENTION, IP_WINDOW, client_ip
from .server import ServeError, serve
from .subscribe import HONEYPOT

__all__ = [
    "ATOM_TYPE",
    "EVENT_RETENTION",
    "FEED_MAX_AGE",
    "HONEYPOT",
    "IP_WINDOW",
    "JSON_FEED_TYPE",
    "MAX_REQUEST_BYTES",
    "RSS_TYPE",
    "XSLT_TYPE",
    "FeedFiles",
    "ServeError",
    "client_ip",
    "create_app",
    "feed_content_type",
    "resolve_feed_file",
    "serve",
]
