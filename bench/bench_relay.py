"""Sending to a relay 50 ms away (``bench/slow_relay.py``: every reply 50 ms
after its command), where loopback's speed no longer hides the round trips.

- One process, SQLite store: ``deliver_issue`` with 4, 32 and 128 SMTP
  connections (threads, one connection each), against the cap the round
  trips set (pipelined MAIL/RCPT/DATA, then the message: two round trips a
  message, so a connection carries at most 1 / (2 × 50 ms) = 10 msg/s).
- Several processes, PostgreSQL store: ``publisher send`` once, then twice
  at the same time on the same issue (each claiming leased batches), for the
  gain from one to two sender processes.

    .venv/bin/python -m bench relay        # BENCH_FULL=1: 100,000 messages
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import NOW, PYTHON, add_subscribers, heading, line, open_site, size, timed, verdict, write_site
from bench.slow_relay import SlowRelay

DELAY = 0.05
ROUND_TRIPS = 2  # pipelined envelope + DATA's 354, then the message's 250


def _one_process(root: Path, port: int, connections: int, total: int) -> float:
    from publisher.clock import SystemClock
    from publisher.mail.send import deliver_issue, prepare_issue
    from publisher.mail.transports import SmtpTransport

    config_path = write_site(root, posts=40, smtp_port=port, connections=connections, digest_posts=7)
    _, store = open_site(config_path)
    store.close()
    add_subscribers(config_path.parent / ".publisher" / "state.db", total)
    config, store = open_site(config_path)
    try:
        issue_id = prepare_issue(config, store, config.lists["daily"], now=NOW)
        seconds, report = timed(
            lambda: deliver_issue(config, store, SmtpTransport(config.mail.smtp), issue_id, clock=SystemClock())
        )
    finally:
        store.close()
    assert report.sent == total and report.complete, report
    return total / seconds


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
    command = [PYTHON, "-m", "publisher", "-q", "--config", str(config_path), "send"]
    logs = [config_path.parent / f"send-{n}.log" for n in range(processes)]
    started = time.monotonic()
    running = []
    for log in logs:
        with log.open("w") as err:  # a file, not a pipe: nobody blocks on a full pipe
            running.append(subprocess.Popen(command, env=env, stderr=err))
    for process, log in zip(running, logs):
        assert process.wait(timeout=3600) == 0, log.read_text()
    return time.monotonic() - started


def run() -> None:
    total = size(4_000, 100_000)
    heading(f"6. a relay {DELAY * 1000:.0f} ms away: {total:,} messages")
    from tests.helpers.postgres import PostgresServer
    from publisher.state.postgres import close_pools

    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp, SlowRelay(DELAY, folder=Path(tmp)) as relay:
        root = Path(tmp)
        rates = {}
        for connections in (4, 32, 128):
            count = min(total, connections * 60) if connections < 128 else total
            rates[connections] = _one_process(root / f"one-{connections}", relay.port, connections, count)
            cap = connections / (ROUND_TRIPS * DELAY)
            line(f"one process, SQLite, {connections} connections ({count:,} msgs)", f"{rates[connections]:,.0f} msgs/s (round-trip cap {cap:,.0f})")
        verdict(
            f"6 {total:,} messages to a relay 50 ms away, one machine",
            f"{rates[128]:,.0f} msgs/s with 128 connections",
            rates[128] / 1000,
            "≥ 1,000 msgs/s",
            rates[128] >= 1000,
        )
        server = PostgresServer.start()
        try:
            per_process = 64
            shared = size(4_000, 40_000)
            one_url, two_url = server.create_database(), server.create_database()
            one = _postgres_site(root / "pg-one", relay.port, per_process, shared, one_url)
            two = _postgres_site(root / "pg-two", relay.port, per_process, shared, two_url)
            close_pools()
            one_rate = shared / _senders(one, 1)
            two_rate = shared / _senders(two, 2)
        finally:
            close_pools()
            server.stop()
        line(f"PostgreSQL, 1 sender process x {per_process} connections ({shared:,} msgs)", f"{one_rate:,.0f} msgs/s")
        line(f"PostgreSQL, 2 sender processes x {per_process} connections", f"{two_rate:,.0f} msgs/s")
        verdict(
            "6 one to two sender processes on one PostgreSQL store",
            f"{one_rate:,.0f} -> {two_rate:,.0f} msgs/s",
            two_rate / one_rate,
            "near 2 (linear)",
            two_rate / one_rate >= 1.7,
        )
