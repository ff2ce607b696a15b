"""WebSub (formerly PubSubHubbub): telling a hub that feeds changed.

After a build that changed feeds, the hub named by ``[feeds] hub`` gets one
``hub.mode=publish`` POST per changed feed URL, so subscribers hear of new
posts in seconds instead of at their next poll. A hub that fails is a
warning: the feeds are already written and readers will poll them anyway.

    problems = ping_hub("https://hub.example/", ["https://example.org/feeds/rss.xml"], timeout=10)
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request

from publisher import __version__

log = logging.getLogger("publisher.websub")


def ping_hub(hub: str, feed_urls: list[str], *, timeout: float) -> list[str]:
    """Notify ``hub`` of each changed feed; returns one message per failure."""
    problems = []
    for url in feed_urls:
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        request = urllib.request.Request(
            hub,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": f"publisher/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                log.info("hub %s accepted %s (%s)", hub, url, response.status)
        except urllib.error.HTTPError as exc:
            problems.append(f"{hub}: hub refused {url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            problems.append(f"{hub}: hub not reached for {url}: {reason}")
    return problems
