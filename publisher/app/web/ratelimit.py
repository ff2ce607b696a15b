"""Rate limiting: who is asking (``client_ip``, behind trusted proxies) and
how many subscribe attempts each client may make in an hour."""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta

from flask import Response, request
from werkzeug.exceptions import HTTPException

from publisher.mail import event_key
from publisher.state import StateStore, is_busy

from .context import context, page

log = logging.getLogger("publisher.web")

IP_WINDOW = timedelta(hours=1)
EVENT_RETENTION = timedelta(days=2)  # longer than any rate-limit window
BUSY_RETRY_AFTER = 5  # seconds: a write lock is held for a commit, or a build's few seconds


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


def rate_key(client: str, ipv6_prefix: int) -> str:
    """What a client's attempts are counted under: an IPv4 address as it
    is, an IPv6 one by its network of ``ipv6_prefix`` bits (one host
    usually holds a whole /64: counting addresses would give it 2^64
    allowances). An IPv4 address mapped into IPv6 counts as IPv4."""
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address) if address is not None else client


def store_busy(exc: Exception):
    """Another process held the state store's write lock past ``[serve]
    store_wait``: a 503 that says when to come back, never a 500."""
    if isinstance(exc, HTTPException):
        return exc
    if not is_busy(exc):
        raise exc
    log.warning("%s %s: the state store is busy (another publisher is writing); answered 503", request.method, request.path)
    response = Response(page("busy.html"), status=503)
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
    return response


def subscribe_refused(db: StateStore, moment: datetime) -> Response | None:
    """The 429 page when this client has made too many subscribe attempts
    in the last hour; None (the attempt counted) when it may go on."""
    config = context().config
    if not db.web_events.take(
        "subscribe-ip",
        event_key(config, rate_key(the_client(), config.serve.ipv6_prefix)),
        limit=config.serve.subscribe_per_ip,
        since=moment - IP_WINDOW,
        now=moment,
    ):
        log.warning("subscribe: more than %d attempts from one address in an hour", config.serve.subscribe_per_ip)
        response = Response(page("too_many.html"), status=429)
        response.headers["Retry-After"] = str(int(IP_WINDOW.total_seconds()))
        return response
    return None  # old events are dropped on a schedule (serve's upkeep), not per request
