"""The index (feed autodiscovery, the latest posts, the subscribe form), its
stylesheet, and the 404 for what ``FeedFiles`` does not serve."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort

from .context import context, page
from .site_files import CSP_PAGES

log = logging.getLogger("publisher.web")

LATEST_POSTS = 10


def register(app: Flask) -> None:
    app.get("/")(index)
    app.get("/site.css")(stylesheet)
    app.get("/favicon.ico")(favicon)


def register_feed_files(app: Flask) -> None:
    """The catch-all, registered after every other view."""
    # FeedFiles answers GET and HEAD for the files that exist; what reaches
    # Flask under these paths is a 404 (or a 405 for another method).
    app.route("/<path:name>", methods=["GET", "HEAD"])(not_a_feed)


def autodiscovery() -> list[dict[str, str]]:
    config = context().config
    found = []
    for name, kind, label in (
        ("rss.xml", "application/rss+xml", "RSS"),
        ("atom.xml", "application/atom+xml", "Atom"),
        ("feed.json", "application/feed+json", "JSON Feed"),
    ):
        if (config.feeds.out / name).is_file():
            found.append(
                {"href": config.feeds.url + name, "type": kind, "title": f"{config.site.title} ({label})", "label": label}
            )
    return found


def latest_posts() -> list[dict[str, Any]]:
    config = context().config
    try:
        feed = json.loads((config.feeds.out / "feed.json").read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the latest posts: %s", config.feeds.out / "feed.json", exc)
        return []
    posts = []
    for item in feed.get("items", [])[:LATEST_POSTS] if isinstance(feed, dict) else []:
        if not isinstance(item, dict):
            continue
        try:
            date = datetime.fromisoformat(item["date_published"]) if item.get("date_published") else None
        except (TypeError, ValueError):
            date = None
        url = item.get("url") or item.get("external_url")
        posts.append(
            {
                "title": str(item.get("title") or "Untitled"),
                "url": url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
                "date": date,
                "summary": str(item.get("summary") or ""),
            }
        )
    return posts


def index_page(*, error: str | None = None, form: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The index; the subscribe form shows ``form`` and ``error`` when given."""
    lists = context().config.lists
    html = page(
        "index.html",
        feeds=autodiscovery(),
        posts=latest_posts(),
        error=error,
        form=form or {"email": "", "name": "", "lists": [next(iter(lists))] if len(lists) == 1 else []},
    )
    return Response(html, status=status)


def index():
    return index_page()


def stylesheet():
    site = context()
    for folder in (site.site_templates, site.templates):
        path = folder / "site.css"
        if path.is_file():
            response = Response(path.read_bytes(), content_type="text/css; charset=utf-8")
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response
    abort(404)


def favicon():
    # Browsers ask on every page; "nothing here" without a 404 in the logs.
    return Response(status=204, headers={"Cache-Control": "public, max-age=86400"})


def not_a_feed(name: str):
    config = context().config
    missing = config.pages.out / "404.html"
    if config.pages.enabled and missing.is_file():
        # The pages' own "nothing here", in the site's look.
        response = Response(missing.read_bytes(), status=404, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = CSP_PAGES
        return response
    abort(404)
