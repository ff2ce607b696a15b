"""Hostile and broken input: the corpus of tests/data/bad/, built as one site.

Every file of the corpus (plain text, Markdown, HTML, WordPress exports and
feeds read as sources), the few made here because they are too big to commit
(a 50 MB post, 10,000 levels of nesting) and some valid posts go into one
site, which ``publisher check`` and then ``publisher build`` (twice) read as
real processes. What each file must do is in tests/data/bad/EXPECTED.toml:
a rejected file is named exactly once on stderr as ``path:line: reason``,
no traceback, the exit code is 1, everything valid is still published, the
benign files (RTL, zero-width and bidi characters, stray control bytes) are
published as written, and every feed written reads cleanly and validates.

Files that declare a remote DTD or entity point at a local HTTP server; it
must never be asked for anything. Each process runs with its address space
capped, so an entity expansion (a billion laughs is some 3 GB) would fail
loudly instead of swapping the machine.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import tomllib
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import lxml.html
import pytest
from lxml import etree

from .conftest import DATA, REPO
from .helpers.feeds import ATOM_NS, SCHEMAS, read_feed
from .helpers.feed_server import FeedServer
from .helpers.wxr_factory import export, item

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

BAD = DATA / "bad"
EXPECTED: dict[str, dict] = tomllib.loads((BAD / "EXPECTED.toml").read_text(encoding="utf-8"))
POST_FOLDERS = ("txt", "md", "html", "wxr")
NESTING = 10_000
HUGE = 50 * 1024 * 1024
MEMORY_CAP = 3 * 1024**3  # address space of each publisher process

# Valid posts beside the corpus: file -> (contents, title).
VALID = {
    "valid/talks.txt": (
        "+++\ndate = 2024-01-01T10:00:00Z\ntags = [\"Diplomacy\"]\n+++\nTalks resume in Cairo\n\n"
        "BBC News reports: The delegations met again.\n",
        "Talks resume in Cairo",
    ),
    "valid/ceasefire.md": (
        "---\ndate: 2024-01-02T10:00:00Z\ntags: [Diplomacy]\n---\n# A ceasefire holds\n\nThe guns fell *silent*.\n",
        "A ceasefire holds",
    ),
    "valid/aid.html": (
        "<!DOCTYPE html>\n<html><head><title>Aid arrives</title>"
        '<meta name="date" content="2024-01-03T10:00:00Z"></head>\n'
        "<body><article><h1>Aid arrives</h1><p>The first trucks crossed.</p></article></body></html>\n",
        "Aid arrives",
    ),
}
SEED_TITLE = "The U.S. has been speaking to Hamas through back channels for more than six months"
VALID_SOURCE = ("sources/valid-atom.xml", DATA / "feeds" / "atom.xml", ["Rockets and rhetoric", "Only updated"])


def _huge_markdown(path: Path) -> None:
    paragraph = ("All work and no play makes Jack a dull boy. " * 20 + "\n\n").encode()
    with path.open("wb") as out:
        out.write(b"# A fifty megabyte post\n\n")
        for _ in range(HUGE // len(paragraph) + 1):
            out.write(paragraph)


def _nested_html(path: Path) -> None:
    path.write_text(
        "<!DOCTYPE html>\n<html><head><title>Nested ten thousand levels</title></head>\n<body>"
        + "<div>" * NESTING
        + "<p>At the bottom.</p>"
        + "</div>" * NESTING
        + "</body></html>\n",
        encoding="utf-8",
    )


def _nested_markdown(path: Path) -> None:
    path.write_text(
        "---\ndate: 2024-03-20T10:00:00Z\n---\n# Raw HTML nested ten thousand levels\n\n"
        + "<div>" * NESTING
        + '<p>At the <a href="bottom/">bottom</a>.</p>'
        + "</div>" * NESTING
        + "\n\nThe paragraph after.\n",
        encoding="utf-8",
    )


def _nested_export(path: Path) -> None:
    deep = "\n\t\t<wp:postmeta>" + "<b>" * NESTING + "x" + "</b>" * NESTING + "</wp:postmeta>"
    data = export(
        [
            item(9001, "An item before the nested one", date_gmt="2024-03-21 10:00:00"),
            item(9002, "The nested one", extra=deep),
        ]
    )
    path.write_bytes(data)


# Cases made here, too big to commit: file -> (maker, what it must do).
GENERATED = {
    "md/huge-50mb.md": (
        _huge_markdown,
        {"outcome": "rejected", "reason": "52.4 MB is too big for one post (at most 20.0 MB)"},
    ),
    "html/nested-10000-levels.html": (
        _nested_html,
        {"outcome": "rejected", "line": 3, "reason": "elements nested more than 2048 levels deep"},
    ),
    "md/nested-10000-levels.md": (
        _nested_markdown,
        {
            "outcome": "published",
            "titles": ["Raw HTML nested ten thousand levels"],
            # Past 100 levels the tags go (sanitize.MAX_DEPTH) and the text stays.
            "text": "At the bottom.",
        },
    ),
    "wxr/nested-10000-levels.xml": (
        _nested_export,
        {
            "outcome": "partly",
            "line": 0,  # set once the file is written: the line of the nested element
            "reason": "elements nested more than 2048 levels deep",
            "titles": ["An item before the nested one"],
        },
    ),
}


def _shown(case: str) -> str:
    """The path a message names for a corpus file: relative to the site's config."""
    return case if case.startswith("sources/") else f"posts/{case}"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """The stderr lines naming a rejected input (log lines left out)."""
        return [line for line in self.stderr.splitlines() if line and not re.match(r"(WARNING|INFO|DEBUG) ", line)]


@dataclass(frozen=True)
class Built:
    site: Path
    cases: dict[str, dict]
    check: Run
    check_left: list[str]
    first: Run
    second: Run
    dtd_requests: list[str]
    dtd_server_answers: bool


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _publisher(site: Path, *args: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(site / "publisher.toml"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_cap_memory,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _make_site(root: Path, port: int) -> tuple[Path, dict[str, dict]]:
    site = root / "site"
    posts = site / "posts"
    posts.mkdir(parents=True)
    for folder in POST_FOLDERS:
        shutil.copytree(BAD / folder, posts / folder)
    shutil.copytree(BAD / "sources", site / "sources")
    for path in [*posts.rglob("*"), *(site / "sources").iterdir()]:
        if path.is_file() and b"DTD_PORT" in (data := path.read_bytes()):
            path.write_bytes(data.replace(b"DTD_PORT", str(port).encode()))
    cases = {name: dict(case) for name, case in EXPECTED.items()}
    for name, (make, case) in GENERATED.items():
        path = posts / name
        make(path)
        case = dict(case)
        if case.get("line") == 0:
            with path.open("rb") as handle:
                case["line"] = next(n for n, line in enumerate(handle, 1) if b"<b><b>" in line)
        cases[name] = case
    for name, (text, _title) in VALID.items():
        (posts / name).parent.mkdir(exist_ok=True)
        (posts / name).write_text(text, encoding="utf-8")
    for name in ("000_876ff53b270cd303.txt", "000_876ff53b270cd303.txt.meta.toml"):
        shutil.copy(REPO / "seeds" / name, posts / "valid" / name)
    shutil.copy(VALID_SOURCE[1], site / VALID_SOURCE[0])
    sources = sorted(p.relative_to(site).as_posix() for p in (site / "sources").iterdir())
    (site / "publisher.toml").write_text(
        '[site]\ntitle = "Reliability"\nurl = "https://reliability.test-site.net/"\ntimezone = "UTC"\n'
        'author = { name = "Editor", email = "editor@example.org" }\n\n'
        '[content]\npaths = ["posts"]\n'
        + "".join(f'\n[[content.feeds]]\npath = "{source}"\n' for source in sources)
        + "\n[feeds]\nitems = 500\n",
        encoding="utf-8",
    )
    return site, cases


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    trap = FeedServer()  # answers 404 to everything, and records it
    trap.start()
    try:
        site, cases = _make_site(tmp_path_factory.mktemp("bad"), trap.httpd.server_address[1])
        check = _publisher(site, "check")
        check_left = sorted(p.name for p in site.iterdir() if p.name in ("feeds", ".publisher"))
        first = _publisher(site, "build")
        second = _publisher(site, "build")
        requests = [seen.path for seen in trap.seen]
        # The control: the server was there to be asked, and records what it is asked.
        try:
            urllib.request.urlopen(trap.url("/control.dtd"), timeout=10)
        except urllib.error.HTTPError as exc:
            # The server records a request after answering it: give it a moment.
            deadline = time.monotonic() + 60
            while [s.path for s in trap.seen][-1:] != ["/control.dtd"] and time.monotonic() < deadline:
                time.sleep(0.01)
            answers = exc.code == 404 and [s.path for s in trap.seen][-1:] == ["/control.dtd"]
        else:
            answers = False
    finally:
        trap.stop()
    return Built(site, cases, check, check_left, first, second, requests, answers)


def _feed_json(site: Path) -> dict:
    return json.loads((site / "feeds" / "feed.json").read_text(encoding="utf-8"))


def _rejections(cases: dict[str, dict]) -> dict[str, dict]:
    return {name: case for name, case in cases.items() if case["outcome"] in ("rejected", "partly")}


def test_the_corpus_covers_every_reader_and_at_least_forty_files(built: Built) -> None:
    committed = [p for p in BAD.rglob("*") if p.is_file() and p.name != "EXPECTED.toml"]
    assert len(committed) >= 40
    # Every committed file is a case (a sidecar belongs to its post).
    named = {name for name in EXPECTED} | {case["path"] for case in EXPECTED.values() if "path" in case}
    assert {p.relative_to(BAD).as_posix() for p in committed} == named
    kinds = {name.split("/")[0] for name in built.cases}
    assert kinds == {*POST_FOLDERS, "sources"}
    assert max(p.stat().st_size for p in committed) < 64 * 1024, "the big cases are made by the test"


def test_no_traceback_and_exit_code_1(built: Built) -> None:
    for run in (built.check, built.first, built.second):
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        assert run.returncode == 1, run.stderr[-3000:]
    rejected = len(_rejections(built.cases))
    assert f"{rejected} inputs rejected" in built.first.stdout
    assert f"{rejected} inputs rejected" in built.check.stdout


def test_each_bad_file_is_named_once_with_its_line_and_reason(built: Built) -> None:
    errors = built.first.errors
    unexplained = list(errors)
    problems = []
    for name, case in sorted(_rejections(built.cases).items()):
        shown = _shown(case.get("path", name))
        prefix = f"{shown}:{case['line']}: " if "line" in case else f"{shown}: "
        lines = [line for line in errors if line.startswith(f"{shown}:")]
        if len(lines) != 1 or not lines[0].startswith(prefix) or case["reason"] not in lines[0]:
            problems.append(f"{name}: expected one line {prefix}…{case['reason']}…, got {lines}")
        for line in lines:
            unexplained.remove(line)
    assert problems == []
    assert unexplained == [], "stderr lines no case expects"


def test_check_says_the_same_and_writes_nothing(built: Built) -> None:
    assert sorted(built.check.errors) == sorted(built.first.errors)
    assert built.check_left == []  # no feeds folder, no state store


def test_a_second_build_says_the_same_and_rewrites_nothing(built: Built) -> None:
    assert built.second.errors == built.first.errors
    assert ": 0 written," in built.second.stdout


def test_valid_posts_and_benign_files_are_published_as_written(built: Built) -> None:
    items = _feed_json(built.site)["items"]
    titles = [entry["title"] for entry in items]
    expected = [SEED_TITLE, *(title for _text, title in VALID.values()), *VALID_SOURCE[2]]
    for case in built.cases.values():
        expected += case.get("titles", [])
    # Everything valid, and nothing else: no post of a rejected file slipped through.
    assert sorted(titles) == sorted(expected)
    by_title = {entry["title"]: entry for entry in items}
    for name, case in built.cases.items():
        if "text" in case:
            (title,) = case["titles"]
            assert case["text"] in by_title[title]["content_html"], name


def test_feeds_still_read_cleanly_and_validate(built: Built) -> None:
    folder = built.site / "feeds"
    feeds = sorted(p for p in folder.rglob("*") if p.suffix in (".xml", ".json"))
    assert {"rss.xml", "atom.xml", "feed.json", "comments.xml"} <= {p.name for p in feeds}
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    json_schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text())
    checker = jsonschema.FormatChecker()
    for path in feeds:
        parsed = read_feed(path)
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.entries, path
        if path.name.endswith("atom.xml"):
            doc = etree.parse(str(path))
            assert atom_schema.validate(doc), (path, atom_schema.error_log)
            assert doc.getroot().tag == f"{ATOM_NS}feed"
        if path.suffix == ".json":
            jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), json_schema, format_checker=checker)
    rss = read_feed(folder / "rss.xml")
    assert len(rss.entries) == len(_feed_json(built.site)["items"])


def test_nothing_unsafe_or_expanded_reaches_the_feeds(built: Built) -> None:
    for entry in _feed_json(built.site)["items"]:
        html = entry.get("content_html", "")
        if not html.strip():
            continue
        root = lxml.html.fragment_fromstring(html, create_parent="div")
        assert not root.xpath("//script | //iframe | //object | //embed | //form | //style"), entry["title"]
        for element in root.iter():
            for attribute, value in element.attrib.items():
                assert not attribute.lower().startswith("on"), (entry["title"], attribute)
                if attribute in ("href", "src"):
                    assert not value.strip().lower().startswith(("javascript:", "data:")), (entry["title"], value)
    for path in (built.site / "feeds").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"root:x:0:0" not in data, f"{path}: /etc/passwd leaked"
            assert b"lollollol" not in data, f"{path}: an entity was expanded"
            assert path.stat().st_size < 2_000_000, f"{path}: something grew"


def test_no_dtd_or_entity_is_ever_fetched(built: Built) -> None:
    remote = [name for name in EXPECTED if b"DTD_PORT" in (BAD / name).read_bytes()]
    assert len(remote) >= 4
    assert built.dtd_requests == []
    assert built.dtd_server_answers, "the trap server did not answer: the test proves nothing"
