"""A soak: 3,000 subscribers through every fault tests/smtp_server.py can make.

One issue goes to 3,000 subscribers through a pool of 4 connections while
the server misbehaves throughout: 5 % of RCPTs answered 451, 1 % of MAILs
answered 421 with the connection closed, 30 chosen recipients answered 550,
1 % of connections dropped mid-DATA without delivering, 1 % of DATAs
answered only after 0.05 s. On top of that, in turn:

1. the server is not there yet: connections refused, the send stops (exit 2);
2. it goes away in the middle of a send, and a run while it is away is
   refused too, then it comes back on the same port;
3. it accepts connections and never says a word (a 2 s SMTP timeout): the
   send stops (exit 2) with the rest pending;
4. later runs finish the issue.

Then: every deliverable subscriber has exactly one message (a duplicate is
allowed only per connection per interruption: the message in flight when
the server went away), the 550s are recorded as failed and their
addresses bounced (out of the next issue's audience), and the store and
``publisher status`` count what the server saw.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.state.store import StateStore

from .helpers.smtp_server import SmtpServer
from .helpers.sites import env, make_site, publisher
from .helpers.web_server import free_port

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

TOTAL, POOL = 3000, 4
SEED = 20261129
REJECTED = {f"reader{n}@example.net" for n in random.Random(SEED).sample(range(TOTAL), 30)}
EVERYONE = {f"reader{n}@example.net" for n in range(TOTAL)}
TIMEOUT = 2  # [mail.smtp] timeout, seconds


def send(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(publisher(site, "send"), env=env(), capture_output=True, text=True, timeout=600)


def start_send(site: Path) -> subprocess.Popen:
    return subprocess.Popen(publisher(site, "send"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def met(server: SmtpServer, process: subprocess.Popen) -> None:
    """Wait until the send reached the server's pause (``pause_after``): the
    fault about to be made meets a send that still has messages to go."""
    while not server.paused.wait(timeout=0.05):
        assert process.poll() is None, ("the send ended before the fault", process.communicate())
    assert len(server.delivered()) < TOTAL


def stopped(process: subprocess.Popen, *words: str) -> str:
    """The stderr of a send that must stop with exit 2 and a clear message."""
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, (process.returncode, stdout, stderr)
    assert "Traceback" not in stderr
    assert "send stopped:" in stderr and "run `publisher send` again to resume" in stderr, stderr
    for word in words:
        assert word in stderr, stderr
    return stderr


def test_three_thousand_through_every_fault_deliverable_get_exactly_one(tmp_path: Path) -> None:
    port = free_port()
    site = make_site(tmp_path / "site", port, TOTAL, connections=POOL)
    config_file = site / "publisher.toml"
    config_file.write_text(config_file.read_text().replace("timeout = 5\n", f"timeout = {TIMEOUT}\n"), encoding="utf-8")
    server = SmtpServer(
        port=port,
        tempfail_rate=0.05,
        shutdown_rate=0.01,
        reject=REJECTED,
        drop_rate=0.01,
        slow=0.05,
        slow_rate=0.01,
        seed=SEED,
    )
    interruptions = 0
    try:
        # 1. Not there yet: refused, nothing sent, everything pending.
        early = start_send(site)
        stopped(early, "cannot connect", "Connection refused")
        server.start()
        assert server.messages == []

        # 2. Gone in the middle of a send, refused while away, back on the same port.
        # The server stops answering after 800 messages, so the send is
        # certainly still running when the server goes, however fast it is.
        server.faults.pause_after = 800
        server.paused.clear()
        process = start_send(site)
        met(server, process)
        server.stop()
        interruptions += 1
        stopped(process)
        server.faults.pause_after = 0
        while_away = start_send(site)
        stopped(while_away, "Connection refused")
        server.start()

        # 3. Accepts, then never answers.
        server.faults.pause_after = 1600
        server.paused.clear()
        process = start_send(site)
        met(server, process)
        server.faults.hang = True
        server.drop_connections()
        interruptions += 1
        stopped(process, f"no answer within {TIMEOUT} s")
        server.faults.hang = False
        server.faults.pause_after = 0

        # 4. The rest, the transient faults still on, until nothing is pending.
        # (Only the closing line tells what is left: a progress line, printed
        # every few seconds however long the run takes, names "pending" too.)
        runs = [send(site)]
        while "left pending after retries" in runs[-1].stderr and len(runs) < 8:
            runs.append(send(site))
        last = runs[-1]
        assert last.returncode == 1, last.stderr  # the 550s failed for good
        assert "Traceback" not in "".join(r.stderr for r in runs)
        status = subprocess.run(publisher(site, "status"), env=env(), capture_output=True, text=True, timeout=60)
        delivered = server.delivered()
        rcpt_attempts = server.rcpt_attempts
        faults_seen = {"drops": server.drops, "shutdowns": server.shutdowns, "connections": server.connections}
    finally:
        server.stop()

    # Every deliverable subscriber has the digest, the rejected ones never.
    assert set(delivered) == EVERYONE - REJECTED
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= POOL * interruptions
    assert all(rcpt_attempts[address] >= 1 for address in REJECTED)
    # The faults happened.
    assert faults_seen["drops"] > 0 and faults_seen["shutdowns"] > 0
    assert sum(rcpt_attempts.values()) > TOTAL * 1.04  # the 451s were retried

    # The store counts what the server saw, and suppressed the bounces.
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        (issue,) = store.issues.all("daily")
        assert issue.status == "sent"
        assert store.deliveries.counts(issue.id) == {"sent": len(delivered), "failed": len(REJECTED)}
        bounced = {s.email for s in store.subscribers.matching("daily", "bounced")}
        assert bounced == REJECTED
        assert store.deliveries.audience_size("daily") == TOTAL - len(REJECTED)
        codes = {row[0] for row in store.database.query("SELECT code FROM deliveries WHERE status = 'failed'")}
        assert codes == {550}
    finally:
        store.close()
    assert f"{TOTAL - len(REJECTED)} sent, {len(REJECTED)} failed, 0 skipped, 0 pending" in status.stdout
    print(
        f"soak: {len(delivered)} delivered, {duplicates} duplicates, {len(REJECTED)} bounced, "
        f"{len(runs) + 4} runs, {sum(rcpt_attempts.values())} RCPTs, {faults_seen}"
    )
