"""``Quiet``: the requests being answered, counted, so that background work
waits for a moment when none is.

The confirmation mailer's work for a new address (recording the request,
rendering and sending the email: milliseconds of CPU) would otherwise start
while the request that queued it is still being answered, and slow that
answer: its timing would tell a new address from a known one. Behind
``Quiet`` the work waits until no request has been in flight for ``settle``
seconds, or at the latest until its deadline (on a server that is never
quiet), so it falls on no request in particular.

    quiet = Quiet(app.wsgi_app)
    app.wsgi_app = quiet
    quiet.wait(deadline)   # in the background thread: True once quiet
    quiet.stop()           # shutting down: nothing waits any more
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

# Long enough for the server's own thread to send the last answer's bytes
# after the application has returned them.
SETTLE = 0.02
# One wait's limit (a deadline may be infinite; the lock's timeout may not).
_LONGEST_WAIT = 3600.0


class Quiet:
    """WSGI middleware counting the requests in flight (see the module)."""

    def __init__(self, app, *, settle: float = SETTLE, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.settle = settle
        self._clock = clock
        self._in_flight = 0
        self._last_answer = float("-inf")
        self._stopped = False
        self._waiting = 0
        self._changed = threading.Condition()

    def __call__(self, environ, start_response):
        with self._changed:
            self._in_flight += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._answered()
            raise
        return _Answer(body, self._answered)

    def wait(self, deadline: float) -> bool:
        """Block until no request has been in flight for ``settle`` seconds
        (True), or until ``deadline`` on the clock, or ``stop()`` (False)."""
        with self._changed:
            self._waiting += 1
            try:
                while not self._stopped:
                    now = self._clock()
                    if now >= deadline:
                        return False
                    if self._in_flight:
                        timeout = deadline - now
                    else:
                        quiet_for = now - self._last_answer
                        if quiet_for >= self.settle:
                            return True
                        timeout = min(self.settle - quiet_for, deadline - now)
                    self._changed.wait(min(timeout, _LONGEST_WAIT))
                return False
            finally:
                self._waiting -= 1

    def stop(self) -> None:
        """Release every ``wait`` now and from now on."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        with self._changed:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """Threads in ``wait`` now."""
        with self._changed:
            return self._waiting

    def _answered(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._last_answer = self._clock()
            self._changed.notify_all()


class _Answer:
    """An application's body, reporting once when it has been sent
    (iterated to its end) or closed, whichever comes first."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]):
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._report()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._report()

    def _report(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()
