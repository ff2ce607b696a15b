"""Run the benchmarks: ``python -m bench [startup|messages|send|feeds|serve|handwritten|relay ...]`` (all by default).

``make bench`` runs this; ``BENCH_FULL=1`` uses the issue's sizes.
"""

from __future__ import annotations

import sys
import time

from bench import bench_feeds, bench_handwritten, bench_messages, bench_relay, bench_send, bench_serve, bench_startup
from bench.common import FULL, machine, print_summary

BENCHMARKS = {
    "startup": bench_startup.run,
    "messages": bench_messages.run,
    "send": bench_send.run,
    "feeds": bench_feeds.run,
    "serve": bench_serve.run,
    "handwritten": bench_handwritten.run,
    "relay": bench_relay.run,
}


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    print(f"mode: {'full (BENCH_FULL=1): the issue sizes' if FULL else 'quick (BENCH_FULL=1 for the issue sizes)'}")
    started = time.monotonic()
    for name in names or list(BENCHMARKS):
        BENCHMARKS[name]()
    print_summary()
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
