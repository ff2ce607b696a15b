"""Rate limiting and backoff, measured on an injected clock (nothing sleeps)."""

from __future__ import annotations

import random

import pytest

from publisher.mail.send import RateLimiter, backoff_delay
from .conftest import SteppedClock


def test_rate_limit_spaces_messages_evenly() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(rate=10, clock=clock)
    starts = []
    for _ in range(50):
        limiter.wait()
        starts.append(clock.monotonic())
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps == pytest.approx([0.1] * 49)
    # 50 messages at 10/s: the last starts 4.9 s after the first.
    assert starts[-1] - starts[0] == pytest.approx(4.9)


def test_rate_limit_does_not_bank_idle_time_into_a_burst() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(rate=2, clock=clock)
    limiter.wait()
    clock.t += 60  # a long pause
    limiter.wait()
    limiter.wait()
    assert clock.sleeps == [pytest.approx(0.5)]


def test_no_rate_means_no_waiting() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(rate=0, clock=clock)
    for _ in range(1000):
        limiter.wait()
    assert clock.sleeps == []


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (8, 60.0), (20, 60.0)]:
        delays = [backoff_delay(attempt, base=1.0, cap=60.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        # Jitter: retries of many recipients do not land in step.
        assert len({round(d, 6) for d in delays}) > 150
