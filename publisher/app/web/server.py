"""``serve``: the app under waitress until Ctrl-C or SIGTERM.

Waitress reads each request whole before a thread sees it, so a client that
trickles bytes costs an open socket, never a thread. What a slow client can
still exhaust is the number of open connections; so the server here

- accepts up to ``[serve] connection_limit`` connections (waitress's
  default is 100) and polls them with ``poll()``, which has no 1024-socket
  ceiling, raising the process's open-file limit to fit;
- closes a connection that has sent nothing for ``read_timeout`` seconds
  while a request is incomplete or between requests, and one whose request
  is not complete ``request_timeout`` seconds after its first byte, however
  steadily it trickles (waitress alone only has an idle timeout, which every
  byte resets).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from flask import Flask

from publisher.errors import PublisherError
from publisher.state import StateStore, is_busy

from .app import MAX_REQUEST_BYTES
from .context import SERVE_THREADS
from .ratelimit import EVENT_RETENTION

log = logging.getLogger("publisher.web")


class ServeError(PublisherError):
    """The server cannot start (the address is in use, the port needs privileges)."""


def serve(app: Flask, *, host: str, port: int, on_ready: Callable[[str], None], threads: int = SERVE_THREADS) -> None:
    """Run ``app`` under waitress until Ctrl-C or SIGTERM; queued
    confirmation emails are sent before it returns.

    ``on_ready`` gets the URL once the socket listens. No ``Server`` header
    is sent, and waitress leaves X-Forwarded-For alone: ``client_ip``
    reads it, believing only ``[serve] trusted_proxies``.
    """
    settings = app.extensions["publisher.web"].config.serve
    _raise_open_file_limit(settings.connection_limit + 64)
    try:
        server = _guarded_server(
            app,
            host=host,
            port=port,
            threads=threads,
            read_timeout=settings.read_timeout,
            request_timeout=settings.request_timeout,
            connection_limit=settings.connection_limit,
        )
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another server using it? choose another with --port or [serve] port)"
        ) from exc

    def stop(_signum, _frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    upkeep = Upkeep(app.extensions["publisher.web"])
    try:
        upkeep.start()
        shown_host = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown_host}:{server.effective_port}/")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        upkeep.stop()
        mailer = app.extensions.get("publisher.mailer")
        if mailer is not None:
            mailer.close()


def _guarded_server(app, *, host, port, threads, read_timeout, request_timeout, connection_limit):
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer
    from waitress.task import ThreadedTaskDispatcher

    class GuardedChannel(HTTPChannel):
        """A connection that remembers when its current request began."""

        request_started = 0.0

        def received(self, data):
            if self.request is None and data:
                self.request_started = time.monotonic()
            return super().received(data)

    class GuardedServer(TcpWSGIServer):
        channel_class = GuardedChannel

        def maintenance(self, now):
            # ``now`` is wall time (waitress's last_activity is too); the
            # request's age is measured on the monotonic clock.
            started_before = time.monotonic() - request_timeout
            idle_before = now - read_timeout
            for channel in list(self.active_channels.values()):
                if channel.requests:  # answered by a thread now: not the client's to hold
                    continue
                trickling = channel.request is not None and channel.request_started < started_before
                if trickling or channel.last_activity < idle_before:
                    channel.will_close = True

    adjustments = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="",
        clear_untrusted_proxy_headers=False,
        max_request_body_size=MAX_REQUEST_BYTES * 4,
        expose_tracebacks=False,
        connection_limit=connection_limit,
        channel_timeout=read_timeout,
        cleanup_interval=1,
        asyncore_use_poll=True,
    )
    if len(adjustments.listen) > 1:  # a name such as localhost: its first address
        log.info("%s has %d addresses; listening on the first", host, len(adjustments.listen))
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    return GuardedServer(app, {}, dispatcher=dispatcher, adj=adjustments, sockinfo=adjustments.listen[0])


def _raise_open_file_limit(wanted: int) -> None:
    """Let the process hold ``wanted`` sockets, as far as the hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("only %d open files allowed; [serve] connection_limit is %d", target, wanted - 64)


class Upkeep(threading.Thread):
    """The server's chores, off every request's path: apply the unsubscribe
    journal as soon as the state store is free (checked every second), and
    every ``PRUNE_EVERY`` seconds drop rate-limit events older than any
    window and subscribe requests past ``[serve] confirm_expiry`` (with the
    pending addresses that never confirmed)."""

    PRUNE_EVERY = 600

    def __init__(self, site):
        super().__init__(name="serve-upkeep", daemon=True)
        self.site = site
        self.halt = threading.Event()

    def run(self) -> None:
        next_prune = 0.0
        while True:
            if self.site.journal.pending():
                self._chore(lambda store: self.site.journal.apply(store, now=self.site.now()))
            if time.monotonic() >= next_prune and self._chore(self._prune):
                next_prune = time.monotonic() + self.PRUNE_EVERY
            if self.halt.wait(1.0):
                break
        if self.site.journal.pending():
            self._chore(lambda store: self.site.journal.apply(store, now=self.site.now()))

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(30)

    def _prune(self, store: StateStore) -> None:
        now = self.site.now()
        events = store.web_events.forget(now - EVENT_RETENTION)
        purged = store.confirmations.purge(now)
        if events or purged:
            log.info("upkeep: %d old rate-limit events dropped, %d unconfirmed addresses purged", events, purged)

    def _chore(self, chore) -> bool:
        """Run ``chore`` on a store of its own; False if the store was busy or failed."""
        try:
            store = StateStore.connect(self.site.config.state, check=False, wait=1.0)
        except PublisherError as exc:
            log.error("upkeep: %s", exc)
            return False
        try:
            chore(store)
            return True
        except Exception as exc:  # the thread must outlive any one failure
            if not is_busy(exc):
                log.exception("upkeep failed")
            return False
        finally:
            store.close()
