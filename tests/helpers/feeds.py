"""Reading feeds as a feed client does, and the schemas they are checked against."""

from __future__ import annotations

from pathlib import Path

import fastfeedparser
import feedparser

from ..conftest import DATA

SCHEMAS = DATA / "schemas"


ATOM_NS = "{http://www.w3.org/2005/Atom}"


def read_feed(path: Path):
    """A real feed client's view of a feed: feedparser for RSS and Atom;
    feedparser 6 has no JSON Feed support, so fastfeedparser reads that one."""
    data = path.read_bytes()
    if path.suffix == ".json":
        parsed = fastfeedparser.parse(data.decode("utf-8"))  # raises on a broken feed
        parsed["bozo"] = 0
        return parsed
    return feedparser.parse(data)

