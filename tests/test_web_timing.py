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
    """One round of 200 and 200 requests; a difference it finds (p <= 0.01,
    one run in a hundred by chance alone) is measured again with fresh
    addresses, and the test fails only if the second round finds it too: a
    real difference shows in both, chance in both one run in 10,000."""
    port = free_port()
    site = make_web_site(
        tmp_path / "site", port, extra="\n[serve]\nsubscribe_per_ip = 100000\nsubscribe_per_address = 1000\n"
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert CliRunner().invoke(main, ["--config", str(site / "publisher.toml"), "build"]).exit_code == 0
    config = load_config(site / "publisher.toml")
    rounds = [(f"new-{r}-", f"active-{r}-") for r in range(2)]
    store = StateStore.open(config.state.path)
    with store.transaction():
        for _, active in rounds:
            for n in range(PER_CLASS):
                add_subscriber(store.subscribers, f"{active}{n}@example.net", "", ["daily"], source="test", now=NOW)
    store.close()
    with WebServer(site / "publisher.toml", port) as server:
        client = Client(port)
        csrf = client.csrf()
        for n in range(20):  # warm up: first requests pay for imports and caches
            assert post(client, csrf, f"warm-{n}@example.net") == 200
        found = []
        for number, (new, active) in enumerate(rounds):
            p, medians = _round(client, csrf, new, active, seed=16 + number)
            print(f"\nround {number + 1}: median answer new {medians[0]:.2f} ms, active {medians[1]:.2f} ms; p = {p:.3f}")
            found.append((p, medians))
            if p > 0.01:
                break
        expected = 20 + PER_CLASS * len(found)
        wait_for(lambda: len(outbox_messages(config.mail.outbox)) >= expected, what="every confirmation email")
        assert server.stop() == 0
    assert found[-1][0] > 0.01, f"the timing tells new from active addresses in both rounds (p, medians in ms): {found}"
    # Only the new addresses got an email: the work did differ, after the answer.
    sent = {m["To"].addresses[0].addr_spec for m in outbox_messages(config.mail.outbox)}
    assert len(sent) == expected
    assert not any(address.startswith("active-") for address in sent)


def _round(client: Client, csrf: str, new: str, active: str, *, seed: int) -> tuple[float, tuple[float, float]]:
    """The U test's p for the answer times of PER_CLASS new and active
    addresses, and the two medians in milliseconds. Each request's class is
    drawn at random, so whatever the machine does meanwhile (the mailer's
    work for the requests before, other processes) falls on both alike."""
    order = [("new", f"{new}{n}@example.net") for n in range(PER_CLASS)]
    order += [("active", f"{active}{n}@example.net") for n in range(PER_CLASS)]
    random.Random(seed).shuffle(order)
    timings: dict[str, list[float]] = {"new": [], "active": []}
    for kind, address in order:
        started = time.perf_counter()
        assert post(client, csrf, address) == 200
        timings[kind].append(time.perf_counter() - started)
    p = mann_whitney_u(timings["new"], timings["active"])
    return p, (statistics.median(timings["new"]) * 1000, statistics.median(timings["active"]) * 1000)


def post(client: Client, csrf: str, address: str) -> int:
    fields = {"csrf_token": csrf, "email": address, "name": "", "list": "daily", "website": ""}
    return client.post("/subscribe", fields).status
