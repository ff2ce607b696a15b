"""One sender per list: ``publisher send`` and the scheduler never deliver
the same issue at the same time (``publisher.state.locks.SendLock``). Real
processes, a real SMTP server on 127.0.0.1 and the real state store."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.state.locks import LockHeld, ProcessLock, SendLock
from publisher.state.store import StateStore

from .helpers.smtp_server import SmtpServer
from .helpers.sites import due_now, env, publisher, scheduled_site

pytestmark = pytest.mark.slow  # real processes, browsers or thousands of messages

READERS = 300


def readers() -> set[str]:
    return {f"reader{n}@example.net" for n in range(READERS)}


def issues_and_counts(site: Path) -> list[tuple[int, dict[str, int]]]:
    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        return [(issue.number, store.deliveries.counts(issue.id)) for issue in store.issues.all("daily")]
    finally:
        store.close()


class StderrLines:
    """A process's stderr, read as it comes."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.seen = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for text in process.stderr:
            with self.seen:
                self.lines.append(text)
                self.seen.notify_all()

    def wait_for(self, fragment: str, timeout: float = 60) -> str:
        with self.seen:
            found = self.seen.wait_for(lambda: any(fragment in text for text in self.lines), timeout=timeout)
        assert found, "".join(self.lines)
        return next(text for text in self.lines if fragment in text)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_the_lock_excludes_a_second_open_even_in_one_process(tmp_path: Path) -> None:
    first, second = ProcessLock(tmp_path / "x.lock"), ProcessLock(tmp_path / "x.lock")
    assert first.try_acquire() is None
    assert (tmp_path / "x.lock").read_text() == f"{os.getpid()}\n"
    assert second.try_acquire() == os.getpid()
    stop = threading.Event()
    stop.set()
    told: list[int | None] = []
    assert second.wait(stop, poll=0.01, on_wait=told.append) is False
    assert told == [os.getpid()]
    first.release()
    assert (tmp_path / "x.lock").read_text() == ""
    assert second.wait(stop, poll=0.01) is True
    second.release()


def test_send_by_hand_while_the_scheduler_sends_is_refused_and_nobody_gets_two(tmp_path: Path) -> None:
    # The server holds the scheduler's send after 20 messages until the send
    # by hand is done: it certainly meets a send in progress, however fast.
    with SmtpServer() as server:
        server.faults.pause_after = 20
        site = scheduled_site(tmp_path, schedule="every minute", subscribers=READERS, port=server.port, connections=2)
        due_now(site)
        scheduler = subprocess.Popen(publisher(site, "run", "--once"), env=env(), stderr=subprocess.PIPE, text=True)
        try:
            while not server.paused.wait(timeout=0.05):
                assert scheduler.poll() is None, scheduler.stderr.read()
            by_hand = subprocess.run(
                publisher(site, "send", "--list", "daily"), env=env(), capture_output=True, text=True, timeout=300
            )
            server.faults.pause_after = 0
            assert by_hand.returncode == 2, by_hand.stdout + by_hand.stderr
            assert f"list 'daily' is being sent by process {scheduler.pid}" in by_hand.stderr
            assert "Traceback" not in by_hand.stderr
            assert scheduler.wait(timeout=120) == 0
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
        delivered = server.delivered()
    assert set(delivered) == readers() and set(delivered.values()) == {1}
    assert issues_and_counts(site) == [(1, {"sent": READERS})]


def test_the_scheduler_waits_for_a_send_by_hand_then_sends_once(tmp_path: Path) -> None:
    with SmtpServer() as server:
        site = scheduled_site(tmp_path, schedule="every minute", subscribers=READERS, port=server.port)
        due_now(site)
        config = load_config(site / "publisher.toml")
        held = SendLock(config.state.path, "daily")
        held.acquire()  # as `publisher send` holds it
        try:
            scheduler = subprocess.Popen(
                publisher(site, "run", "--once"), env=env(), stderr=subprocess.PIPE, text=True
            )
            stderr = StderrLines(scheduler)
            waiting = stderr.wait_for("waiting for it to finish")
            assert f"list 'daily' is being sent by process {os.getpid()}" in waiting
            assert server.messages == [] and scheduler.poll() is None
            assert issues_and_counts(site) == []  # not even an issue made
        finally:
            held.release()
        assert scheduler.wait(timeout=120) == 0, stderr.text()
    assert "Traceback" not in stderr.text()
    delivered = server.delivered()
    assert set(delivered) == readers() and set(delivered.values()) == {1}
    assert issues_and_counts(site) == [(1, {"sent": READERS})]


def test_two_sends_by_hand_at_once_deliver_each_message_once(tmp_path: Path) -> None:
    with SmtpServer(slow=0.005) as server:
        site = scheduled_site(tmp_path, subscribers=READERS, port=server.port, connections=2)
        command = publisher(site, "send", "--list", "daily")
        both = [subprocess.Popen(command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        outcomes = []
        for process in both:
            out, err = process.communicate(timeout=120)
            outcomes.append((process.returncode, out + err))
        delivered = server.delivered()
    assert set(delivered) == readers() and set(delivered.values()) == {1}
    assert issues_and_counts(site) == [(1, {"sent": READERS})]
    sent = [text for code, text in outcomes if code == 0 and f"{READERS} sent" in text]
    assert len(sent) == 1, outcomes
    other = next(text for code, text in outcomes if text is not sent[0])
    # Refused while the first one sends, or, had it already finished, nothing left.
    assert "is being sent by process" in other or "Nothing to send" in other, outcomes


def test_a_lock_file_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db.send-daily.lock").mkdir()
    with pytest.raises(LockHeld, match=r"state\.db\.send-daily\.lock: cannot open the lock file"):
        SendLock(tmp_path / "state.db", "daily").acquire()
