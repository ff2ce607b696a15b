"""Target 5: ``publisher serve`` answering a conditional GET with 304 vs the full feed.

A site of generated posts is built, ``publisher serve --port 0`` started on
127.0.0.1, and a bounded load client (Python threads, one keep-alive
connection each, a fixed time per phase) asks for ``/feeds/rss.xml``:
without validators (the full body, as is and gzipped), then with the
``If-None-Match`` of the current file (a 304). Requests per second of each
are compared; every request is checked for its status.

    .venv/bin/python -m bench.bench_serve
"""

from __future__ import annotations

import http.client
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.common import PYTHON, SECRET, SECRET_ENV, heading, line, size, verdict, write_site

CLIENTS = 4


def _start(config_path: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, SECRET_ENV: SECRET}
    process = subprocess.Popen(
        [PYTHON, "-m", "publisher", "--config", str(config_path), "serve", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = process.stdout.readline()
        if not shown:
            break
        if "http://127.0.0.1:" in shown:
            port = int(shown.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
            return process, port
    process.kill()
    raise RuntimeError("publisher serve did not say where it listens")


def _load(port: int, path: str, headers: dict[str, str], expect: int, seconds: float) -> tuple[float, int]:
    """(requests per second, bytes per response) over CLIENTS connections for ``seconds``."""
    counts = [0] * CLIENTS
    sizes = [0] * CLIENTS
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while time.monotonic() < stop:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != expect:
                    errors.append(f"{response.status} instead of {expect}")
                    return
                counts[index] += 1
                sizes[index] = len(body)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if errors:
        raise RuntimeError(f"GET {path}: {errors[0]}")
    return sum(counts) / elapsed, max(sizes)


def run() -> None:
    seconds = size(3, 10)
    heading(f"5. feed serving: 304 vs full body, {CLIENTS} keep-alive clients, {seconds} s a phase")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        config_path = write_site(Path(tmp) / "site", posts=200)
        built = subprocess.run(
            [PYTHON, "-m", "publisher", "--config", str(config_path), "-q", "build"], capture_output=True, text=True
        )
        if built.returncode != 0:
            raise RuntimeError(built.stderr)
        try:
            process, port = _start(config_path)
        except (RuntimeError, OSError) as exc:
            line("publisher serve", f"could not be started: {exc}")
            verdict("5 feed serving", "serve did not start", None, ">= 20x", None)
            return
        try:
            path = "/feeds/rss.xml"
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            probe.request("GET", path)
            response = probe.getresponse()
            response.read()
            etag = response.getheader("ETag")
            probe.close()
            if response.status != 200 or not etag:
                raise RuntimeError(f"GET {path}: {response.status}, ETag {etag!r}")
            full_rate, full_bytes = _load(port, path, {}, 200, seconds)
            gzip_rate, gzip_bytes = _load(port, path, {"Accept-Encoding": "gzip"}, 200, seconds)
            cond_rate, _ = _load(port, path, {"If-None-Match": etag}, 304, seconds)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        line(f"full body ({full_bytes:,} bytes)", f"{full_rate:,.0f} requests/s")
        line(f"full body gzipped ({gzip_bytes:,} bytes)", f"{gzip_rate:,.0f} requests/s")
        line("If-None-Match: 304", f"{cond_rate:,.0f} requests/s")
        ratio = cond_rate / full_rate
        verdict("5 feed serving", f"304 at {cond_rate:,.0f}/s vs full body at {full_rate:,.0f}/s", ratio, ">= 20x", ratio >= 20)


if __name__ == "__main__":
    run()
