"""A site with the lists daily and weekly, and how the subscriber tests read its store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher.state.store import StateStore

from ..conftest import DATA, write_config

FIXTURES = DATA / "subscribers"


LISTS = '\n[lists.daily]\ntitle = "Daily digest"\n\n[lists.weekly]\ntitle = "Weekly digest"\n'


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site with the lists daily and weekly, as the working directory."""
    root = tmp_path / "site"
    root.mkdir()
    write_config(root, LISTS)
    monkeypatch.chdir(root)
    return root


def open_store(site: Path) -> StateStore:
    return StateStore.open(site / ".publisher" / "state.db")


def summary(site: Path) -> dict[str, tuple[str, tuple[str, ...], str]]:
    """email -> (name, active lists, status) of every subscriber."""
    store = open_store(site)
    try:
        return {s.email: (s.name, s.lists, s.status) for s in store.subscribers.matching()}
    finally:
        store.close()


def copy_fixture(site: Path, name: str) -> Path:
    return Path(shutil.copy(FIXTURES / name, site / name))

