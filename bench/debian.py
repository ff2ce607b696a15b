"""Tools the benchmarks use from Debian's packages, installed when missing.

    wrk = ensure_tool("wrk", "wrk")          # its path, or None when it cannot be installed

Installation is non-interactive and without recommended packages. A package
whose scripts start a service (nginx) is stopped afterwards by ``stop``, so
nothing is left listening.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def find_tool(name: str, candidates: Sequence[str] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((path for path in candidates if Path(path).is_file()), None)


def ensure_tool(name: str, package: str, *, candidates: Sequence[str] = (), stop: Sequence[str] = ()) -> str | None:
    """The path of ``name``, installing ``package`` with apt-get if needed; None if that fails."""
    found = find_tool(name, candidates)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        installed = subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package], env=env, capture_output=True
        )
        if stop:
            subprocess.run([*sudo, *stop], check=False, env=env, capture_output=True)
    except OSError:  # no apt-get, no sudo
        return None
    if installed.returncode != 0:
        return None
    return find_tool(name, candidates)
