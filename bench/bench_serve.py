"""Target 5: ``publisher serve`` answering a conditional GET with 304 vs the full feed.

A site of generated posts is built and ``publisher serve --port 0`` started
on 127.0.0.1. A load generator (``wrk`` from Debian's packages, 4 keep-alive
connections, a fixed time per phase; Python client threads when wrk cannot
be had) asks for ``/feeds/rss.xml``: without validators (the full body, as
is and gzipped), then with the ``If-None-Match`` of the current file and
with its ``If-Modified-Since`` (304s). Every answer's status is counted.

Two baselines in the same run put the ratio in its place:

- *the server's floor*: a WSGI application that does nothing but answer
  304 with the same headers, under waitress with publisher's settings: no
  application can answer faster under this server;
- *nginx* (Debian's ``nginx-light``) serving the same folder, full body and
  304: what a 304 saves where the server's own cost per request is small.

    .venv/bin/python -m bench.bench_serve
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from bench.common import PYTHON, SECRET, SECRET_ENV, heading, line, size, verdict, write_site
from bench.debian import ensure_tool
from bench.sink import _free_port

CLIENTS = 4
PATH = "/feeds/rss.xml"

_COUNT_STATUSES = """
expected, other = 0, 0
function response(status, headers, body)
  if status == {expect} then expected = expected + 1 else other = other + 1 end
end
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local e, o = 0, 0
  for _, t in ipairs(threads) do e = e + t:get("expected"); o = o + t:get("other") end
  io.write(string.format("statuses: %d expected, %d other\\n", e, o))
end
"""


# -- servers -------------------------------------------------------------------------


def _wait_for_url(process: subprocess.Popen, what: str) -> int:
    """The port of the ``http://127.0.0.1:PORT/`` line ``process`` prints when ready."""
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = process.stdout.readline()
        if not shown:
            break
        if "http://127.0.0.1:" in shown:
            return int(shown.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
    process.kill()
    raise RuntimeError(f"{what} did not say where it listens")


def _start_publisher(config_path: Path) -> tuple[subprocess.Popen, int]:
    command = [PYTHON, "-m", "publisher", "--config", str(config_path), "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, SECRET_ENV: SECRET}, text=True
    )
    return process, _wait_for_url(process, "publisher serve")


def _start_floor(feed: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.bench_serve", "floor", str(feed)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    return process, _wait_for_url(process, "the floor server")


def floor(feed: Path) -> None:
    """Serve, under waitress as ``publisher serve`` runs it, an application
    answering every request with the 304 publisher sends for ``feed``."""
    from waitress import create_server

    from publisher.app.web import FeedFiles

    files = FeedFiles(None, feed.parent, "/")  # only to describe the file as serve does
    headers = files._describe(feed.name, str(feed), str(feed), feed.stat()).plain_304

    def app(environ, start_response):
        start_response("304 Not Modified", headers)
        return []

    server = create_server(
        app, host="127.0.0.1", port=0, threads=8, ident="", clear_untrusted_proxy_headers=False, asyncore_use_poll=True
    )
    print(f"http://127.0.0.1:{server.effective_port}/", flush=True)
    server.run()


def _start_nginx(nginx: str, root: Path, work: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    config = work / "nginx.conf"
    config.write_text(
        textwrap.dedent(
            f"""\
            worker_processes 1;
            daemon off;
            pid {work}/nginx.pid;
            error_log {work}/logs/error.log;
            {"user root;" if os.geteuid() == 0 else ""}
            events {{ worker_connections 256; }}
            http {{
              access_log off;
              client_body_temp_path {work}/body;
              proxy_temp_path {work}/proxy;
              fastcgi_temp_path {work}/fastcgi;
              uwsgi_temp_path {work}/uwsgi;
              scgi_temp_path {work}/scgi;
              types {{ application/rss+xml xml; }}
              server {{ listen 127.0.0.1:{port}; root {root}; etag on; }}
            }}
            """
        )
    )
    process = subprocess.Popen([nginx, "-c", str(config), "-p", str(work)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _probe(port, {})
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    _stop(process)
    raise RuntimeError("nginx did not start")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- load ----------------------------------------------------------------------------


def _probe(port: int, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", PATH, headers=headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        return response
    finally:
        connection.close()


def _wrk(wrk: str, port: int, headers: dict[str, str], expect: int, seconds: float) -> float:
    """Requests per second over CLIENTS connections, every status checked."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_COUNT_STATUSES.format(expect=expect))
    try:
        command = [wrk, "-t1", f"-c{CLIENTS}", f"-d{seconds}s", "-s", script.name]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        shown = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    statuses = re.search(r"statuses: (\d+) expected, (\d+) other", shown)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", shown)
    if not statuses or not rate:
        raise RuntimeError(f"wrk said:\n{shown}")
    if int(statuses.group(2)) or not int(statuses.group(1)):
        raise RuntimeError(f"GET {PATH}: {statuses.group(2)} answers were not {expect}")
    return float(rate.group(1))


def _python_load(port: int, headers: dict[str, str], expect: int, seconds: float) -> float:
    """The same with Python threads, one keep-alive connection each."""
    counts = [0] * CLIENTS
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while time.monotonic() < stop:
                connection.request("GET", PATH, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != expect:
                    errors.append(f"{response.status} instead of {expect}")
                    return
                counts[index] += 1
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
        raise RuntimeError(f"GET {PATH}: {errors[0]}")
    return sum(counts) / elapsed


def run() -> None:
    seconds = size(3, 10)
    wrk = ensure_tool("wrk", "wrk")
    client = f"wrk, {CLIENTS} connections" if wrk else f"{CLIENTS} Python client threads (wrk could not be installed)"
    heading(f"5. feed serving: 304 vs full body, {client}, {seconds} s a phase")

    def load(port: int, headers: dict[str, str], expect: int) -> float:
        if wrk:
            return _wrk(wrk, port, headers, expect, seconds)
        return _python_load(port, headers, expect, seconds)

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's worker reads the folder
        config_path = write_site(Path(tmp) / "site", posts=200)
        built = subprocess.run(
            [PYTHON, "-m", "publisher", "--config", str(config_path), "-q", "build"], capture_output=True, text=True
        )
        if built.returncode != 0:
            raise RuntimeError(built.stderr)
        try:
            process, port = _start_publisher(config_path)
        except (RuntimeError, OSError) as exc:
            line("publisher serve", f"could not be started: {exc}")
            verdict("5 feed serving", "serve did not start", None, ">= 20x", None)
            return
        try:
            first = _probe(port, {})
            etag, modified = first.getheader("ETag"), first.getheader("Last-Modified")
            if first.status != 200 or not etag or not modified:
                raise RuntimeError(f"GET {PATH}: {first.status}, ETag {etag!r}")
            not_modified = _probe(port, {"If-None-Match": etag})
            head_bytes = sum(len(k) + len(v) + 4 for k, v in not_modified.getheaders())
            full_rate = load(port, {}, 200)
            gzip_rate = load(port, {"Accept-Encoding": "gzip"}, 200)
            cond_rate = load(port, {"If-None-Match": etag}, 304)
            since_rate = load(port, {"If-Modified-Since": modified}, 304)
        finally:
            _stop(process)
        process, port = _start_floor(config_path.parent / "feeds" / "rss.xml")
        try:
            floor_rate = load(port, {}, 304)
        finally:
            _stop(process)
        nginx = ensure_tool("nginx", "nginx-light", candidates=("/usr/sbin/nginx",), stop=("nginx", "-s", "quit"))
        nginx_rates = None
        if nginx:
            try:
                process, port = _start_nginx(nginx, config_path.parent, Path(tmp) / "nginx")
            except (RuntimeError, OSError) as exc:
                line("nginx", f"could not be started: {exc}")
            else:
                try:
                    tag = _probe(port, {}).getheader("ETag")
                    nginx_rates = load(port, {}, 200), load(port, {"If-None-Match": tag}, 304)
                finally:
                    _stop(process)

    body = len(first.body)  # type: ignore[attr-defined]
    line(f"full body ({body:,} bytes)", f"{full_rate:,.0f} requests/s")
    line("full body, gzipped", f"{gzip_rate:,.0f} requests/s")
    line(f"If-None-Match: 304 (headers {head_bytes:,} bytes)", f"{cond_rate:,.0f} requests/s")
    line("If-Modified-Since: 304", f"{since_rate:,.0f} requests/s")
    line("floor: a WSGI app answering only 304, same server", f"{floor_rate:,.0f} requests/s")
    line("publisher's 304 against that floor", f"{cond_rate / floor_rate:.2f}")
    if nginx_rates:
        line("nginx, same file: full body", f"{nginx_rates[0]:,.0f} requests/s")
        line("nginx, same file: 304", f"{nginx_rates[1]:,.0f} requests/s")
        line("nginx: 304 vs its full body", f"{nginx_rates[1] / nginx_rates[0]:.2f}x")
    else:
        line("nginx", "not available: no reference ratio")
    line("bytes: full body vs 304 (headers included)", f"{(body + head_bytes) / head_bytes:.0f}x fewer")
    ratio = cond_rate / full_rate
    verdict("5 feed serving", f"304 at {cond_rate:,.0f}/s vs full body at {full_rate:,.0f}/s", ratio, ">= 20x", ratio >= 20)
    # What a 304 can cost at the least under this server: the part of it that is publisher's.
    floor_ratio = cond_rate / floor_rate
    verdict(
        "5 feed serving: 304 vs the server's floor",
        f"304 at {cond_rate:,.0f}/s vs a do-nothing 304 app at {floor_rate:,.0f}/s",
        floor_ratio,
        ">= 0.8",
        floor_ratio >= 0.8,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["floor"]:
        floor(Path(sys.argv[2]))
    else:
        run()
