"""Classifying what comes back (a corpus of real bounces from many mail
servers, malformed DSNs made by hypothesis) and the VERP token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.config_values import LOCAL_PART_MAX
from publisher.errors import ConfigError
from publisher.mail.bounces.classify import classify, kind_of_status
from publisher.mail.bounces.verp import find_token, looks_like_verp, make_token, verp_sender

from .conftest import DATA, write_config

CORPUS = DATA / "bounces"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
SECRET = b"a-test-secret-that-is-long-enough"


def test_every_corpus_file_has_an_expectation_and_a_source() -> None:
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert files == set(EXPECTED)
    assert all(entry["source"] and entry["mta"] for entry in EXPECTED.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_corpus_is_classified_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    found = classify((CORPUS / name).read_bytes())
    assert found.kind == expected["kind"], found.reason
    if expected["kind"] in ("bounce", "complaint"):
        emails = [f.email.lower() for f in found.failures]
        assert expected["recipient"] == (emails[0] if emails else "")
        worst = found.worst
        assert (worst.kind, worst.status) == (expected["class"], expected["status"])
    else:
        assert found.failures == ()


def test_the_postfix_dsn_quotes_the_original_and_its_verp_envelope() -> None:
    found = classify((CORPUS / "postfix-debian-unknown-user.eml").read_bytes())
    assert found.quoted_message_id == "<abc.123@publisher.test>"
    assert found.quoted_to == "ghost@local.test"
    assert "bounces+1.abcdefghijklmnop@bounce.test" in found.envelope
    assert found.worst.diagnostic == 'unknown user: "ghost"'


@pytest.mark.parametrize(
    ("status", "action", "kind"),
    [
        ("5.1.1", "failed", "hard"), ("5.1.2", "failed", "hard"), ("5.0.0", "failed", "hard"),
        ("4.2.2", "failed", "soft"), ("5.2.2", "failed", "soft"), ("5.2.3", "failed", "soft"),
        ("5.7.1", "failed", "soft"), ("5.1.1", "delayed", "soft"), ("", "failed", "hard"),
        ("4.4.7 (expired)", "failed", "soft"),
    ],
)
def test_hard_or_soft_follows_the_status_code(status: str, action: str, kind: str) -> None:
    assert kind_of_status(status, action) == kind


# --- malformed DSNs: never an exception, never a failure for a made-up address -----------

_field_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@st.composite
def malformed_dsn(draw: st.DrawFn) -> bytes:
    fields = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["Final-Recipient", "Action", "Status", "Diagnostic-Code", "Original-Recipient", "X-Junk"]),
                _field_text,
            ),
            max_size=8,
        )
    )
    block = "".join(f"{name}: {value}\n" for name, value in fields)
    boundary = draw(st.sampled_from(['"B"', "B", '""', '"B', "missing"]))
    head = draw(st.sampled_from(["multipart/report; report-type=delivery-status", "multipart/report", "multipart/mixed"]))
    tail = draw(st.sampled_from(["--B--\n", "", "--B\n", "--B\nContent-Type: message/rfc822\n\n"]))
    noise = draw(st.binary(max_size=200))
    text = (
        f"From: MAILER-DAEMON@example.net\nContent-Type: {head}; boundary={boundary}\n\n"
        f"--B\nContent-Type: message/delivery-status\n\n{block}\n{tail}"
    )
    return text.encode("utf-8", "surrogatepass") + noise


@pytest.mark.slow
@given(malformed_dsn())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_malformed_dsns_never_raise_and_name_only_what_they_contain(data: bytes) -> None:
    found = classify(data)
    assert found.kind in ("bounce", "complaint", "auto-reply", "not a bounce")
    text = data.decode("utf-8", "replace").lower()
    for failure in found.failures:
        assert failure.kind in ("hard", "soft")
        assert failure.email.lower() in text


@pytest.mark.slow
@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_any_bytes_are_classified_without_an_exception(data: bytes) -> None:
    assert classify(data).kind in ("bounce", "complaint", "auto-reply", "not a bounce")


# --- VERP ----------------------------------------------------------------------------------


def test_a_verp_address_round_trips_and_fits_in_64_octets() -> None:
    for delivery_id in (0, 1, 36, 10**6, 2**63 - 1):
        sender = verp_sender("a" * 33 + "@example.org", delivery_id, "Ann@Example.net", SECRET)
        local = sender.split("@")[0]
        assert len(local) <= LOCAL_PART_MAX
        token = find_token([f"<{sender}>"], "a" * 33 + "@example.org")
        assert token is not None and token.delivery_id == delivery_id
        assert token.valid_for("ann@example.net", SECRET)


def test_a_verp_token_survives_case_folding_but_not_tampering() -> None:
    sender = verp_sender("bounces@example.org", 42, "ann@example.net", SECRET)
    assert find_token([sender.upper()], "bounces@example.org").valid_for("ann@example.net", SECRET)
    token = find_token([sender], "bounces@example.org")
    assert not token.valid_for("bob@example.net", SECRET)
    assert not token.valid_for("ann@example.net", b"another-secret-long-enough")
    local, domain = sender.split("@")
    other_id = local.replace("+16.", "+17.")
    assert not find_token([f"{other_id}@{domain}"], "bounces@example.org").valid_for("ann@example.net", SECRET)
    assert find_token(["bounces+zz@example.org"], "bounces@example.org") is None
    assert looks_like_verp("bounces+zz@example.org", "bounces@example.org")
    assert find_token([sender], "bounces@other.example") is None


def test_make_token_is_lower_case_letters_and_digits() -> None:
    token = make_token(123456, "ann@example.net", SECRET)
    assert token == token.lower() and token.replace(".", "").isalnum()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"Bounces <bounces@example.org>"', "must be a plain address"),
        ('"bounces+x@example.org"', "must not contain '+'"),
        ('"' + "b" * 34 + '@example.org"', "must be at most 33 characters"),
    ],
)
def test_the_bounce_address_must_leave_room_for_the_token(tmp_path: Path, value: str, problem: str) -> None:
    path = write_config(tmp_path, f"[mail]\nbounce_address = {value}\n")
    from publisher.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(line.startswith("[mail] bounce_address: ") and problem in line for line in caught.value.problems)


def test_a_bounces_job_needs_a_mailbox(tmp_path: Path) -> None:
    from publisher.config import load_config

    path = write_config(tmp_path, '[jobs]\nbounces = "every 15 minutes"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "[jobs] bounces: needs a bounce mailbox: [bounces] maildir, mbox, or a [bounces.imap] or [bounces.pop3] table"
    ]
    write_config(tmp_path, '[jobs]\nbounces = "every 15 minutes"\n[bounces]\nmaildir = "bounces"\n')
    assert load_config(path).jobs.bounces == "every 15 minutes"
