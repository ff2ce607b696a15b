"""``POST /hooks/<provider>``: the bounce and complaint webhooks of Amazon SES
(through SNS), Mailgun and Postmark.

Every request is verified before anything changes (see
``publisher.mail.bounces.webhooks``): a forged, unsigned or replayed one
gets 401 or 403 and changes nothing. A provider that is not configured
(no ``[bounces] ses_topics``, no Mailgun key, no Postmark password) is 404.

The SNS certificate fetcher is ``app.extensions["publisher.sns_fetch"]``:
``fetch_sns_url`` (HTTPS to an SNS host, certificates checked), kept per URL.
"""

from __future__ import annotations

import base64
import hmac
import logging
import ssl
import urllib.request
from functools import lru_cache

from flask import Flask, Response, current_app, request

from publisher.mail.bounces import (
    MAX_BODY,
    WebhookRejected,
    handle_events,
    mailgun_events,
    postmark_events,
    rules_of,
    ses_events,
    sns_url_allowed,
)

from .context import context, store

log = logging.getLogger("publisher.web.hooks")
SNS_FETCH = "publisher.sns_fetch"


def register(app: Flask) -> None:
    app.extensions.setdefault(SNS_FETCH, fetch_sns_url)
    app.route("/hooks/<provider>", methods=["POST"])(hook)


@lru_cache(maxsize=16)
def fetch_sns_url(url: str) -> bytes:
    """GET an SNS URL (a signing certificate, a subscription confirmation) over verified TLS."""
    if not sns_url_allowed(url):
        raise OSError(f"{url} is not an SNS URL")
    with urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context()) as response:
        return response.read(65_536)


def _plain(status: int, text: str, **headers: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain", headers=headers)


def _postmark_authorised() -> bool:
    bounces = context().config.bounces
    given = request.headers.get("Authorization", "")
    expected = "Basic " + base64.b64encode(f"{bounces.postmark_user}:{bounces.postmark_password}".encode()).decode()
    return hmac.compare_digest(given.encode(), expected.encode())


def _events(provider: str, body: bytes) -> list:
    config = context().config.bounces
    if provider == "ses" and config.ses_topics:
        found = ses_events(body, topics=config.ses_topics, fetch_certificate=current_app.extensions[SNS_FETCH])
        if found.subscribe_url:
            current_app.extensions[SNS_FETCH](found.subscribe_url)  # confirms the subscription
            log.info("SNS subscription confirmed: %s", found.subscribe_url.split("?")[0])
        return list(found.events)
    if provider == "mailgun" and config.mailgun_key:
        return mailgun_events(body, key=config.mailgun_key.encode(), now=context().now())
    if provider == "postmark" and config.postmark_password:
        if not _postmark_authorised():
            raise WebhookRejected(401, "wrong or missing basic authentication")
        return postmark_events(body)
    raise LookupError(provider)


def hook(provider: str) -> Response:
    if (request.content_length or 0) > MAX_BODY:
        return _plain(413, "too large")
    body = request.stream.read(MAX_BODY + 1)  # never more, whatever the client says it sends
    try:
        events = _events(provider, body)
    except LookupError:
        return _plain(404, "no such hook")
    except WebhookRejected as exc:
        log.warning("hook %s refused (%s): %s", provider, exc.status, exc)
        extra = {"WWW-Authenticate": 'Basic realm="hooks"'} if exc.status == 401 else {}
        return _plain(exc.status, str(exc), **extra)
    if not events:
        return _plain(200, "nothing to do")
    outcomes = handle_events(store(), rules_of(context().config), events, source=f"webhook:{provider}", now=context().now())
    return _plain(200, ", ".join(f"{o.verdict} {' '.join(o.emails)}".strip() for o in outcomes))
