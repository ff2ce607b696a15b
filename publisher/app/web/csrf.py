"""CSRF protection for the forms: a random nonce in a cookie, and in each
form the nonce's HMAC under the signing secret; a POST must send both.

A form on a static page (the pages ``publisher build`` writes) cannot carry
a token: a POST without one is taken when the browser says it comes from
the site itself (``Sec-Fetch-Site: same-origin``, or an ``Origin`` that is
the site's), which no other site can make it say."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import Response, abort, g, request
from markupsafe import Markup

from .context import context, page

log = logging.getLogger("publisher.web")

_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")


def csrf_nonce() -> str:
    """The nonce of this request's cookie, or a new one (``set_cookie`` sends it)."""
    if "csrf_nonce" not in g:
        cookie = request.cookies.get(context().csrf_cookie, "")
        if _NONCE.fullmatch(cookie):
            g.csrf_nonce = cookie
        else:
            g.csrf_nonce = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
            g.csrf_new = True
    return g.csrf_nonce


def csrf_for(nonce: str) -> str:
    digest = hmac.new(context().secret, b"csrf." + nonce.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf_for(csrf_nonce()))


def require_csrf() -> None:
    """Ends the request with the "form expired" page unless the form's token matches the cookie."""
    cookie = request.cookies.get(context().csrf_cookie, "")
    sent = request.form.get("csrf_token", "")
    if "csrf_token" not in request.form and _same_origin():
        return
    if not _NONCE.fullmatch(cookie) or not hmac.compare_digest(csrf_for(cookie), sent):
        log.info("%s %s: missing or wrong CSRF token", request.method, request.path)
        abort(Response(page("form_expired.html"), status=400))


def _same_origin() -> bool:
    """Does the browser say this request comes from the site's own pages?"""
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return True
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    site = urlsplit(context().config.site.url)
    return origin == f"{site.scheme}://{site.netloc}"


def set_cookie(response: Response) -> None:
    """Sends the nonce made for this request, if one was."""
    if g.get("csrf_new"):
        site = context()
        response.set_cookie(
            site.csrf_cookie, g.csrf_nonce, httponly=True, samesite="Lax", secure=site.https, path=(site.prefix or "") + "/"
        )
