"""The security headers every answer carries, and the Content-Security-Policy of each kind of page."""

from __future__ import annotations

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
