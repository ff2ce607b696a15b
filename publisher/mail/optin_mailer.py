"""``ConfirmationMailer``: the web server's subscribe requests, confirmation
emails and welcome emails, handled in one background thread.

A subscribe request is queued as it came (the address, the name and the
lists asked for) and answered at once: the request's path does the same
work whatever the address, so its timing tells nothing about whether the
address is new, pending, active or gone. The thread then records the
request (``publisher.mail.optin``) and sends the confirmation email, if
one is due. The queue is bounded (``[serve] mail_queue``): a flood beyond
it is shed, and the form answers the same. After a confirmation, the
welcome email goes out once per subscriber (``[mail] welcome``).

Its work costs milliseconds of CPU for a new address and next to nothing
for a known one; done while the request that queued it is still being
answered, it would slow that answer and so tell the two apart. Given the
web server's ``quiet`` (``publisher.app.web.quiet``), each job waits until
no request is in flight, or at the latest ``LONGEST`` seconds.

    mailer = ConfirmationMailer(config, transport)
    mailer.submit("reader@example.org", "Ann", ["daily"], now=now)   # False: shed
    mailer.welcome("reader@example.org", ["daily"], now=now)
    mailer.close()          # handles what is queued, then stops
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from publisher.config import Config
from publisher.errors import DeliveryError, PublisherError, TransportError
from publisher.mail.optin import confirmation_message, list_message, request_subscription, requested_lists
from publisher.mail.render import render_welcome
from publisher.mail.tokens import sign_token
from publisher.state import StateStore, is_busy
from publisher.text import mask_email

log = logging.getLogger("publisher.optin")

# A busy state store (another process writing) is tried again this many
# times, waiting twice as long each time, before the request is dropped.
_TRIES = 6
_EMAIL = {"subscribe": "confirmation", "welcome": "welcome"}
# The longest a job waits for the web server to be quiet, in seconds.
LONGEST = 2.0


@dataclass(frozen=True)
class _Job:
    kind: str  # "subscribe" or "welcome"
    email: str
    name: str
    lists: tuple[str, ...]
    now: datetime
    due: float  # when it is handled even if requests keep coming (monotonic clock)


class ConfirmationMailer:
    """Subscribe requests and their emails, off the request's path (see the module)."""

    def __init__(
        self,
        config: Config,
        transport,
        *,
        open_store: Callable[[], StateStore] | None = None,
        quiet=None,
        longest: float = LONGEST,
    ):
        self.config = config
        self.transport = transport
        self.sender = config.mail.sender_address
        self.open_store = open_store or (lambda: StateStore.connect(config.state, check=False))
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=config.serve.mail_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Has ``wait(deadline)`` and ``stop()``: see the module.
        self.quiet = quiet
        self.longest = longest

    def submit(self, email: str, name: str, lists: Sequence[str], *, now: datetime) -> bool:
        """Queue a subscribe request; False when the queue is full (the request is shed)."""
        return self._put("subscribe", email, name, lists, now)

    def welcome(self, email: str, lists: Sequence[str], *, now: datetime) -> bool:
        """Queue the welcome email of a subscriber who just confirmed ``lists``."""
        if not self.config.mail.welcome:
            return False
        return self._put("welcome", email, "", lists, now)

    def _put(self, kind: str, email: str, name: str, lists: Sequence[str], now: datetime) -> bool:
        job = _Job(kind, email, name, tuple(lists), now, due=time.monotonic() + self.longest)
        with self._lock:
            if self._closed:
                raise RuntimeError("the confirmation mailer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="confirmation-mailer", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                log.warning("%s request shed: %d waiting already ([serve] mail_queue)", job.kind, self._queue.maxsize)
                return False
            return True

    def close(self, timeout: float = 30.0) -> None:
        """Handle what is queued (waiting at most ``timeout`` seconds), then stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if self.quiet is not None:
            self.quiet.stop()  # what is queued goes out now
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        connection = store = None
        while (job := self._queue.get()) is not None:
            if self.quiet is not None:
                self.quiet.wait(job.due)
            try:
                store = store or self.open_store()
                built = self._with_store(store, job)
                if built is not None:
                    recipient, message = built
                    if connection is None:
                        connection = self.transport.connect()
                    connection.send(self.sender, recipient, message)
                    log.info("%s email to %s handed to the %s transport", _EMAIL[job.kind], mask_email(recipient), self.transport.name)
            except TransportError as exc:
                log.error("%s email not sent: %s", job.kind, exc)
                connection = self._drop(connection)
            except DeliveryError as exc:
                log.warning("%s email refused: %s", job.kind, exc)
            except PublisherError as exc:
                log.error("%s request dropped: %s", job.kind, exc)
            except Exception:  # the thread must outlive one bad request
                log.exception("%s request dropped", job.kind)
                connection = self._drop(connection)
            if self._queue.empty():
                connection = self._drop(connection)
                store = self._drop(store)
        self._drop(connection)
        self._drop(store)

    def _with_store(self, store: StateStore, job: _Job) -> tuple[str, bytes] | None:
        """``_handle``, again while another process holds the write lock."""
        for attempt in range(_TRIES):
            try:
                return self._handle(store, job)
            except Exception as exc:
                if not is_busy(exc) or attempt == _TRIES - 1:
                    raise
                log.info("%s request: the state store is busy; trying again", job.kind)
                time.sleep(0.5 * 2**attempt)
        return None

    def _handle(self, store: StateStore, job: _Job) -> tuple[str, bytes] | None:
        """The recipient and the email a job calls for, if any (its changes recorded)."""
        lists = requested_lists(self.config, job.lists)
        if job.kind == "subscribe":
            found = request_subscription(self.config, store, job.email, job.name, lists, now=job.now)
            if found is None:
                return None
            return found.email, confirmation_message(self.config, found.email, found.lists, found.token, now=job.now)
        subscriber = store.subscribers.find(job.email)
        if subscriber is None or subscriber.status != "active" or not lists:
            return None
        message = welcome_message(self.config, subscriber.email, subscriber.name, lists, now=job.now)
        if message is None or not store.subscribers.mark_welcomed(subscriber.id, job.now):
            return None  # no template, or welcomed already: once per subscriber
        return subscriber.email, message

    @staticmethod
    def _drop(opened):
        if opened is not None:
            opened.close()
        return None


def welcome_message(config: Config, email: str, name: str, lists, *, now: datetime) -> bytes | None:
    """The welcome email to ``email`` for ``lists`` just confirmed; None without a welcome template."""
    secret = config.mail.secret
    assert secret is not None, "the web server runs with a secret"
    site = config.site.url
    first = lists[0]
    preferences = f"{site}preferences/{sign_token(secret, email, first.name, purpose='preferences')}"
    rendered = render_welcome(
        config.site_info, lists, name=name, preferences_url=preferences, templates=config.mail.templates / "email"
    )
    if rendered is None:
        return None
    return list_message(config, secret, email, name, first, rendered, kind="welcome", now=now)
