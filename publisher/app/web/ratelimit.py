"""Rate limiting: who is asking (``client_ip``, behind trusted proxies) and
how many subscribe attempts each client may make in an hour."""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta

from flask import Response, request

from publisher.mail import event_key
from publisher.state import StateStore

from .context import context, page

log = logging.getLogger("publisher.web")

IP_WINDOW = timedelta(hours=1)
EVENT_RETENTION = timedelta(days=2)  # longer than any rate-limit window


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(peer: str, forwarded_for: list[str], trusted: tuple[ipaddress._BaseNetwork, ...]) -> str:
    """Who is asking: the socket peer, unless it is a trusted proxy; then the
    nearest hop of ``X-Forwarded-For`` (read right to left) that is not a
    trusted proxy.

    Each proxy appends the address it received from, so the hops to the
    right of the first untrusted one were written by our own proxies and
    the ones to its left by the client, who can write anything there.
    """

    def is_trusted(value: str) -> bool:
        address = _address(value)
        return address is not None and any(address in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            address = _address(hop)
            return str(address) if address is not None else hop[:64]
    return str(_address(hops[0])) if hops else peer


def the_client() -> str:
    """The address of this request's client."""
    return client_ip(request.remote_addr or "", request.headers.getlist("X-Forwarded-For"), context().trusted)


def subscribe_refused(db: StateStore, moment: datetime) -> Response | None:
    """The 429 page when this client has made too many subscribe attempts
    in the last hour; None (the attempt counted) when it may go on."""
    config = context().config
    if not db.web_events.take(
        "subscribe-ip",
        event_key(config, the_client()),
        limit=config.serve.subscribe_per_ip,
        since=moment - IP_WINDOW,
        now=moment,
    ):
        log.warning("subscribe: more than %d attempts from one address in an hour", config.serve.subscribe_per_ip)
        response = Response(page("too_many.html"), status=429)
        response.headers["Retry-After"] = str(int(IP_WINDOW.total_seconds()))
        return response
    db.web_events.forget(moment - EVENT_RETENTION)
    return None
