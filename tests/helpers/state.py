"""Reading a state store whole, whichever backend holds it."""

from __future__ import annotations

from pathlib import Path


def state_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the store at ``path`` (as ``StateStore.open`` finds it), sorted."""
    from publisher.state.schema import table_names
    from publisher.state.store import StateStore

    store = StateStore.open(path, check=False)
    try:
        return {
            table: sorted(store.database.query(f"SELECT * FROM {table}"), key=repr) for table in table_names()
        }
    finally:
        store.close()
