"""Properties over arbitrary input (hypothesis), each through the real stages.

- Any text post (titles, bodies, tags and author names of arbitrary Unicode,
  control characters included) builds into feeds a feed client reads without
  complaint (bozo 0) and that validate: Atom against RFC 4287's RELAX NG
  schema, JSON Feed against its JSON Schema.
- Any subscriber name and post title give a digest whose parsed headers are
  the intended values, and no others: the Subject is ``header_text`` of the
  subject made from the published title, the To display name is the cleaned
  name; nothing a title or a name holds becomes a header of its own.
- Any CSV import either imports a row or names its line on stderr
  (``FILE:line: reason``): never both, never neither, never a traceback.

Each example gets a site of its own in a temporary folder.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import os
import re
import tempfile
from collections import Counter
from email.header import decode_header, make_header
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from publisher.app.cli import main
from publisher.config import load_config
from publisher.mail.message import header_text
from publisher.clock import SystemClock
from publisher.mail.send import deliver_issue, prepare_issue
from publisher.state.store import StateStore
from publisher.mail.subscribers import SubscriberError, add_subscriber, clean_name, normalize_email
from publisher.mail.transports import OutboxTransport

from .conftest import NOW, build, write_config
from .helpers.feeds import SCHEMAS, read_feed

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

# 40 examples each in CI; RELIABILITY_EXAMPLES=1000 for a longer hunt.
SETTINGS = settings(
    max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SECRET = "a-property-test-secret-that-is-long-enough"

# Any Unicode Python can encode: everything but lone surrogates.
TEXT = st.characters(exclude_categories=("Cs",))
CONTROLS = st.sampled_from("\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\x9f\u2028\u2029\ufeff\ufffe\uffff\u200b\u202e")
# Mostly arbitrary text, with control characters and line breaks made likely.
ANY_TEXT = st.text(st.one_of(TEXT, CONTROLS), max_size=80)

ATOM_SCHEMA = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
JSON_SCHEMA = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text())


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and controls escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def write_post(site: Path, name: str, *, title: str, body: str, tags: list[str] = (), author: str | None = None) -> None:
    meta = [f"title = {toml_string(title)}", "date = 2024-05-01T10:00:00Z"]
    if tags:
        meta.append("tags = [" + ", ".join(toml_string(t) for t in tags) + "]")
    if author is not None:
        meta.append(f"author = {{ name = {toml_string(author)} }}")
    text = "+++\n" + "\n".join(meta) + "\n+++\n" + body + "\n"
    (site / "posts" / name).write_text(text, encoding="utf-8")


# --- any text post gives valid feeds ------------------------------------------------


def check_feeds(folder: Path) -> None:
    feeds = sorted(p for p in folder.rglob("*") if p.suffix in (".xml", ".json"))
    assert {"rss.xml", "atom.xml", "feed.json"} <= {p.name for p in feeds}
    for path in feeds:
        parsed = read_feed(path)
        assert parsed.bozo == 0, (path.name, parsed.get("bozo_exception"))
        if path.name.endswith("atom.xml"):
            doc = etree.parse(str(path))
            assert ATOM_SCHEMA.validate(doc), (path.name, ATOM_SCHEMA.error_log)
        if path.suffix == ".json":
            jsonschema.validate(
                json.loads(path.read_text(encoding="utf-8")), JSON_SCHEMA, format_checker=jsonschema.FormatChecker()
            )


@SETTINGS
@given(
    kind=st.sampled_from(["txt", "md"]),
    title=ANY_TEXT,
    body=st.text(st.one_of(TEXT, CONTROLS), max_size=400),
    tags=st.lists(ANY_TEXT, max_size=3),
    author=st.one_of(st.none(), ANY_TEXT),
)
@example(kind="txt", title="<b>&amp;</b> ]]> \x00\x1b", body="+++\n---\n\x00" * 3, tags=["C#", "c-"], author="\n")
@example(kind="md", title="\u202eevil\u202c", body="<script>x</script>\n\n# H\n\n[a](javascript:x)", tags=[], author=None)
def test_any_text_post_gives_feeds_that_read_cleanly_and_validate(
    kind: str, title: str, body: str, tags: list[str], author: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        write_config(site)
        # A steady neighbour, so every feed has at least one entry.
        (site / "posts" / "steady.txt").write_text(
            "+++\ndate = 2024-01-01T10:00:00Z\n+++\nA steady post\n\nIt never changes.\n", encoding="utf-8"
        )
        write_post(site, f"any.{kind}", title=title, body=body, tags=tags, author=author)
        report = build(site, now=NOW)
        errors = [str(e) for e in report.errors]
        # The post publishes, or is refused with one clear error naming it.
        assert len(errors) <= 1 and all(e.startswith(f"posts/any.{kind}") for e in errors), errors
        sources = {p.source for p in report.site.posts}
        assert ("posts/any." + kind in sources) != bool(errors)
        check_feeds(site / "feeds")
        if not errors:
            published = next(p for p in report.site.posts if p.source == f"posts/any.{kind}")
            items = json.loads((site / "feeds" / "feed.json").read_text(encoding="utf-8"))["items"]
            assert published.title in [item["title"] for item in items]


# --- any subscriber name and post title give the intended headers ------------------------

@pytest.fixture(scope="module")
def secret():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEST_PUBLISHER_SECRET", SECRET)
        yield


HEADERS = Counter(
    ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]
)


@SETTINGS
@given(title=ANY_TEXT, name=ANY_TEXT)
@example(title="Hi\r\nBcc: victim@example.net", name="Eve\r\nX-Injected: yes")
@example(title="=?utf-8?q?Encoded=0D=0ABcc:_x@y?=", name='"Quoted, Name" <other@example.net>')
@example(title="\u2028Subject: two\u2029", name="\x85\x00\t")
def test_any_name_and_title_give_exactly_the_intended_headers(title: str, name: str, secret: None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        write_config(
            site,
            extra='\n[mail]\nfrom = "Test Site <news@example.org>"\nsecret_env = "TEST_PUBLISHER_SECRET"\n'
            'transport = "outbox"\n\n[lists.daily]\ntitle = "Daily"\nbackfill = 1\n',
        )
        write_post(site, "a.txt", title=title, body="The first line of the body.\n\nMore text.")
        report = build(site, now=NOW)
        assert report.errors == ()
        (post,) = report.site.posts
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path)
        try:
            with store.transaction():
                add_subscriber(store.subscribers, "reader@example.net", clean_name(name), ["daily"], source="test", now=NOW)
            issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
            sent = deliver_issue(config, store, OutboxTransport(config.mail.outbox), issue_id, clock=SystemClock())
        finally:
            store.close()
        assert sent.sent == 1
        (path,) = (config.mail.outbox / "new").iterdir()
        data = path.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.defects == []
    assert Counter(msg.keys()) == HEADERS
    for header in msg.keys():
        assert msg[header].defects == (), header
    assert msg["Subject"] == header_text(f"Test Site: {post.title}")
    (to,) = msg["To"].addresses
    assert to.addr_spec == "reader@example.net"
    assert display_name(data, to.display_name) == clean_name(name)


def display_name(data: bytes, parsed: str) -> str:
    """The To display name as RFC 2047 reads it.

    Python's address parser keeps the space between two adjacent
    encoded-words of a display name, which RFC 2047 (6.2) says to drop; a
    name too long for one encoded-word is decoded the standard way instead
    (as tests/test_message.py does). Every other name is the parser's.
    """
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to = re.search(r"^To: (.*?)\r\n(?! )", head, re.M | re.S)
    assert to is not None
    value = to[1].replace("\r\n", "")
    if value.count("=?utf-8?") < 2:
        return parsed
    phrase = value.rsplit(" <", 1)[0]
    return str(make_header(decode_header(phrase)))


# --- any CSV import imports a row or names it ----------------------------------------------

ROW_EMAILS = st.one_of(
    st.integers(0, 10**6).map(lambda n: f"reader{n}@example.org"),
    st.integers(0, 10**6).map(lambda n: f"  Reader{n}@EXAMPLE.org "),
    st.from_regex(r"[a-z0-9._%+-]{1,10}@[a-z]{1,8}\.(org|net|example)", fullmatch=True),
    ANY_TEXT,
)
ROW_LISTS = st.one_of(st.sampled_from(["", "daily", "weekly", "daily;weekly", "daily weekly", "nope"]), ANY_TEXT)
ROW = st.tuples(
    ROW_EMAILS,
    ANY_TEXT,
    ROW_LISTS,
    st.lists(st.one_of(st.just(""), ANY_TEXT), max_size=2),  # cells past the header's
)
# Lines no CSV writer would make: stray quotes, lone CRs, other delimiters.
RAW_LINES = st.one_of(
    st.sampled_from(['"unclosed@example.org,Name', 'a"b@example.org,x', "x@example.org;Name;daily", ",,,", '""', "\r"]),
    ANY_TEXT.filter(lambda t: "\n" not in t and "\r" not in t),
)


def _records(text: str) -> list[tuple[int, list[str] | None]]:
    """(start line, cells) of each record as the csv module reads the file;
    None for one it refuses (a field past its size limit)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str] | None]] = []
    start = 1
    while True:
        try:
            record: list[str] | None = next(reader)
        except StopIteration:
            return records
        except csv.Error:
            record = None
        records.append((start, record))
        start = reader.line_num + 1


def _normalized(cell: str) -> str | None:
    try:
        return normalize_email(cell)
    except SubscriberError:
        return None


@SETTINGS
@given(
    lines=st.lists(st.one_of(ROW.map(lambda row: ("row", row)), RAW_LINES.map(lambda raw: ("raw", raw))), max_size=25),
    newline=st.sampled_from(["\n", "\r\n"]),
)
@example(lines=[("row", ("a@example.org", "x" * 140_000, "", [])), ("row", ("b@example.org", "B", "", []))], newline="\n")
@example(lines=[("raw", '"a@example.org,A'), ("row", ("b@example.org", "B", "daily", []))], newline="\r\n")
# One mailbox on two lines, spelt in two cases: one subscriber, the first spelling kept.
@example(lines=[("row", ("reader0@example.org", "", "", [])), ("row", ("  Reader0@EXAMPLE.org ", "", "", []))], newline="\n")
def test_any_csv_import_imports_a_row_or_names_it(lines: list[tuple[str, object]], newline: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        write_config(site, extra='\n[lists.daily]\ntitle = "Daily"\n\n[lists.weekly]\ntitle = "Weekly"\n')
        out = io.StringIO(newline="")
        out.write("email,name,lists" + newline)
        writer = csv.writer(out, lineterminator=newline)
        for kind, value in lines:
            if kind == "row":
                email_cell, name, lists, extra = value
                writer.writerow([email_cell, name, lists, *extra])
            else:
                out.write(value + newline)
        text = out.getvalue()
        csv_path = site / "people.csv"
        csv_path.write_bytes(text.encode("utf-8"))
        result = CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "subscribers", "import", str(csv_path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        named = Counter(int(m.group(1)) for m in re.finditer(rf"^{re.escape(str(csv_path))}:(\d+): ", result.stderr, re.M))
        config = load_config(site / "publisher.toml")
        store = StateStore.open(config.state.path, readonly=True)
        try:
            stored = {s.email for s in store.subscribers.matching(None)}
        finally:
            store.close()

    records = _records(text)[1:]
    # Addresses are one mailbox whatever the case of their letters (as the store's index has it).
    boxes = {email.lower(): email for email in stored}
    assert len(boxes) == len(stored), "one mailbox stored twice"
    assert set(named.values()) <= {1}, "a line named twice"
    assert set(named) <= {line for line, _ in records}, "a line named that holds no record"
    imported_by_unnamed = set()
    for line, cells in records:
        if cells is None:
            assert line in named, f"unreadable line {line} not named"
            continue
        if not any(cell.strip() for cell in cells):
            assert line not in named, f"blank line {line} named"
            continue
        if line in named:
            continue
        address = _normalized(cells[0])
        # Not named: it must have been imported.
        assert address is not None and address.lower() in boxes, f"line {line} neither imported nor named: {cells!r}"
        imported_by_unnamed.add(boxes[address.lower()])
    for line, cells in records:
        address = _normalized(cells[0]) if cells else None  # (None too for an unreadable record)
        if line in named and address is not None:
            box = boxes.get(address.lower())
            assert box is None or box in imported_by_unnamed, f"line {line} both imported and named"
    assert stored == imported_by_unnamed
    assert result.exit_code == (1 if named else 0), result.output
