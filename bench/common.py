"""What the benchmarks share: sizes, timing, peak memory, sites, and the report.

Every figure is printed next to a baseline measured in the same run, as a
ratio: these machines are shared and noisy, so a lone absolute time means
little. ``BENCH_FULL=1`` selects the issue's sizes; the default is a quick
run with smaller ones.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from bench.corpus import write_corpus

FULL = os.environ.get("BENCH_FULL", "") not in ("", "0")
SECRET = "bench-secret-that-is-long-enough-0123456789"
SECRET_ENV = "BENCH_PUBLISHER_SECRET"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
PYTHON = sys.executable
# Posts in the benchmarks' digest, in full: about a 45 KB HTML email, as in the issue.
DIGEST_POSTS = 7

T = TypeVar("T")


def size(quick: int, full: int) -> int:
    """``full`` with BENCH_FULL=1, else ``quick``."""
    return full if FULL else quick


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}"
    )


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


@dataclass
class Outcome:
    """One target's verdict: its figure, the ratio to its baseline and the goal."""

    target: str
    figure: str
    ratio: float | None
    goal: str
    met: bool | None  # None: not measured (a tool missing, a feature pending)


OUTCOMES: list[Outcome] = []


def verdict(target: str, figure: str, ratio: float | None, goal: str, met: bool | None) -> None:
    OUTCOMES.append(Outcome(target, figure, ratio, goal, met))
    mark = {True: "MET", False: "MISSED", None: "n/a"}[met]
    shown = f"{ratio:.2f}" if ratio is not None else "-"
    print(f"  => {target}: {figure}; ratio {shown} (goal {goal}): {mark}", flush=True)


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def line(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def run_measured(cmd: Sequence[str], *, cwd: Path | None = None, env: dict | None = None) -> tuple[int, float, float, str]:
    """Run ``cmd``; (exit code, seconds, peak RSS in MB, its stderr).

    The peak is that of the process and its descendants together (worker
    processes count): their RSS summed every 50 ms from /proc, or the
    process's own high-water mark (``VmHWM``) when that is higher. Not
    ``ru_maxrss`` from ``wait4``: the child is forked from this process
    before it execs, and the fork's size would count.
    """
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile() as err:
        with subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=err) as proc:
            while proc.poll() is None:
                peak_kb = max(peak_kb, _tree_rss_kb(proc.pid))
                time.sleep(0.05)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return proc.returncode, seconds, peak_kb / 1024, stderr


def _status_kb(pid: int, field: str) -> int:
    try:
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            if text.startswith(field):
                return int(text.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    """max(VmHWM of ``root``, the VmRSS of ``root`` and its descendants summed)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return max(_status_kb(root, "VmHWM:"), sum(_status_kb(pid, "VmRSS:") for pid in tree))


# -- sites ---------------------------------------------------------------------


def write_site(
    root: Path,
    *,
    posts: int,
    smtp_port: int | None = None,
    connections: int = 4,
    digest_posts: int = 10,
    full_content: bool = True,
) -> Path:
    """A site with ``posts`` generated Markdown posts and one list, ``daily``;
    returns the config's path. With ``smtp_port`` it sends by SMTP to 127.0.0.1."""
    root.mkdir(parents=True, exist_ok=True)
    write_corpus(root / "posts", posts)
    if smtp_port:
        transport = (
            f'transport = "smtp"\n\n[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\n'
            f'security = "none"\nconnections = {connections}\ntimeout = 30\nmessages_per_connection = 0\n'
        )
    else:
        transport = 'transport = "outbox"\n'
    config = root / "publisher.toml"
    config.write_text(
        '[site]\ntitle = "War in Context"\nurl = "https://example.org/"\ndescription = "News and views"\n'
        'language = "en"\ntimezone = "America/New_York"\n'
        'author = { name = "Editor", email = "editor@example.org" }\n\n'
        '[content]\npaths = ["posts"]\n\n[feeds]\nout = "feeds"\nitems = 20\nfull_content = true\n\n'
        '[state]\npath = ".publisher/state.db"\n\n'
        f'[mail]\nfrom = "War in Context <news@example.org>"\nsecret_env = "{SECRET_ENV}"\n'
        + transport
        + f'\n[lists.daily]\ntitle = "Daily digest"\ndescription = "The day\'s posts"\n'
        f"max_posts = {digest_posts}\nbackfill = {digest_posts}\nfull_content = {'true' if full_content else 'false'}\n",
        encoding="utf-8",
    )
    os.environ[SECRET_ENV] = SECRET
    return config


def add_subscribers(state: Path, count: int, list_name: str = "daily") -> None:
    """``count`` active subscribers of ``list_name``, inserted with executemany
    in one transaction (the state store must exist: open it once first).

    Names vary as real ones do: plain, quoted, non-ASCII, empty.
    """
    names = ("Reader {n}", "Ann O'Brien {n}", "Søren Ek {n}", "", "李华 {n}", '"Doc" Smith {n}')
    stamp = NOW.isoformat()
    db = sqlite3.connect(state)
    try:
        with db:
            start = db.execute("SELECT COALESCE(MAX(id), 0) FROM subscribers").fetchone()[0]
            db.executemany(
                "INSERT INTO subscribers (id, email, name, status, source, created, changed) "
                "VALUES (?, ?, ?, 'active', 'bench', ?, ?)",
                (
                    (start + n + 1, f"reader{start + n}@example.net", names[n % len(names)].format(n=n), stamp, stamp)
                    for n in range(count)
                ),
            )
            db.executemany(
                "INSERT INTO subscriptions (subscriber_id, list, status, changed) VALUES (?, ?, 'active', ?)",
                ((start + n + 1, list_name, stamp) for n in range(count)),
            )
    finally:
        db.close()


def open_site(config_path: Path):
    """(config, store) of a site; the caller closes the store."""
    from publisher.config import load_config
    from publisher.state.store import StateStore

    config = load_config(config_path)
    return config, StateStore.open(config.state.path)


def print_summary() -> None:
    heading("summary")
    for o in OUTCOMES:
        mark = {True: "MET", False: "MISSED", None: "n/a"}[o.met]
        shown = f"{o.ratio:.2f}" if o.ratio is not None else "-"
        print(f"  [{mark:>6}] {o.target}: {o.figure} | ratio {shown}, goal {o.goal}")
