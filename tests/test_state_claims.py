"""Deliveries claimed in leased batches by several senders (the store's
side of ``publisher.mail.send.Claims``), on both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from publisher.mail.subscribers import add_subscriber
from publisher.state.store import StateStore

from .conftest import NOW

LEASE = timedelta(minutes=5)


def issue_with(tmp_path: Path, recipients: int) -> tuple[StateStore, int]:
    store = StateStore.open(tmp_path / "state.db")
    with store.transaction():
        for n in range(recipients):
            add_subscriber(store.subscribers, f"r{n}@example.net", "", ["daily"], source="test", now=NOW)
        issue_id = store.issues.create("daily", 1, NOW, "Subject", [])
        store.deliveries.start(issue_id, "{}", "daily", now=NOW)
    return store, issue_id


def test_two_senders_claim_different_deliveries_in_id_order(tmp_path: Path) -> None:
    store, issue = issue_with(tmp_path, 10)
    try:
        first = store.deliveries.claim(issue, "a", limit=4, now=NOW, until=NOW + LEASE)
        second = store.deliveries.claim(issue, "b", limit=4, now=NOW, until=NOW + LEASE)
        third = store.deliveries.claim(issue, "c", limit=4, now=NOW, until=NOW + LEASE)
        assert [d.email for d in first] == ["r0@example.net", "r1@example.net", "r2@example.net", "r3@example.net"]
        assert [d.email for d in second] == ["r4@example.net", "r5@example.net", "r6@example.net", "r7@example.net"]
        assert [d.email for d in third] == ["r8@example.net", "r9@example.net"]
        assert store.deliveries.claim(issue, "d", limit=4, now=NOW, until=NOW + LEASE) == []
    finally:
        store.close()


def test_a_claim_whose_lease_ran_out_is_taken_over_and_sent_ones_never_are(tmp_path: Path) -> None:
    store, issue = issue_with(tmp_path, 3)
    try:
        crashed = store.deliveries.claim(issue, "crashed", limit=3, now=NOW, until=NOW + LEASE)
        assert store.deliveries.mark(crashed[0].id, "sent", attempts=1, now=NOW)
        assert store.deliveries.next_lease_end(issue, "survivor") == NOW + LEASE
        assert store.deliveries.next_lease_end(issue, "crashed") is None  # its own claims are not waited for
        assert store.deliveries.claim(issue, "survivor", limit=3, now=NOW + LEASE / 2, until=NOW + LEASE) == []
        later = NOW + LEASE
        taken = store.deliveries.claim(issue, "survivor", limit=3, now=later, until=later + LEASE)
        assert [d.id for d in taken] == [d.id for d in crashed[1:]]
        rows = store.database.query("SELECT lease_owner FROM deliveries WHERE status = 'pending'")
        assert rows == [("survivor",), ("survivor",)]
    finally:
        store.close()


def test_released_claims_are_free_at_once_and_extended_ones_stay_held(tmp_path: Path) -> None:
    store, issue = issue_with(tmp_path, 4)
    try:
        held = store.deliveries.claim(issue, "a", limit=4, now=NOW, until=NOW + LEASE)
        assert store.deliveries.extend(issue, "a", until=NOW + 3 * LEASE) == 4
        assert store.deliveries.claim(issue, "b", limit=4, now=NOW + 2 * LEASE, until=NOW + 3 * LEASE) == []
        assert store.deliveries.mark(held[0].id, "sent", attempts=1, now=NOW)
        assert store.deliveries.release(issue, "a") == 3
        free = store.deliveries.claim(issue, "b", limit=4, now=NOW, until=NOW + LEASE)
        assert [d.id for d in free] == [d.id for d in held[1:]]
    finally:
        store.close()


def test_deliverable_of_names_those_still_subscribed_in_one_query(tmp_path: Path) -> None:
    from publisher.mail.subscribers import set_subscriber_status

    store, issue = issue_with(tmp_path, 4)
    try:
        ids = [d.id for d in store.deliveries.pending(issue)]
        with store.transaction():
            set_subscriber_status(store.subscribers, "r1@example.net", "unsubscribed", now=NOW)
        assert store.deliveries.deliverable_of(ids) == {ids[0], ids[2], ids[3]}
        assert store.deliveries.deliverable_of([ids[1]]) == set() and store.deliveries.deliverable_of([]) == set()
        assert all(store.deliveries.deliverable(i) == (i != ids[1]) for i in ids)
    finally:
        store.close()


def test_mark_sent_records_many_at_once_and_only_those_pending(tmp_path: Path) -> None:
    store, issue = issue_with(tmp_path, 4)
    try:
        ids = [d.id for d in store.deliveries.pending(issue)]
        assert store.deliveries.mark(ids[0], "failed", attempts=1, code=550, error="no", now=NOW)
        later = NOW + timedelta(seconds=5)
        with store.transaction():
            assert store.deliveries.mark_sent([(ids[0], 2, "<a@x>"), (ids[1], 1, "<b@x>"), (ids[2], 3, None)], now=later) == 2
        assert store.deliveries.mark_sent([], now=later) == 0
        rows = store.database.query("SELECT id, status, attempts, code, message_id FROM deliveries ORDER BY id")
        assert rows == [
            (ids[0], "failed", 1, 550, None),
            (ids[1], "sent", 1, None, "<b@x>"),
            (ids[2], "sent", 3, None, None),
            (ids[3], "pending", 0, None, None),
        ]
    finally:
        store.close()
