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


# Set by conftest's ``state_backend`` fixture on the PostgreSQL variant: the
# database ``StateStore.open(path)`` maps the state file at ``path`` to.
database_for = None


def pin_state(config_path: Path) -> None:
    """On the PostgreSQL variant of a test, write into the site's config the
    database the test's own ``StateStore.open`` reads for that site, so a
    ``publisher`` process started from the config uses the same store.
    Nothing on SQLite, or when the config names a database already."""
    if database_for is None:
        return
    from publisher.config import load_config

    settings = load_config(config_path).state
    if settings.url is not None:
        return
    url = database_for(settings.path)
    text = config_path.read_text(encoding="utf-8")
    if "\n[state]\n" in f"\n{text}":
        text = f"\n{text}".replace("\n[state]\n", f'\n[state]\nurl = "{url}"\n', 1)[1:]
    else:
        text = f'{text.rstrip()}\n\n[state]\nurl = "{url}"\n'
    config_path.write_text(text, encoding="utf-8")
