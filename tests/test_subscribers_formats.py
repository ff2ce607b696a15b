"""Subscriber files exported by other tools: Mailchimp, Substack, Buttondown, listmonk.

Each fixture under tests/data/subscribers/ follows the columns of that tool's
export, with a few rows and at least one the tool marks as not to be mailed:
such a row must never come in as an active subscriber. The command line runs
in-process with click's CliRunner, against a real SQLite file under tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.mail.subscriber_csv import ParsedFile, read_subscriber_csv
from publisher.mail.subscribers import SubscriberFileError

from .conftest import invoke
from .helpers.subscribers import FIXTURES, copy_fixture, open_store, site, summary  # noqa: F401 (site: the fixture)


def parse(data: bytes, shown: str = "x.csv") -> ParsedFile:
    return read_subscriber_csv(data, shown, known_lists=("daily", "weekly"), default_lists=("daily",))


def parse_fixture(name: str) -> ParsedFile:
    return parse((FIXTURES / name).read_bytes(), name)


def statuses(parsed: ParsedFile) -> dict[str, str]:
    return {row.email: row.status for row in parsed.rows}


def audience(site: Path, list_name: str) -> list[str]:
    store = open_store(site)
    try:
        return [s.email for s in store.subscribers.audience(list_name)]
    finally:
        store.close()


# --- Mailchimp ------------------------------------------------------------------


def test_mailchimp_names_come_from_first_name_and_last_name() -> None:
    parsed = parse_fixture("mailchimp-subscribed.csv")
    assert parsed.rejected == ()
    assert [(r.email, r.name, r.lists, r.status) for r in parsed.rows] == [
        ("ada@example.org", "Ada Lovelace", ("daily",), "active"),
        ("grace@example.org", "Grace", ("daily",), "active"),
        ("plain@example.org", "", ("daily",), "active"),
        ("zoe@example.net", "Zoë van Ünal", ("daily",), "active"),
    ]


@pytest.mark.parametrize(
    "fixture, expected",
    [
        (
            "mailchimp-unsubscribed.csv",
            {"left@example.org": ("Lee Left", "unsubscribed"), "ada.old@example.org": ("Ada Byron", "unsubscribed")},
        ),
        ("mailchimp-cleaned.csv", {"gone@example.com": ("Gone Away", "bounced")}),
    ],
)
def test_mailchimp_unsubscribed_and_cleaned_members_keep_their_status(
    fixture: str, expected: dict[str, tuple[str, str]]
) -> None:
    parsed = parse_fixture(fixture)
    assert parsed.rejected == ()
    assert {r.email: (r.name, r.status) for r in parsed.rows} == expected


def test_a_mailchimp_export_imported_file_by_file_mails_only_the_subscribed(site: Path) -> None:
    # Already here and active; Mailchimp says this reader left.
    assert invoke("subscribers", "add", "left@example.org", "--name", "Lee").exit_code == 0
    for name in ("mailchimp-subscribed.csv", "mailchimp-unsubscribed.csv", "mailchimp-cleaned.csv"):
        copy_fixture(site, name)

    subscribed = invoke("subscribers", "import", "mailchimp-subscribed.csv")
    unsubscribed = invoke("subscribers", "import", "mailchimp-unsubscribed.csv")
    cleaned = invoke("subscribers", "import", "mailchimp-cleaned.csv")

    assert [r.exit_code for r in (subscribed, unsubscribed, cleaned)] == [0, 0, 0], unsubscribed.stderr
    assert subscribed.stdout == "Imported 4 subscribers (0 already there)\n"
    assert unsubscribed.stdout == (
        "Imported 1 subscriber (0 already there, 1 updated, 2 marked unsubscribed or bounced in the file, kept so)\n"
    )
    people = summary(site)
    assert people["left@example.org"] == ("Lee", (), "unsubscribed")
    assert people["ada.old@example.org"] == ("Ada Byron", (), "unsubscribed")
    assert people["gone@example.com"][2] == "bounced"
    assert people["ada@example.org"] == ("Ada Lovelace", ("daily", "weekly"), "active")
    expected = ["ada@example.org", "grace@example.org", "plain@example.org", "zoe@example.net"]
    assert audience(site, "daily") == expected

    # An old copy of the export that still has them subscribed changes nothing.
    (site / "old.csv").write_text(
        '"Email Address","First Name","Last Name"\nleft@example.org,Lee,Left\ngone@example.com,Gone,Away\n',
        encoding="utf-8",
    )
    again = invoke("subscribers", "import", "old.csv")
    assert again.stdout == "Imported 0 subscribers (2 already there, 2 of them unsubscribed or bounced and left so)\n"
    assert audience(site, "daily") == expected


# --- Substack -------------------------------------------------------------------


def test_substack_email_disabled_is_never_imported_as_active(site: Path) -> None:
    copy_fixture(site, "substack.csv")

    result = invoke("subscribers", "import", "substack.csv")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Imported 5 subscribers (0 already there, 2 marked unsubscribed or bounced in the file, kept so)\n"
    assert {email: status for email, (_, _, status) in summary(site).items()} == {
        "reader@example.org": "active",
        "patron@example.org": "active",
        "quiet@example.org": "unsubscribed",
        # active_subscription is the paid plan; a lapsed one still gets the free posts
        "lapsed@example.org": "active",
        "muted@example.org": "unsubscribed",
    }
    assert audience(site, "daily") == ["reader@example.org", "patron@example.org", "lapsed@example.org"]


def test_substack_email_disabled_stops_mail_to_an_address_already_here(site: Path) -> None:
    invoke("subscribers", "add", "quiet@example.org", "--name", "Quiet Reader")
    copy_fixture(site, "substack.csv")
    invoke("subscribers", "import", "substack.csv")
    assert summary(site)["quiet@example.org"] == ("Quiet Reader", (), "unsubscribed")
    assert "quiet@example.org" not in audience(site, "weekly")


# --- Buttondown and listmonk ----------------------------------------------------


def test_buttondown_subscriber_types() -> None:
    parsed = parse_fixture("buttondown.csv")
    assert parsed.rejected == ()
    assert statuses(parsed) == {
        "regular@example.org": "active",
        "premium@example.org": "active",
        "new@example.org": "pending",
        "leaver@example.org": "unsubscribed",
        "removed@example.org": "unsubscribed",
    }


def test_buttondown_newer_columns_email_address_and_type() -> None:
    data = (
        b"id,email_address,type,creation_date\n"
        b"1,a@example.org,regular,2024-01-01T00:00:00Z\n"
        b"2,b@example.org,Unsubscribed,2024-01-01T00:00:00Z\n"
        b"3,c@example.org,spammy,2024-01-01T00:00:00Z\n"
        b"4,d@example.org,undeliverable,2024-01-01T00:00:00Z\n"
        b"5,e@example.org,past_due,2024-01-01T00:00:00Z\n"
    )
    assert statuses(parse(data)) == {
        "a@example.org": "active",
        "b@example.org": "unsubscribed",
        "c@example.org": "unsubscribed",
        "d@example.org": "bounced",
        "e@example.org": "active",
    }


def test_listmonk_blocklisted_and_disabled_are_not_active() -> None:
    parsed = parse_fixture("listmonk.csv")
    assert parsed.rejected == ()
    assert [(r.email, r.name, r.status) for r in parsed.rows] == [
        ("kim@example.org", "Kim Lee", "active"),
        ("blocked@example.org", "Blocked Person", "unsubscribed"),
        ("off@example.org", "Switched Off", "unsubscribed"),
    ]


def test_ghost_subscribed_to_emails_false_and_an_opt_out_are_unsubscribed() -> None:
    ghost = (
        b"id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,labels\n"
        b"1,a@example.org,Ann,,true,false,,2024-01-01T00:00:00.000Z,,\n"
        b"2,b@example.org,Bo,,false,false,,2024-01-01T00:00:00.000Z,,\n"
    )
    assert statuses(parse(ghost)) == {"a@example.org": "active", "b@example.org": "unsubscribed"}
    other = b"email,opt_out,unsubscription_date\na@example.org,False,\nb@example.org,True,\nc@example.org,,2024-05-01\n"
    assert statuses(parse(other)) == {"a@example.org": "active", "b@example.org": "unsubscribed", "c@example.org": "unsubscribed"}


# --- headers and status columns in general --------------------------------------


def test_headers_match_whatever_their_case_spaces_and_underscores() -> None:
    data = b" E-Mail ,  First_Name ,LAST NAME, Status \nann@example.org,Ann,Reader, Subscribed \n"
    (row,) = parse(data).rows
    assert (row.email, row.name, row.status) == ("ann@example.org", "Ann Reader", "active")


def test_a_name_column_wins_over_first_and_last_when_it_has_a_value() -> None:
    data = b"name,first name,last name,email\nAnn R.,Ann,Reader,a@example.org\n,Bo,Berg,b@example.org\n"
    assert [row.name for row in parse(data).rows] == ["Ann R.", "Bo Berg"]


def test_the_strictest_of_several_status_columns_wins() -> None:
    data = (
        b"email,status,email_disabled,UNSUB_TIME,CLEAN_TIME\n"
        b"a@example.org,active,true,,\n"
        b"b@example.org,subscribed,false,2024-01-01 00:00:00,\n"
        b"c@example.org,unsubscribed,true,,2024-01-01 00:00:00\n"
        b"d@example.org,Active,False,,\n"
        b"e@example.org,,,,\n"
    )
    assert statuses(parse(data)) == {
        "a@example.org": "unsubscribed",
        "b@example.org": "unsubscribed",
        "c@example.org": "bounced",
        "d@example.org": "active",
        "e@example.org": "active",
    }


def test_a_status_word_not_known_rejects_the_row_rather_than_guess() -> None:
    data = b"email,subscriber_type,email_disabled\na@example.org,vip,false\nb@example.org,regular,maybe\n"
    parsed = parse(data)
    assert parsed.rows == ()
    assert [str(r) for r in parsed.rejected] == [
        "x.csv:2: subscriber_type 'vip' is not one of active, pending, unsubscribed, bounced, complained",
        "x.csv:3: email_disabled 'maybe' is neither true nor false",
    ]


def test_a_repeated_column_is_refused_only_when_it_is_read() -> None:
    # Mailchimp repeats some of its own columns; they are not read.
    ignored = parse(b'"Email Address",UNSUB_REASON,UNSUB_REASON\na@example.org,,\n')
    assert [row.email for row in ignored.rows] == ["a@example.org"]

    with pytest.raises(SubscriberFileError) as caught:
        parse(b"email,First Name,first_name\na@example.org,Ann,Ann\n")
    assert str(caught.value) == "x.csv:1: column 'first name' appears more than once"
