"""Start-up: what a command costs before it does anything.

Every cron ``publisher run --once`` and every test that starts a process pays
for the imports of the command line. The baseline is bare Python
(``python -c pass``) measured in the same run, interleaved with the
commands so a busy moment of the machine falls on both alike; each figure is
the median of several runs, reported as seconds over the baseline:

- ``publisher --version`` and ``publisher --help``: within 0.25 s of bare Python;
- ``publisher status`` on a built site (config, state store, schedules): within 0.5 s.

    .venv/bin/python -m bench.bench_startup
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import PYTHON, heading, line, size, verdict, write_site

PUBLISHER = str(Path(PYTHON).with_name("publisher"))


def _once(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return seconds


def run() -> None:
    heading("start-up: publisher commands against bare Python")
    rounds = size(9, 21)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        site = Path(tmp) / "site"
        config = write_site(site, posts=20)
        subprocess.run([PUBLISHER, "--config", str(config), "-q", "build"], check=True)
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "publisher --version": [PUBLISHER, "--version"],
            "publisher --help": [PUBLISHER, "--help"],
            "publisher status": [PUBLISHER, "--config", str(config), "status"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, cmd in commands.items():  # warm the page cache first
            _once(cmd, site)
        for _ in range(rounds):
            for name, cmd in commands.items():
                times[name].append(_once(cmd, site))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["python -c pass"]
    line("python -c pass (baseline, median)", f"{base * 1000:.0f} ms")
    for name, limit in (("publisher --version", 0.25), ("publisher --help", 0.25), ("publisher status", 0.5)):
        over = medians[name] - base
        line(f"{name} (median of {rounds})", f"{medians[name] * 1000:.0f} ms, {over * 1000:+.0f} ms over Python")
        verdict(
            f"start-up: {name}",
            f"{over * 1000:.0f} ms over bare Python",
            medians[name] / base,
            f"within {limit * 1000:.0f} ms of bare Python",
            over <= limit,
        )


if __name__ == "__main__":
    run()
