"""Shared fixtures: the repository's sample site, copied into a temp folder."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers import state as state_helpers

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEED = REPO / "seeds" / "000_876ff53b270cd303.txt"

# Debian's chromium, driven by Playwright, for what must be seen.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# A fixed clock for everything that takes ``now``.
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


class SteppedClock:
    """The send.Clock protocol on a clock that moves only when told (or slept)."""

    def __init__(self, now: datetime = NOW):
        self.at = now
        self.t = 0.0
        self.sleeps: list[float] = []  # every sleep asked for, in order

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        self.at += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        self.t += (moment - self.at).total_seconds()
        self.at = moment


# -- the state store's two backends ------------------------------------------------
#
# The tests of these modules run once on SQLite and once on PostgreSQL (a
# server of the suite's own, tests/helpers/postgres.py): on PostgreSQL each
# state file a test names, through ``StateStore.open`` or a site's ``[state]
# path``, is a database of its own. A test of what only the SQLite file does
# is marked ``sqlite_only``.
STORE_FACING = {
    "test_state_claims",
    "test_subscribers",
    "test_send",
    "test_send_processes",
    "test_digest",
    "test_optin",
    "test_build_cache",
    "test_scheduler",
    "test_sources",
    "test_cli",
    "test_cli_send",
    "test_bounces",
    "test_bounces_webhooks",
    "test_digest_selection",
    "test_identity_moves",
    "test_unsubscribe_journal",
    "test_subscribers_formats",
    "test_pages",
}
# Not here: test_web and test_web_hardening share one server per module
# (several servers on one database: test_state_postgres_web), and
# test_reliability_crash reads the SQLite file itself.


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if (
        "state_backend" in metafunc.fixturenames
        and module in STORE_FACING
        and metafunc.definition.get_closest_marker("sqlite_only") is None
    ):
        metafunc.parametrize("state_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The suite's PostgreSQL server (one per test worker), stopped at the end."""
    from tests.helpers.postgres import PostgresServer

    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """"sqlite", or "postgresql" with every state file opened as a database of its own."""
    backend = getattr(request, "param", "sqlite")
    if backend != "postgresql":
        yield backend
        return
    from publisher.state import postgres
    from publisher.state.store import StateStore

    server = request.getfixturevalue("postgres_server")
    urls: dict[Path, str] = {}

    def database_for(path: Path) -> str:
        key = Path(path).resolve()
        if key not in urls:  # a new store gets its schema, as a new SQLite file does whatever ``check`` says
            urls[key] = server.create_database()
            postgres.PostgresDatabase.open(urls[key], check=True, reconnect=10).close()
        return urls[key]

    def open_on_postgres(cls, path: Path, readonly: bool = False, *, check: bool = True, wait: float = 10.0):
        return cls.on(postgres.PostgresDatabase.open(database_for(path), readonly=readonly, check=check, reconnect=10))

    monkeypatch.setattr(StateStore, "open", classmethod(open_on_postgres))
    monkeypatch.setattr(state_helpers, "database_for", database_for)  # for processes: helpers.state.pin_state
    try:
        yield backend
    finally:
        postgres.close_pools()


@pytest.fixture
def sample_site(tmp_path: Path) -> Path:
    """A copy of the sample site (config and seeds, no feeds or state)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "publisher.toml", site / "publisher.toml")
    shutil.copytree(REPO / "seeds", site / "seeds")
    return site


def write_config(site: Path, extra: str = "", **site_keys: str) -> Path:
    """Write a minimal valid publisher.toml into ``site``."""
    keys = {"title": '"Test Site"', "url": '"https://example.org/"', "timezone": '"UTC"'}
    keys.update(site_keys)
    lines = ["[site]"] + [f"{k} = {v}" for k, v in keys.items()]
    lines += ['author = { name = "Editor", email = "editor@example.org" }', "", "[content]", 'paths = ["posts"]', ""]
    path = site / "publisher.toml"
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    (site / "posts").mkdir(exist_ok=True)
    return path


@pytest.fixture
def blank_site(tmp_path: Path) -> Path:
    """A site with a minimal config and an empty posts folder."""
    site = tmp_path / "blank"
    site.mkdir()
    write_config(site)
    return site


def build(site: Path, now: datetime = NOW, force: bool = False):
    """Run a build of the site in ``site`` with its own state store."""
    from publisher.feeds.build import build_site
    from publisher.config import load_config
    from publisher.state.store import StateStore

    config = load_config(site / "publisher.toml")
    store = StateStore.open(config.state.path)
    try:
        return build_site(config, store=store, now=now, force=force)
    finally:
        store.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, installed by `make test`), through Playwright."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make test`, which installs the test extra")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Wall:
    """The wall time the post cache judges file times against
    (``content._wall_ns``): by default ten seconds ahead, so every file
    written so far is past the racy window; ``at`` fixes it to a moment."""

    def __init__(self) -> None:
        self.at: int | None = None

    def __call__(self) -> int:
        return self.at if self.at is not None else time.time_ns() + 10_000_000_000


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    from publisher.content import cache as content

    clock = Wall()
    monkeypatch.setattr(content, "_wall_ns", clock)
    return clock


def invoke(*args: str, input: bytes | None = None, clock=None) -> Result:
    """Run the command line in-process; an exception other than SystemExit is a bug."""
    from publisher.app.cli import main

    obj = {"clock": clock} if clock is not None else None
    result = CliRunner().invoke(main, list(args), input=input, obj=obj)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"publisher {' '.join(args)} raised {result.exception!r}; stderr: {result.stderr}"
        ) from result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result
