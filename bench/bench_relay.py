"""Sending to a relay 50 ms away (``bench/slow_relay.py``: every reply 50 ms
after its command), where loopback's speed no longer hides the round trips.

- One process, SQLite store: ``deliver_issue`` with 4, 32, 128 and 256 SMTP
  connections (threads, one connection each), against the cap the round
  trips set (pipelined MAIL/RCPT/DATA, then the message: two round trips a
  message, so a connection carries at most 1 / (2 × 50 ms) = 10 msg/s), with
  the sender's and the relay's CPU per message.
- The SMTP client alone (``bench/relay_clients.py``): threads against an
  asyncio client and aiosmtplib at 32, 128 and 256 connections.
- Several processes of one ``publisher send``, SQLite store: ``--processes
  2`` and ``3``, 256 connections each, the processes claiming leased
  batches of the issue.
- Several processes, PostgreSQL store: ``publisher send`` once, then twice
  at the same time on the same issue (each claiming leased batches), for the
  gain from one to two sender processes.

The one-machine verdict is the best configuration that sent the whole issue.

    .venv/bin/python -m bench relay        # BENCH_FULL=1: 100,000 messages
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import NOW, PYTHON, add_subscribers, heading, line, open_site, size, timed, verdict, write_site
from bench.relay_clients import process_cpu
from bench.slow_relay import SlowRelay

DELAY = 0.05
ROUND_TRIPS = 2  # pipelined envelope + DATA's 354, then the message's 250
PER_PROCESS = 128  # connections of each ``publisher send`` on PostgreSQL


@dataclass
class Sending:
    label: str
    messages: int
    seconds: float
    cpu: float = 0.0  # the sender's user + system seconds (one process only)
    relay_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _site(root: Path, relay: SlowRelay, connections: int, total: int, state: str = "") -> Path:
    """A site sending to ``relay``, its store made and holding ``total``
    subscribers; ``state``: lines added to its ``[state]`` table."""
    config_path = write_site(root, posts=40, smtp_port=relay.port, connections=connections, digest_posts=7)
    if state:
        text = config_path.read_text(encoding="utf-8")
        config_path.write_text(text.replace('[state]\npath = ".publisher/state.db"\n', '[state]\npath = ".publisher/state.db"\n' + state))
    _, store = open_site(config_path)
    store.close()
    add_subscribers(config_path.parent / ".publisher" / "state.db", total)
    return config_path


def _one_process(root: Path, relay: SlowRelay, connections: int, total: int) -> tuple[Sending, bytes]:
    """``deliver_issue`` to ``total`` subscribers, and one of the messages (unstuffed)."""
    from publisher.clock import SystemClock
    from publisher.mail.digest import IssueMessages
    from publisher.mail.send import deliver_issue, frozen_issue, prepare_issue
    from publisher.mail.transports import SmtpTransport

    config_path = _site(root, relay, connections, total)
    config, store = open_site(config_path)
    try:
        issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
        relay_before, before = process_cpu(relay.process.pid), os.times()
        seconds, report = timed(
            lambda: deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SystemClock())
        )
        after, relay_after = os.times(), process_cpu(relay.process.pid)
        info = store.issues.info(issue_id)
        messages = IssueMessages(config, *frozen_issue(config, config.lists["daily"], info.number, info.rendered))
        sample = messages.compose(messages.recipient("reader0@example.net", "Reader 0"), now=NOW)
    finally:
        store.close()
    assert report.sent == total and report.complete, report
    cpu = after.user - before.user + after.system - before.system
    label = f"one process, SQLite, {connections} connections"
    return Sending(label, total, seconds, cpu, relay_after - relay_before), sample


def _postgres_site(root: Path, port: int, connections: int, total: int, url: str) -> Path:
    from publisher.state.postgres import PostgresDatabase
    from publisher.state.store import StateStore
    from publisher.mail.send import prepare_issue
    from publisher.config import load_config

    config_path = write_site(root, posts=40, smtp_port=port, connections=connections, digest_posts=7)
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace('[state]\npath = ".publisher/state.db"\n', f'[state]\nurl = "{url}"\n'))
    config = load_config(config_path)
    store = StateStore.on(PostgresDatabase.open(url))
    try:
        stamp = NOW.isoformat()
        with store.transaction():
            store.database.executemany(
                "INSERT INTO subscribers (email, name, status, source, created, changed) VALUES (?, ?, 'active', 'bench', ?, ?)",
                [(f"reader{n}@example.net", f"Reader {n}", stamp, stamp) for n in range(total)],
            )
            store.database.execute(
                "INSERT INTO subscriptions (subscriber_id, list, status, changed) SELECT id, 'daily', 'active', ? FROM subscribers",
                (stamp,),
            )
        prepare_issue(config, store, config.lists["daily"], now=NOW)  # the senders below resume it
    finally:
        store.close()
    return config_path


def _senders(config_path: Path, processes: int) -> float:
    """Seconds until ``processes`` ``publisher send`` processes have delivered the issue."""
    from bench.common import SECRET, SECRET_ENV
    import os

    env = {**os.environ, SECRET_ENV: SECRET}
    command = [PYTHON, "-m", "publisher", *(["-v"] if os.environ.get("BENCH_VERBOSE") else ["-q"]), "--config", str(config_path), "send"]
    logs = [config_path.parent / f"send-{n}.log" for n in range(processes)]
    started = time.monotonic()
    running = []
    for log in logs:
        with log.open("w") as err:  # a file, not a pipe: nobody blocks on a full pipe
            running.append(subprocess.Popen(command, env=env, stderr=err))
    for process, log in zip(running, logs):
        assert process.wait(timeout=3600) == 0, log.read_text()
    return time.monotonic() - started


def _processes(root: Path, relay: SlowRelay, processes: int, connections: int, total: int) -> Sending:
    """``publisher send --processes N`` on a SQLite store, the issue prepared
    beforehand (the send resumes it): the time of the command, start-up of
    its processes included, and the relay's CPU."""
    from bench.common import SECRET, SECRET_ENV
    from publisher.mail.send import prepare_issue

    # A claim at a time fills every connection: at least as many deliveries as connections.
    config_path = _site(root, relay, connections, total, state="batch = 1024\n")
    config, store = open_site(config_path)
    try:
        issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
    finally:
        store.close()
    command = [PYTHON, "-m", "publisher", "-q", "--config", str(config_path), "send", "--processes", str(processes)]
    relay_before = process_cpu(relay.process.pid)
    log = config_path.parent / "send.log"
    with log.open("w") as err:  # a file, not a pipe: nobody blocks on a full pipe
        started = time.monotonic()
        code = subprocess.run(command, env={**os.environ, SECRET_ENV: SECRET}, stderr=err, timeout=3600).returncode
        seconds = time.monotonic() - started
    relay_cpu = process_cpu(relay.process.pid) - relay_before
    _, store = open_site(config_path)
    try:
        counts = store.deliveries.counts(issue_id)
    finally:
        store.close()
    sent = counts.get("sent", 0)
    assert code == 0 and sent == total, (code, counts, log.read_text())
    label = f"one machine, SQLite, `publisher send --processes {processes}` x {connections} connections"
    return Sending(label, sent, seconds, relay_cpu=relay_cpu)


def _processes_runs(root: Path, relay: SlowRelay, total: int) -> list[Sending]:
    runs = []
    for processes in (2, 3):
        run = _processes(root / f"procs-{processes}", relay, processes, 256, total)
        runs.append(run)
        line(
            f"{run.label} ({total:,} msgs, start-up included)",
            f"{run.rate:,.0f} msgs/s (round-trip cap {processes * 256 / (ROUND_TRIPS * DELAY):,.0f}); "
            f"relay {run.relay_cpu / total * 1e6:,.0f} µs/msg",
        )
    return runs


def _one_process_runs(root: Path, relay: SlowRelay, total: int) -> tuple[list[Sending], bytes]:
    runs = []
    for connections in (4, 32, 128, 256):
        count = min(total, connections * 60) if connections < 128 else total
        run, sample = _one_process(root / f"one-{connections}", relay, connections, count)
        runs.append(run)
        cap = connections / (ROUND_TRIPS * DELAY)
        line(
            f"{run.label} ({count:,} msgs)",
            f"{run.rate:,.0f} msgs/s (round-trip cap {cap:,.0f}); sender CPU {run.cpu / count * 1e6:,.0f} µs/msg "
            f"({run.cpu / run.seconds:.0%} of a core), relay {run.relay_cpu / count * 1e6:,.0f} µs/msg",
        )
    return runs, sample


def _client_runs(relay: SlowRelay, sample: bytes) -> None:
    """The SMTP client alone, threads against asyncio, at equal connections."""
    from bench import relay_clients

    per = size(15, 40)
    for connections in (32, 128, 256):
        for client in relay_clients.available():
            run = relay_clients.measure(client, relay.port, relay.process.pid, connections, per, sample)
            line(
                f"client alone: {client}, {connections} connections ({run.messages:,} msgs)",
                f"{run.rate:,.0f} msgs/s; client CPU {run.cpu_per_message_us:,.0f} µs/msg "
                f"({run.cpu / run.seconds:.0%} of a core), relay {run.relay_cpu / run.messages * 1e6:,.0f} µs/msg",
            )


def _postgres_runs(root: Path, relay: SlowRelay, total: int) -> tuple[Sending, Sending]:
    """``publisher send`` once, then twice at the same time, on a PostgreSQL store."""
    from tests.helpers.postgres import PostgresServer
    from publisher.state.postgres import close_pools

    server = PostgresServer.start()
    try:
        one_url, two_url = server.create_database(), server.create_database()
        one = _postgres_site(root / "pg-one", relay.port, PER_PROCESS, total, one_url)
        two = _postgres_site(root / "pg-two", relay.port, PER_PROCESS, total, two_url)
        close_pools()
        runs = (
            Sending(f"PostgreSQL, 1 sender process x {PER_PROCESS} connections", total, _senders(one, 1)),
            Sending(f"PostgreSQL, 2 sender processes x {PER_PROCESS} connections", total, _senders(two, 2)),
        )
    finally:
        close_pools()
        server.stop()
    for run in runs:
        line(f"{run.label} ({total:,} msgs, start-up included)", f"{run.rate:,.0f} msgs/s")
    return runs


def run() -> None:
    total = size(4_000, 100_000)
    heading(f"6. a relay {DELAY * 1000:.0f} ms away: {total:,} messages")
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp, SlowRelay(DELAY, folder=Path(tmp)) as relay:
        root = Path(tmp)
        singles, sample = _one_process_runs(root, relay, total)
        several = _processes_runs(root, relay, total)
        _client_runs(relay, sample)
        one, two = _postgres_runs(root, relay, total)
    # Every configuration that sent the whole issue, the best of them.
    best = max((run for run in [*singles, *several, one, two] if run.messages == total), key=lambda run: run.rate)
    verdict(
        f"6 {total:,} messages to a relay 50 ms away, one machine",
        f"{best.rate:,.0f} msgs/s: {best.label}",
        best.rate / 1000,
        "≥ 1,000 msgs/s",
        best.rate >= 1000,
    )
    verdict(
        "6 one to two sender processes on one PostgreSQL store",
        f"{one.rate:,.0f} -> {two.rate:,.0f} msgs/s",
        two.rate / one.rate,
        "near 2 (linear)",
        two.rate / one.rate >= 1.7,
    )
