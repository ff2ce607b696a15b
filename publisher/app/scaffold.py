"""``publisher init``: a new site that builds as it stands.

    created = scaffold_site(Path("mysite"), now=datetime.now(timezone.utc))
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from publisher.errors import PublisherError
from publisher.mail import write_secret
from publisher.feeds import write_atomic

CONFIG = """\
# publisher configuration: every path here is relative to this file.
# The full reference is in publisher's README.

[site]
title = "My Site"
url = "https://example.org/"            # absolute; feeds link here
description = "News and views"
language = "en"
timezone = "UTC"                        # an IANA name such as "America/New_York"
author = {{ name = "Editor", email = "editor@example.org" }}

[content]
paths = ["posts"]                       # folders and files, read by extension
permalink = "{{year}}/{{month}}/{{slug}}/"  # each post's URL, under [site] url

[feeds]
out = "feeds"
items = 20
full_content = true

[state]
path = ".publisher/state.db"

[jobs]                                  # what `publisher run` does, in [site] timezone
build = "every 10 minutes"

[mail]
from = "My Site <news@example.org>"
# Unsubscribe links are signed with $PUBLISHER_SECRET, else with this file
# (`publisher init` created it: keep it, and keep it private).
secret_file = ".publisher/secret"
templates = "templates"                 # templates/email/<name> overrides a default

[lists.daily]
title = "Daily digest"
max_posts = 20
full_content = false
schedule = "daily at 07:00"             # or "weekly on monday at 08:00", "every 6 hours"
"""

FIRST_POST = """\
+++
date = {date}
tags = ["welcome"]
+++
Hello, world

This is the first post of the site. Write posts as text files in this
folder: the first line is the title, paragraphs are separated by blank lines.

The Example Times reports: A quoted passage starts with a line such as this
one, naming its source, and runs until a continue-reading marker.
[Continue reading…](https://example.org/)

Run `publisher build` to turn the posts into feeds.
"""

GITIGNORE = """\
.publisher/
outbox/
preview/
"""


def scaffold_site(directory: Path, *, now: datetime) -> list[Path]:
    """Create a site in ``directory``; refuses to overwrite an existing one."""
    files = {
        directory / "publisher.toml": CONFIG.format(),
        directory / "posts" / "hello-world.txt": FIRST_POST.format(
            date=now.replace(microsecond=0).isoformat()
        ),
        directory / ".gitignore": GITIGNORE,
    }
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise PublisherError(f"{existing[0]}: already exists; not overwriting a site")
    for path, text in files.items():
        write_atomic(path, text.encode("utf-8"))
    secret = directory / ".publisher" / "secret"
    if not secret.exists():
        write_secret(secret)
        files[secret] = ""
    (directory / "templates" / "email").mkdir(parents=True, exist_ok=True)
    return list(files)
