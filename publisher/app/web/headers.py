"""The security headers every answer carries, the Content-Security-Policy
of each kind of page, and ``PublicHost``: the host and scheme of every URL
the app builds come from ``[site] url``, never from the request."""

from __future__ import annotations

from urllib.parse import urlsplit

# default-src 'none' and no script-src: the pages run no script at all.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The web version of an issue is the email's HTML: inline styles throughout.
CSP_ISSUE = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# A feed opened in a browser may be shown through feed.xsl, whose output
# has an inline <style>.
CSP_FEED = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # tokens are in the URLs
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class PublicHost:
    """WSGI layer giving the app the public host and scheme of ``[site] url``.

    A request's ``Host`` header is the client's to write: a redirect built
    from it (``/issues`` to ``/issues/``) would send people to any host an
    attacker names, and a cache in front would keep that. So every request
    is handled as if addressed to the site's own URL; ``X-Forwarded-Host``
    and ``X-Forwarded-Proto`` are never read (the scheme is the site URL's).
    """

    def __init__(self, app, site_url: str):
        self.app = app
        parts = urlsplit(site_url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.port = str(parts.port or (443 if parts.scheme == "https" else 80))

    def __call__(self, environ, start_response):
        environ["HTTP_HOST"] = self.host
        environ["SERVER_NAME"] = self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host
        environ["SERVER_PORT"] = self.port
        environ["wsgi.url_scheme"] = self.scheme
        return self.app(environ, start_response)
