"""The feeds stage: a site's posts become RSS, Atom and JSON Feed files,
written atomically, with the WebSub ping; ``build_site`` runs it all."""

from typing import TYPE_CHECKING

from publisher.lazy import exports

__getattr__, __dir__ = exports(
    __name__,
    {
        "BuildReport": "build",
        "build_site": "build",
        "check_site": "build",
        "RSS": "formats",
        "ATOM": "formats",
        "JSON_FEED": "formats",
        "write_atomic": "writer",
    },
)

__all__ = [
    "ATOM",
    "BuildReport",
    "JSON_FEED",
    "RSS",
    "build_site",
    "check_site",
    "write_atomic",
]

if TYPE_CHECKING:
    from publisher.feeds.build import BuildReport, build_site, check_site
    from publisher.feeds.formats import ATOM, JSON_FEED, RSS
    from publisher.feeds.writer import write_atomic
