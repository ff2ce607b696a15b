"""``publisher send --processes N``: one send, several processes on one
machine, each claiming leased batches of the issue (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.state.store import StateStore

from .conftest import write_config
from .helpers.sites import env, make_site, publisher
from .helpers.smtp_server import SmtpServer
from .helpers.waiting import wait_for


def sending_site(root: Path, port: int, subscribers: int, state: str) -> Path:
    """make_site's site with [state] keys, and an SMTP timeout long enough for a paused server."""
    site = make_site(root, port, subscribers, connections=4, extra=f"\n[state]\n{state}")
    path = site / "publisher.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("timeout = 5\n", "timeout = 120\n"), encoding="utf-8")
    return site


def query(site: Path, sql: str, params: tuple = ()) -> list[tuple]:
    store = StateStore.connect(load_config(site / "publisher.toml").state, readonly=True)
    try:
        return [tuple(row) for row in store.database.query(sql, params)]
    finally:
        store.close()


def holders(site: Path) -> dict[str, int]:
    """Who holds claims on pending deliveries, and how many."""
    rows = query(site, "SELECT lease_owner, COUNT(*) FROM deliveries WHERE status = 'pending' AND lease_owner IS NOT NULL GROUP BY lease_owner")
    return dict(rows)


def pid_of(owner: str) -> int:
    return int(owner.split(":")[-2])


everyone = lambda count: {f"reader{n}@example.net" for n in range(count)}  # noqa: E731


@pytest.mark.slow
def test_three_processes_deliver_to_everyone_once_and_each_does_a_share(tmp_path: Path) -> None:
    total = 2000
    rejected = {f"reader{n}@example.net" for n in range(150, total, 100)}  # in every process's share
    with SmtpServer(reject=rejected) as server:
        server.faults.pause_after = 100  # held until every process has claimed a batch
        site = sending_site(tmp_path / "site", server.port, total, "batch = 50\n")
        sender = three_claiming(site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert sender.poll() is None
        owners = set(holders(site))
        assert {pid_of(owner) for owner in owners} - {sender.pid}  # the others are processes of their own
        server.faults.pause_after = 0
        out, err = sender.communicate(timeout=600)
        delivered = server.delivered()

    assert sender.returncode == 1, err  # some failed
    assert "Traceback" not in err
    assert set(delivered) == everyone(total) - rejected and max(delivered.values()) == 1
    failed = len(rejected)
    assert f"Issue 1 of 'daily': {total - failed} sent, {failed} failed, 0 skipped, 0 pending" in out
    # Each failure on stderr once, whichever process had it.
    lines = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert sorted(line.split()[1].rstrip(":") for line in lines) == sorted(rejected)
    assert dict(query(site, "SELECT status, COUNT(*) FROM deliveries GROUP BY status")) == {"sent": total - failed, "failed": failed}
    assert query(site, "SELECT status FROM issues") == [("sent",)]
    shares = dict(query(site, "SELECT lease_owner, COUNT(*) FROM deliveries GROUP BY lease_owner"))
    assert set(shares) == owners and min(shares.values()) > 0  # each of the three sent some
    failing = {row[0] for row in query(site, "SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'failed'")}
    assert {pid_of(owner) for owner in failing} - {sender.pid}  # the others' failures reached the user


@pytest.mark.slow
def test_a_killed_process_s_batch_is_taken_over_and_everyone_gets_the_issue(tmp_path: Path) -> None:
    total, connections = 2000, 4
    with SmtpServer() as server:
        server.faults.slow = 0.02  # a relay a little away: the send lasts a while
        site = sending_site(tmp_path / "site", server.port, total, "batch = 50\nlease = 3\n")
        sender = subprocess.Popen(
            publisher(site, "send", "--processes", "3"), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        def a_worker_mid_send() -> str | None:
            sent = dict(query(site, "SELECT lease_owner, COUNT(*) FROM deliveries WHERE status = 'sent' GROUP BY lease_owner"))
            held = holders(site)
            return next((o for o in held if pid_of(o) != sender.pid and sent.get(o, 0) >= 50), None)

        victim = wait_for(lambda: a_worker_mid_send() or sender.poll() is not None, timeout=300, what="a worker mid-send")
        assert sender.poll() is None, sender.communicate()
        os.kill(pid_of(victim), signal.SIGKILL)
        wait_for(lambda: not alive(pid_of(victim)), timeout=60, what="the worker to die")
        orphaned = {row[0] for row in query(site, "SELECT id FROM deliveries WHERE status = 'pending' AND lease_owner = ?", (victim,))}
        out, err = sender.communicate(timeout=600)
        delivered = server.delivered()

    assert sender.returncode == 0, err
    assert "Traceback" not in err
    assert f"(pid {pid_of(victim)}) was ended by SIGKILL" in err
    assert set(delivered) == everyone(total)
    assert sum(count - 1 for count in delivered.values()) <= connections  # at most its messages in flight
    assert f"Issue 1 of 'daily': {total} sent" in out
    assert query(site, "SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [("sent", total)]
    assert query(site, "SELECT status FROM issues") == [("sent",)]
    # The batch it held went to the others once its lease ran out.
    assert orphaned
    ids = ", ".join(map(str, orphaned))
    takers = {row[0] for row in query(site, f"SELECT DISTINCT lease_owner FROM deliveries WHERE id IN ({ids})")}
    assert victim not in takers and takers


def three_claiming(site: Path, **streams) -> subprocess.Popen:
    """``publisher send --processes 3`` started, once its three processes have
    each claimed a batch (or it has ended)."""
    sender = subprocess.Popen(publisher(site, "send", "--processes", "3"), env=env(), **streams)
    wait_for(lambda: len(holders(site)) == 3 or sender.poll() is not None, timeout=300, what="three processes to claim")
    return sender


def workers_of(site: Path, sender: subprocess.Popen) -> list[int]:
    """The processes other than ``sender`` holding claims."""
    return [pid_of(owner) for owner in holders(site) if pid_of(owner) != sender.pid]


def alive(pid: int) -> bool:
    """Is the process there and not a zombie (its parent has not reaped it yet)?"""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigterm_stops_every_process_and_the_next_send_finishes(tmp_path: Path) -> None:
    total = 600
    with SmtpServer() as server:
        server.faults.pause_after = 60
        site = sending_site(tmp_path / "site", server.port, total, "batch = 50\n")
        sender = three_claiming(site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workers = workers_of(site, sender)
        sender.send_signal(signal.SIGTERM)
        server.faults.pause_after = 0  # the messages in flight are answered, then each process stops
        out, err = sender.communicate(timeout=300)
        assert not any(alive(pid) for pid in workers)
        stopped = dict(query(site, "SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        first = server.delivered()
        again = subprocess.run(publisher(site, "-q", "send", "--processes", "3"), env=env(), capture_output=True, text=True, timeout=600)
        delivered = server.delivered()

    assert sender.returncode == 2 and "send stopped: stopped by request" in err
    assert "Traceback" not in err
    assert stopped.get("pending", 0) > 0 and stopped.get("sent", 0) == len(first)  # nothing lost, nothing more
    assert again.returncode == 0, again.stderr
    assert set(delivered) == everyone(total) and max(delivered.values()) == 1


@pytest.mark.slow
@pytest.mark.sqlite_only  # the send lock of a SQLite store is a file lock on this machine
def test_the_others_keep_the_send_lock_when_the_first_process_dies(tmp_path: Path) -> None:
    total = 300
    with SmtpServer() as server:
        server.faults.pause_after = 30
        site = sending_site(tmp_path / "site", server.port, total, "batch = 20\n")
        sender = three_claiming(site, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers = workers_of(site, sender)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=60)
        # The others wait on the paused server: alive, holding the lock.
        refused = subprocess.run(publisher(site, "send"), env=env(), capture_output=True, text=True, timeout=120)
        assert all(alive(pid) for pid in workers)
        # The dead process's lease runs out (as time would have it), and the server goes on.
        database = sqlite3.connect(site / ".publisher" / "state.db")
        with database:
            database.execute(
                "UPDATE deliveries SET lease_until = '2000-01-01T00:00:00+00:00' WHERE lease_owner LIKE ?",
                (f"%:{sender.pid}:%",),
            )
        database.close()
        server.faults.pause_after = 0
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=300, what="the others to finish")
        delivered = server.delivered()
        after = subprocess.run(publisher(site, "send"), env=env(), capture_output=True, text=True, timeout=300)

    assert refused.returncode == 2 and "is being sent by process" in refused.stderr, refused.stderr
    assert set(delivered) == everyone(total) and max(delivered.values()) == 1
    assert query(site, "SELECT status FROM issues") == [("sent",)]
    assert after.returncode == 0 and "Nothing to send" in after.stdout, after.stderr


def test_quiet_prints_nothing_and_every_reader_gets_it(tmp_path: Path) -> None:
    with SmtpServer() as server:
        site = sending_site(tmp_path / "site", server.port, 40, "batch = 5\n")
        result = subprocess.run(publisher(site, "-q", "send", "--processes", "2"), env=env(), capture_output=True, text=True, timeout=300)
        delivered = server.delivered()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert set(delivered) == everyone(40) and max(delivered.values()) == 1
    assert query(site, "SELECT status FROM issues") == [("sent",)]


def test_processes_from_the_config_and_its_bounds(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_config(site, "\n[mail]\nprocesses = 3\n")
    assert load_config(site / "publisher.toml").mail.processes == 3
    for bad in ("0", "65", '"two"', "1.5"):
        write_config(site, f"\n[mail]\nprocesses = {bad}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(site / "publisher.toml")
        assert "[mail] processes: must be a whole number from 1 to 64" in str(caught.value)
    write_config(site)
    assert load_config(site / "publisher.toml").mail.processes == 1


def test_the_option_s_bounds(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", None, 1)
    result = subprocess.run(publisher(site, "send", "--processes", "0"), env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--processes" in result.stderr
    assert query(site, "SELECT COUNT(*) FROM issues") == [(0,)]
