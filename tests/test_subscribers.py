"""Subscribers: address rules, the store's status rules, and `publisher subscribers`.

Every test uses a real SQLite file under tmp_path; the command line is run
in-process with click's CliRunner. Fixture files are in
tests/data/subscribers/ (mixed.csv has a quoted name spanning two lines and a
blank line, so its rejections check physical line numbers).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.app import cli_subscribers as cli
from publisher.state.store import StateStore
from publisher.mail.subscriber_csv import from_spreadsheet_cell, read_subscriber_csv, split_lists, spreadsheet_safe
from publisher.mail.subscribers import (
    NAME_MAX,
    SubscriberError,
    SubscriberFileError,
    add_subscriber,
    clean_name,
    import_subscribers,
    normalize_email,
    remove_subscriber,
    set_subscriber_status,
)

from .conftest import NOW, invoke, write_config
from .helpers.subscribers import FIXTURES, LISTS, copy_fixture, open_store, site, summary  # noqa: F401 (site: the fixture)

LATER = NOW + timedelta(days=1)


def raw_rows(site: Path) -> tuple[list[tuple], list[tuple]]:
    """Every subscriber and subscription row, as the database holds them."""
    store = StateStore.open(site / ".publisher" / "state.db", check=False)
    try:
        people = store.database.query("SELECT * FROM subscribers ORDER BY id")
        subscriptions = store.database.query("SELECT * FROM subscriptions ORDER BY subscriber_id, list")
    finally:
        store.close()
    return people, subscriptions


# --- addresses and names -------------------------------------------------------


@pytest.mark.parametrize(
    "given, stored",
    [
        ("Someone@EXAMPLE.COM", "Someone@example.com"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("user@BÜCHER.Example", "user@xn--bcher-kva.example"),
        ("First.Last+tag@Sub.Example.ORG", "First.Last+tag@sub.example.org"),
        ("  padded@example.org \t", "padded@example.org"),
    ],
)
def test_normalize_email_keeps_the_local_part_and_lowers_the_domain(given: str, stored: str) -> None:
    assert normalize_email(given) == stored


@pytest.mark.parametrize(
    "given, reason",
    [
        ("", "no email address"),
        ("   ", "no email address"),
        ("not-an-address", "must have an @-sign"),
        ("someone@localhost", "should have a period"),
        ("two..dots@example.org", "two periods in a row"),
        ("Ann <ann@example.org>", "display name"),
        ("ann@example.org\nBcc: victim@example.net", "invalid characters"),
        ("jörg@example.de", "non-ASCII characters, which needs SMTPUTF8"),
    ],
)
def test_invalid_addresses_are_rejected_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(SubscriberError) as caught:
        normalize_email(given)
    assert reason in str(caught.value)
    if given.strip():
        assert repr(given.strip()) in str(caught.value)


def test_clean_name_is_one_line_without_control_characters_and_capped() -> None:
    assert clean_name("Ann\r\nBcc: x@example.org") == "Ann Bcc: x@example.org"
    assert clean_name("  Zoë\x00\x1b[31m  Ünal\u2028 ") == "Zoë [31m Ünal"
    assert clean_name("x" * 500) == "x" * NAME_MAX


def test_split_lists_takes_spaces_and_semicolons_in_order_once() -> None:
    assert split_lists(" weekly;daily  weekly ; ") == ("weekly", "daily")
    assert split_lists("") == ()


# --- reading a CSV (pure) ---------------------------------------------------------


def test_read_csv_reports_bad_rows_by_physical_line() -> None:
    parsed = read_subscriber_csv(
        (FIXTURES / "mixed.csv").read_bytes(),
        "mixed.csv",
        known_lists=("daily", "weekly"),
        default_lists=("daily",),
    )
    assert [str(r) for r in parsed.rejected] == [
        "mixed.csv:5: invalid address 'not-an-address': An email address must have an @-sign.",
        "mixed.csv:6: no email address",
        "mixed.csv:8: unknown list 'gazette' (lists: daily, weekly)",
        "mixed.csv:9: invalid address 'jörg@example.de': the part before the @ has non-ASCII "
        "characters, which needs SMTPUTF8 that not every mail server supports",
        "mixed.csv:12: 4 fields but the header has 3 (a name with a comma in it needs double quotes)",
    ]
    assert [(r.line, r.email, r.name, r.lists) for r in parsed.rows] == [
        (2, "good.one@example.org", "Good One", ("daily",)),
        (3, "good.two@example.org", "Two Lines", ("weekly",)),
        (10, "GOOD.ONE@example.org", "Different Case Local Part", ("weekly",)),
        (11, "good.one@example.org", "Duplicate Of Line 2", ("weekly",)),
        (13, "good.four@example.org", "Four", ("daily",)),
    ]


def test_read_csv_accepts_a_bom_semicolons_and_an_email_address_header() -> None:
    parsed = read_subscriber_csv(
        (FIXTURES / "semicolon-bom.csv").read_bytes(), "s.csv", known_lists=("daily",), default_lists=("daily",)
    )
    assert parsed.rejected == ()
    assert [(r.email, r.name, r.lists) for r in parsed.rows] == [("semi@example.org", "Semi Colon", ("daily",))]


def test_read_csv_refuses_a_file_that_is_not_utf8_naming_the_line() -> None:
    with pytest.raises(SubscriberFileError) as caught:
        read_subscriber_csv((FIXTURES / "latin1.csv").read_bytes(), "latin1.csv", known_lists=("daily",), default_lists=())
    assert str(caught.value).startswith("latin1.csv:3: not UTF-8 text (byte 0xe9)")


def test_read_csv_refuses_a_file_without_an_email_column() -> None:
    with pytest.raises(SubscriberFileError) as caught:
        read_subscriber_csv(b"address,name\nann@example.org,Ann\n", "x.csv", known_lists=(), default_lists=())
    assert str(caught.value) == (
        "x.csv:1: no email column: the first row must be a header such as email,name,lists (found: address, name)"
    )
    with pytest.raises(SubscriberFileError, match="empty"):
        read_subscriber_csv(b"\n\n", "x.csv", known_lists=(), default_lists=())


def test_read_csv_rejects_a_bad_status_or_created() -> None:
    data = b"email,status,created\na@example.org,gone,\nb@example.org,active,yesterday\nc@example.org,Bounced,2020-05-01\n"
    parsed = read_subscriber_csv(data, "s.csv", known_lists=("daily",), default_lists=("daily",))
    assert [str(r) for r in parsed.rejected] == [
        "s.csv:2: status 'gone' is not one of active, pending, unsubscribed, bounced, complained",
        "s.csv:3: created 'yesterday' is not an ISO 8601 date and time",
    ]
    (row,) = parsed.rows
    assert (row.email, row.status, row.created.isoformat()) == ("c@example.org", "bounced", "2020-05-01T00:00:00+00:00")


# --- the store --------------------------------------------------------------------


def test_add_subscriber_creates_once_and_sets_changed_only_on_change(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        first, created = add_subscriber(store.subscribers, "a@example.org", "Ann", ["daily"], source="test", now=NOW)
        assert created
        assert (first.email, first.name, first.status, first.lists, first.source) == (
            "a@example.org", "Ann", "active", ("daily",), "test",
        )
        assert first.created == first.changed == NOW

        again, created = add_subscriber(store.subscribers, "a@example.org", "Other", ["daily"], source="test", now=LATER)
        assert not created
        assert again == first  # the name is not overwritten; nothing changed

        more, _ = add_subscriber(store.subscribers, "a@example.org", "", ["weekly"], source="test", now=LATER)
        assert more.lists == ("daily", "weekly")
        assert (more.created, more.changed) == (NOW, LATER)
        # One mailbox whatever the case: found as written first, and never mailed as another spelling.
        assert store.subscribers.find("A@example.org").email == "a@example.org"
    finally:
        store.close()


def test_list_audience_is_active_addresses_with_an_active_subscription(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        with store.transaction():
            for email in ("a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"):
                add_subscriber(store.subscribers, email, "", ["daily", "weekly"], source="test", now=NOW)
            add_subscriber(store.subscribers, "f@example.org", "", ["daily"], source="test", now=NOW, status="pending")
        set_subscriber_status(store.subscribers, "b@example.org", "bounced", now=LATER)
        set_subscriber_status(store.subscribers, "c@example.org", "complained", now=LATER)
        remove_subscriber(store.subscribers, "d@example.org", "daily", now=LATER)
        remove_subscriber(store.subscribers, "e@example.org", now=LATER)

        assert [s.email for s in store.subscribers.audience("daily")] == ["a@example.org"]
        assert [s.email for s in store.subscribers.audience("weekly")] == ["a@example.org", "d@example.org"]
        assert [s.email for s in store.subscribers.matching(status="bounced")] == ["b@example.org"]
        assert [s.email for s in store.subscribers.matching("daily")] == [
            "a@example.org", "b@example.org", "c@example.org", "f@example.org",
        ]
        e = store.subscribers.find("e@example.org")
        assert (e.status, e.lists, e.changed) == ("unsubscribed", (), LATER)
    finally:
        store.close()


def test_set_subscriber_status_reports_whether_it_changed(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        add_subscriber(store.subscribers, "a@example.org", "", ["daily"], source="test", now=NOW)
        assert set_subscriber_status(store.subscribers, "a@example.org", "bounced", now=LATER) is True
        assert set_subscriber_status(store.subscribers, "a@example.org", "bounced", now=LATER + timedelta(hours=1)) is False
        assert set_subscriber_status(store.subscribers, "nobody@example.org", "bounced", now=LATER) is False
        bounced = store.subscribers.find("a@example.org")
        assert (bounced.status, bounced.changed, bounced.lists) == ("bounced", LATER, ("daily",))
        with pytest.raises(ValueError):
            set_subscriber_status(store.subscribers, "a@example.org", "gone", now=LATER)
    finally:
        store.close()


def test_pending_address_is_not_activated_by_import_but_is_by_an_explicit_add(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        add_subscriber(store.subscribers, "p@example.org", "", ["daily"], source="form", now=NOW, status="pending")
        imported, _ = add_subscriber(store.subscribers, "p@example.org", "", ["daily", "weekly"], source="import", now=LATER)
        assert (imported.status, imported.lists) == ("pending", ("daily", "weekly"))
        added, _ = add_subscriber(
            store.subscribers,
            "p@example.org", "", ["daily"], source="cli", now=LATER, reactivate=("unsubscribed", "pending")
        )
        assert added.status == "active"
    finally:
        store.close()


def test_a_read_only_store_refuses_subscriber_changes(site: Path) -> None:
    open_store(site).close()
    store = StateStore.open(site / ".publisher" / "state.db", readonly=True)
    try:
        with pytest.raises(Exception, match="read-only"):
            add_subscriber(store.subscribers, "a@example.org", "", ["daily"], source="test", now=NOW)
    finally:
        store.close()


# --- import -------------------------------------------------------------------------


def test_import_reports_bad_rows_and_imports_the_good_ones(site: Path) -> None:
    copy_fixture(site, "mixed.csv")

    result = invoke("subscribers", "import", "mixed.csv")

    assert result.exit_code == 1
    assert [line.split(": ", 1)[0] for line in result.stderr.splitlines()] == [
        "mixed.csv:5", "mixed.csv:6", "mixed.csv:8", "mixed.csv:9", "mixed.csv:12",
    ]
    assert result.stdout == "Imported 3 subscribers (0 already there, 2 duplicate rows, 5 rows rejected)\n"
    assert summary(site) == {
        # the duplicates on lines 10 (another case: one mailbox) and 11 added weekly but did not rename
        "good.one@example.org": ("Good One", ("daily", "weekly"), "active"),
        "good.two@example.org": ("Two Lines", ("weekly",), "active"),
        # no lists named: every configured list
        "good.four@example.org": ("Four", ("daily", "weekly"), "active"),
    }


def test_import_list_option_is_the_list_of_rows_that_name_none(site: Path) -> None:
    copy_fixture(site, "good.csv")
    result = invoke("subscribers", "import", "good.csv", "--list", "weekly")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Imported 4 subscribers (0 already there)\n"
    assert summary(site) == {
        "ann.reader@example.org": ("Ann Reader", ("daily",), "active"),
        "Someone@example.com": ("Some One", ("daily", "weekly"), "active"),
        "user@xn--bcher-kva.example": ("Bücher, Leser", ("daily", "weekly"), "active"),
        "carol@example.net": ("", ("weekly",), "active"),
    }


def test_importing_the_same_file_twice_changes_nothing(site: Path) -> None:
    copy_fixture(site, "mixed.csv")
    first = invoke("subscribers", "import", "mixed.csv")
    assert first.exit_code == 1
    before = raw_rows(site)

    second = invoke("subscribers", "import", "mixed.csv")

    assert second.exit_code == 1
    assert second.stderr == first.stderr
    assert second.stdout == "Imported 0 subscribers (3 already there, 2 duplicate rows, 5 rows rejected)\n"
    assert raw_rows(site) == before


def test_reimport_a_day_later_leaves_changed_times_alone(site: Path) -> None:
    data = (FIXTURES / "good.csv").read_bytes()
    parsed = read_subscriber_csv(data, "good.csv", known_lists=("daily", "weekly"), default_lists=("daily",))
    store = open_store(site)
    try:
        report = import_subscribers(store, parsed.rows, source="import:good.csv", now=NOW)
        assert (report.added, report.unchanged) == (4, 0)
        before = raw_rows(site)
        report = import_subscribers(store, parsed.rows, source="import:good.csv", now=LATER)
        assert (report.added, report.updated, report.unchanged) == (0, 0, 4)
    finally:
        store.close()
    after = raw_rows(site)
    assert after == before
    assert {row[6] for row in after[0]} == {NOW.isoformat()}  # subscribers.changed
    assert {row[-1] for row in after[1]} == {NOW.isoformat()}  # subscriptions.changed


def test_import_does_not_resubscribe_someone_who_left(site: Path) -> None:
    copy_fixture(site, "good.csv")
    assert invoke("subscribers", "import", "good.csv").exit_code == 0
    assert invoke("subscribers", "remove", "ann.reader@example.org").exit_code == 0
    assert invoke("subscribers", "remove", "Someone@example.com", "--list", "weekly").exit_code == 0
    store = open_store(site)
    try:
        set_subscriber_status(store.subscribers, "carol@example.net", "complained", now=NOW)
    finally:
        store.close()
    before = raw_rows(site)

    result = invoke("subscribers", "import", "good.csv")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "Imported 0 subscribers (4 already there, 2 of them unsubscribed or bounced and left so)\n"
    )
    assert raw_rows(site) == before
    people = summary(site)
    assert people["ann.reader@example.org"] == ("Ann Reader", (), "unsubscribed")
    assert people["Someone@example.com"] == ("Some One", ("daily",), "active")
    assert people["carol@example.net"] == ("", ("daily", "weekly"), "complained")


def test_import_records_a_suppression_but_never_lifts_one(site: Path) -> None:
    (site / "a.csv").write_text("email,lists\nann@example.org,daily weekly\nbob@example.org,daily\n", encoding="utf-8")
    assert invoke("subscribers", "import", "a.csv").exit_code == 0
    (site / "b.csv").write_text(
        "email,lists,status\nann@example.org,daily,unsubscribed\nbob@example.org,daily,bounced\n", encoding="utf-8"
    )
    result = invoke("subscribers", "import", "b.csv")
    assert result.stdout == (
        "Imported 0 subscribers (0 already there, 2 updated, 2 marked unsubscribed or bounced in the file, kept so)\n"
    )
    assert summary(site) == {
        "ann@example.org": ("", (), "unsubscribed"),
        "bob@example.org": ("", ("daily",), "bounced"),
    }
    # and importing the first file again brings neither back
    invoke("subscribers", "import", "a.csv")
    assert summary(site)["ann@example.org"][2] == "unsubscribed"
    assert summary(site)["bob@example.org"][2] == "bounced"


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("latin1.csv", "latin1.csv:3: not UTF-8 text (byte 0xe9); save the file as CSV UTF-8 and import it again\n"),
        (
            "no-email-column.csv",
            "no-email-column.csv:1: no email column: the first row must be a header such as "
            "email,name,lists (found: address, name, lists)\n",
        ),
    ],
)
def test_an_unreadable_csv_exits_2_and_imports_nothing(site: Path, fixture: str, message: str) -> None:
    copy_fixture(site, fixture)
    result = invoke("subscribers", "import", fixture)
    assert result.exit_code == 2
    assert result.stderr == message
    assert result.stdout == ""
    assert not (site / ".publisher").exists()


def test_import_of_a_missing_file_exits_2(site: Path) -> None:
    result = invoke("subscribers", "import", "nowhere.csv")
    assert result.exit_code == 2
    assert result.stderr == "nowhere.csv: cannot read: No such file or directory\n"


def test_import_reads_standard_input(site: Path) -> None:
    result = invoke("subscribers", "import", "-", input=b"email\nin@example.org\n")
    assert result.exit_code == 0, result.stderr
    store = open_store(site)
    try:
        assert store.subscribers.find("in@example.org").source == "import:stdin"
    finally:
        store.close()


@pytest.mark.slow
def test_a_five_thousand_row_import(site: Path) -> None:
    lines = ["email,name,lists"]
    lines += [f"reader{i}@Example{i % 7}.ORG,Reader {i},{'daily' if i % 2 else 'daily;weekly'}" for i in range(5000)]
    (site / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = invoke("subscribers", "import", "big.csv")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Imported 5000 subscribers (0 already there)\n"
    store = open_store(site)
    try:
        assert len(store.subscribers.audience("daily")) == 5000
        weekly = store.subscribers.audience("weekly")
        assert len(weekly) == 2500
        assert weekly[0].email == "reader0@example0.org"
    finally:
        store.close()
    again = invoke("subscribers", "import", "big.csv")
    assert again.stdout == "Imported 0 subscribers (5000 already there)\n"


# --- add and remove -----------------------------------------------------------------


def test_add_defaults_to_every_list_and_normalises(site: Path) -> None:
    result = invoke("subscribers", "add", "Ann@EXAMPLE.org", "--name", "Ann\nBcc: evil@example.net")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Added Ann@example.org to daily, weekly\n"
    assert summary(site) == {"Ann@example.org": ("Ann Bcc: evil@example.net", ("daily", "weekly"), "active")}

    again = invoke("subscribers", "add", "Ann@example.org", "--list", "daily")
    assert again.stdout == "Ann@example.org is already on daily, weekly\n"


def test_add_refuses_an_invalid_address_or_an_unknown_list(site: Path) -> None:
    bad = invoke("subscribers", "add", "nobody")
    assert bad.exit_code == 2
    assert bad.stderr == "invalid address 'nobody': An email address must have an @-sign.\n"

    unknown = invoke("subscribers", "add", "a@example.org", "--list", "daily", "--list", "monthly")
    assert unknown.exit_code == 2
    assert unknown.stderr == "publisher.toml: no list 'monthly' (lists: daily, weekly)\n"
    for command in (["list"], ["export"], ["remove", "a@example.org"], ["import", "x.csv"]):
        result = invoke("subscribers", *command, "--list", "monthly")
        assert result.exit_code == 2, command
        assert "(lists: daily, weekly)" in result.stderr
    assert not (site / ".publisher").exists()


def test_add_brings_back_an_unsubscribed_address(site: Path) -> None:
    invoke("subscribers", "add", "a@example.org")
    invoke("subscribers", "remove", "a@example.org")
    assert summary(site)["a@example.org"][1:] == ((), "unsubscribed")

    result = invoke("subscribers", "add", "a@example.org", "--list", "weekly")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Subscribed a@example.org again (was unsubscribed): on weekly\n"
    assert summary(site)["a@example.org"][1:] == (("weekly",), "active")


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_add_brings_back_a_bounced_or_complained_address_only_with_force(site: Path, status: str) -> None:
    invoke("subscribers", "add", "a@example.org", "--list", "daily")
    store = open_store(site)
    try:
        set_subscriber_status(store.subscribers, "a@example.org", status, now=NOW)
    finally:
        store.close()
    before = raw_rows(site)

    refused = invoke("subscribers", "add", "a@example.org", "--name", "New Name")
    assert refused.exit_code == 1
    assert refused.stderr == f"a@example.org: {status}, so not added (--force adds it anyway)\n"
    assert raw_rows(site) == before

    forced = invoke("subscribers", "add", "a@example.org", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert summary(site)["a@example.org"] == ("", ("daily", "weekly"), "active")


def test_remove_from_one_list_keeps_the_others(site: Path) -> None:
    invoke("subscribers", "add", "a@example.org", "--name", "Ann")

    result = invoke("subscribers", "remove", "a@example.org", "--list", "daily")
    assert result.exit_code == 0
    assert result.stdout == "Unsubscribed a@example.org from daily; still on weekly\n"
    assert summary(site)["a@example.org"] == ("Ann", ("weekly",), "active")

    again = invoke("subscribers", "remove", "a@example.org", "--list", "daily")
    assert again.stdout == "a@example.org was not on daily\n"

    last = invoke("subscribers", "remove", "a@example.org", "--list", "weekly")
    assert last.stdout == "Unsubscribed a@example.org from weekly, the last list it was on\n"
    assert summary(site)["a@example.org"] == ("Ann", (), "unsubscribed")


def test_remove_of_an_unknown_address_exits_1(site: Path) -> None:
    invoke("subscribers", "add", "a@example.org")
    result = invoke("subscribers", "remove", "b@example.org")
    assert result.exit_code == 1
    assert result.stderr == "b@example.org: no such subscriber\n"


# --- list and export ----------------------------------------------------------------


@pytest.fixture
def populated(site: Path) -> Path:
    copy_fixture(site, "good.csv")
    assert invoke("subscribers", "import", "good.csv").exit_code == 0
    invoke("subscribers", "remove", "carol@example.net", "--list", "weekly")
    invoke("subscribers", "remove", "ann.reader@example.org")
    return site


def test_list_as_plain_aligned_text_when_not_a_terminal(populated: Path) -> None:
    result = invoke("subscribers", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["email", "name", "lists", "status", "created"]
    assert [line.split()[0] for line in lines[1:]] == [
        "ann.reader@example.org", "Someone@example.com", "user@xn--bcher-kva.example", "carol@example.net",
    ]
    name_column = lines[0].index("name")
    assert lines[2][name_column:].startswith("Some One ")
    assert lines[3][name_column:].startswith("Bücher, Leser ")
    assert "─" not in result.stdout and "\x1b" not in result.stdout


def test_list_on_a_terminal_is_a_rich_table_showing_names_literally(
    populated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("subscribers", "add", "markup@example.org", "--name", "[bold]Not bold[/]")
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "160")
    result = invoke("subscribers", "list", "--status", "active")
    assert result.exit_code == 0
    assert "┃ email" in result.stdout
    assert "[bold]Not bold[/]" in result.stdout
    assert "user@xn--bcher-kva.example" in result.stdout  # whole, never cut short
    assert "4 subscribers" in result.stdout  # ann.reader unsubscribed: not shown


def test_list_filters_and_csv_format(populated: Path) -> None:
    result = invoke("subscribers", "list", "--list", "daily", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["email", "name", "lists", "status", "created"]
    assert [(r["email"], r["lists"], r["status"]) for r in rows] == [
        ("Someone@example.com", "daily weekly", "active"),
        ("user@xn--bcher-kva.example", "daily weekly", "active"),
        ("carol@example.net", "daily", "active"),
    ]

    weekly = invoke("subscribers", "list", "--list", "weekly", "--format", "csv")
    assert [r["email"] for r in csv.DictReader(io.StringIO(weekly.stdout))] == [
        "Someone@example.com", "user@xn--bcher-kva.example",
    ]


def test_list_json_format_with_a_status_filter(populated: Path) -> None:
    result = invoke("subscribers", "list", "--status", "unsubscribed", "--format", "json")
    assert result.exit_code == 0
    (record,) = json.loads(result.stdout)
    assert record["email"] == "ann.reader@example.org"
    assert (record["name"], record["lists"], record["status"], record["source"]) == (
        "Ann Reader", [], "unsubscribed", "import:good.csv",
    )
    assert record["created"].endswith("+00:00") and record["changed"] >= record["created"]

    everyone = json.loads(invoke("subscribers", "list", "--format", "json").stdout)
    assert len(everyone) == 4
    assert json.loads(invoke("subscribers", "list", "--status", "bounced", "--format", "json").stdout) == []


def test_list_of_a_new_site_writes_nothing(site: Path) -> None:
    result = invoke("subscribers", "list", "--format", "csv")
    assert result.exit_code == 0
    assert result.stdout == "email,name,lists,status,created\n"
    assert not (site / ".publisher").exists()


def test_export_then_import_into_a_fresh_site_gives_the_same_subscribers(
    populated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(populated)
    try:
        set_subscriber_status(store.subscribers, "user@xn--bcher-kva.example", "bounced", now=NOW)
    finally:
        store.close()
    exported = invoke("subscribers", "export")
    assert exported.exit_code == 0
    result = invoke("subscribers", "export", "backup/all.csv")
    assert result.stdout == "Exported 4 subscribers to backup/all.csv\n"
    backup = populated / "backup" / "all.csv"
    assert backup.read_text(encoding="utf-8") == exported.stdout
    assert backup.stat().st_mode & 0o777 == 0o600
    original = summary(populated)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_config(fresh, LISTS)
    monkeypatch.chdir(fresh)
    imported = invoke("subscribers", "import", str(backup))

    assert imported.exit_code == 0, imported.stderr
    # Two of the four had left (unsubscribed, complained): imported as such.
    assert imported.stdout == "Imported 4 subscribers (0 already there, 2 marked unsubscribed or bounced in the file, kept so)\n"
    assert summary(fresh) == original
    assert invoke("subscribers", "export").stdout == exported.stdout  # created times too
    assert [s.email for s in _audience(fresh, "daily")] == ["Someone@example.com", "carol@example.net"]


def test_export_of_one_list(populated: Path) -> None:
    result = invoke("subscribers", "export", "--list", "weekly")
    assert [r["email"] for r in csv.DictReader(io.StringIO(result.stdout))] == [
        "Someone@example.com", "user@xn--bcher-kva.example",
    ]


def _audience(site: Path, list_name: str):
    store = open_store(site)
    try:
        return store.subscribers.audience(list_name)
    finally:
        store.close()


# --- spreadsheet formulas in exported cells -------------------------------------------

FORMULA_NAMES = ['=HYPERLINK("http://x","y")', "-1+2", "@SUM(A1)", "+31 20 555 0100", "O'Brien", "'=quoted already"]


@pytest.mark.parametrize(
    "value", ["", "'", "''", "=", "'=", "''=1", "\t1", "\r=1", "-", "O'Brien", "'O'Brien", "plain", *FORMULA_NAMES]
)
def test_spreadsheet_safe_cells_never_start_a_formula_and_read_back_exactly(value: str) -> None:
    cell = spreadsheet_safe(value)
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert from_spreadsheet_cell(cell) == value


def test_export_keeps_formulas_from_running_and_imports_back_the_same_names(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, name in enumerate(FORMULA_NAMES):
        assert invoke("subscribers", "add", f"reader{i}@example.org", f"--name={name}").exit_code == 0
    assert invoke("subscribers", "add", "--name=Dash", "--", "-dash@example.org").exit_code == 0
    original = summary(site)
    assert original["reader0@example.org"][0] == '=HYPERLINK("http://x","y")'

    exported = invoke("subscribers", "export")

    rows = list(csv.reader(io.StringIO(exported.stdout)))[1:]
    assert [(row[0], row[1]) for row in rows] == [
        ("reader0@example.org", '\'=HYPERLINK("http://x","y")'),
        ("reader1@example.org", "'-1+2"),
        ("reader2@example.org", "'@SUM(A1)"),
        ("reader3@example.org", "'+31 20 555 0100"),
        ("reader4@example.org", "O'Brien"),
        ("reader5@example.org", "''=quoted already"),
        ("'-dash@example.org", "Dash"),
    ]
    assert all(cell[:1] not in ("=", "+", "-", "@", "\t", "\r") for row in rows for cell in row)

    (site / "all.csv").write_text(exported.stdout, encoding="utf-8")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write_config(fresh, LISTS)
    monkeypatch.chdir(fresh)
    imported = invoke("subscribers", "import", str(site / "all.csv"))

    assert imported.exit_code == 0, imported.stderr
    assert summary(fresh) == original
    assert invoke("subscribers", "export").stdout == exported.stdout
