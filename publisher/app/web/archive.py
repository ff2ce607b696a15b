"""The issue archive: ``/issues/`` lists the issues sent, and
``/issues/<list>/<number>/`` shows one as its web version (the frozen
rendering, with neutral personal values)."""

from __future__ import annotations

from flask import Flask, Response, abort

from publisher.mail import frozen_issue, personalize
from publisher.model import DigestList, Personal

from .context import context, list_title, page, store
from .headers import CSP_ISSUE

_MAX_ISSUE_NUMBER = 2**62


def register(app: Flask) -> None:
    app.get("/issues/")(issues)
    app.get("/issues/<list_name>/<int:number>/")(issue)


def issues():
    groups: dict[str, list] = {name: [] for name in context().config.lists}
    for info in store().issues.archived():
        groups.setdefault(info.list_name, []).append(info)
    shown = [{"name": name, "title": list_title(name), "issues": found} for name, found in groups.items() if found]
    response = Response(page("issues.html", groups=shown))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def issue(list_name: str, number: int):
    if number > _MAX_ISSUE_NUMBER:
        abort(404)
    info = store().issues.archived_one(list_name, number)
    if info is None or info.rendered is None:
        abort(404)
    config = context().config
    digest_list = config.lists.get(list_name) or DigestList(name=list_name, title=list_name)
    frozen, rendered = frozen_issue(config, digest_list, number, info.rendered)
    # Neutral values: "Hello there", "because you subscribed", and the
    # links that would be personal lead to the index and its form.
    home = config.site.url
    html, _ = personalize(
        rendered,
        Personal(email="you", name="", unsubscribe_url=home, preferences_url=home, view_url=frozen.web_url),
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP_ISSUE
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
