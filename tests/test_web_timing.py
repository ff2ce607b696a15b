"""The subscribe form's answer takes as long whatever the address: a new
address (a confirmation email goes out) and an active subscriber's (none
does) cannot be told apart by timing. Measured against a real
``publisher serve``, compared with the Mann-Whitney U test."""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.app.cli import main
from publisher.config import load_config
from publisher.mail.subscribers import add_subscriber
from publisher.state.store import StateStore

from .conftest import NOW
from .helpers.stats import mann_whitney_u
from .helpers.waiting import wait_for
from .helpers.web_server import SECRET, SECRET_ENV, Client, WebServer, free_port, make_web_site, outbox_messages

PER_CLASS = 200


def test_the_u_test_helper() -> None:
    same = [float(n % 17) for n in range(40)]
    assert mann_whitney_u(same, list(reversed(same))) == 1.0
    # Completely apart, 20 and 20: U = 0, z = (200 - 0.5) / sqrt(20 * 20 * 41 / 12).
    p = mann_whitney_u([float(n) for n in range(20)], [float(n) for n in range(100, 120)])
    assert p == pytest.approx(6.8e-8, rel=0.05)
    with pytest.raises(ValueError):
        mann_whitney_u([1.0] * 5, [2.0] * 5)


@pytest.mark.slow
def test_the_answer_takes_as_long_for_new_and_active_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    site = make_web_site(
        tmp_path / "site", port, extra="\n[serve]\nsubscribe_per_ip = 100000\nsubscribe_per_address = 1000\n"
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "build"]).exit_code == 0
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    active = [f"active-{n}@example.net" for n in range(PER_CLASS)]
    with store.transaction():
        for address in active:
            add_subscriber(store.subscribers, address, "", ["daily"], source="test", now=NOW)
    store.close()
    new = [f"new-{n}@example.net" for n in range(PER_CLASS)]
    # Each request's class is drawn at random, so whatever the machine
    # does meanwhile (the mailer's work for the request before, other
    # processes) falls on both classes alike.
    order = [("new", a) for a in new] + [("active", a) for a in active]
    random.Random(16).shuffle(order)
    timings: dict[str, list[float]] = {"new": [], "active": []}
    with WebServer(site / "publisher.toml", port) as server:
        client = Client(port)
        csrf = client.csrf()
        for n in range(20):  # warm up: first requests pay for imports and caches
            assert post(client, csrf, f"warm-{n}@example.net") == 200
        for kind, address in order:
            started = time.perf_counter()
            assert post(client, csrf, address) == 200
            timings[kind].append(time.perf_counter() - started)
        wait_for(lambda: len(outbox_messages(config.mail.outbox)) >= PER_CLASS + 20, what="every confirmation email")
        assert server.stop() == 0
    p = mann_whitney_u(timings["new"], timings["active"])
    medians = {kind: statistics.median(values) * 1000 for kind, values in timings.items()}
    print(f"\nmedian answer: new {medians['new']:.2f} ms, active {medians['active']:.2f} ms; Mann-Whitney U p = {p:.3f}")
    assert p > 0.01, f"the timing tells new from active addresses: {medians}, p = {p:.2g}"
    # Only the new addresses got an email: the work did differ, after the answer.
    sent = {m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox)}
    assert set(new) <= sent and not sent & set(active)


def post(client: Client, csrf: str, address: str) -> int:
    fields = {"csrf_token": csrf, "email": address, "name": "", "list": "daily", "website": ""}
    return client.post("/subscribe", fields).status
