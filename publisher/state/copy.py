"""Moving a whole state store from one backend to another (``publisher state
copy``): every row of every table with its ids, into an empty store, in one
transaction, verified before it commits by each table's row count and a
checksum of its rows read back from both sides.

    source = open_location("sqlite:.publisher/state.db", readonly=True)
    target = open_location("postgresql://publisher@db/publisher")
    tables = copy_state(source, target)     # [TableCopy("posts", 120, "9f2c…"), …]

The checksum of a table is the sum, modulo 2**256, of the SHA-256 of each
row's values written out one way whatever the backend (so the order rows
come back in does not matter, and an integer is never confused with the
text of its digits).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import StateError
from publisher.state.schema import MIGRATIONS, table_names
from publisher.state.store import StateStore

BATCH = 1000


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_location(
    location: str, *, readonly: bool = False, password: str | None = None, timeout: float = 30
) -> StateStore:
    """The store at ``location``: ``sqlite:PATH`` (or a bare path) or a PostgreSQL URL."""
    if is_postgres(location):
        from publisher.state.postgres import PostgresDatabase

        return StateStore.on(PostgresDatabase.open(location, password=password, timeout=timeout, readonly=readonly))
    path = Path(location.removeprefix("sqlite:"))
    if readonly and not path.exists():
        raise StateError(f"{path}: no such state database")
    return StateStore.open(path, readonly=readonly)


def _value(value: Any) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value).hex().encode()
    if isinstance(value, float):
        return b"f" + repr(value).encode()
    return b"s" + str(value).encode("utf-8")


def row_digest(row: tuple) -> int:
    return int.from_bytes(hashlib.sha256(b"\x1f".join(_value(v) for v in row)).digest(), "big")


def table_checksum(store: StateStore, table: str, columns: list[str]) -> TableCopy:
    """How many rows ``table`` holds, and their checksum."""
    total, count = 0, 0
    for row in store.database.query(f"SELECT {', '.join(columns)} FROM {table}"):
        total = (total + row_digest(row)) % 2**256
        count += 1
    return TableCopy(table, count, f"{total:064x}")


def copy_state(source: StateStore, target: StateStore) -> list[TableCopy]:
    """Copy every table of ``source`` into the empty ``target``; what was
    copied. Nothing is kept in ``target`` unless every table's count and
    checksum match."""
    for name, store in (("source", source), ("target", target)):
        version = store.database.version()
        if version != len(MIGRATIONS):
            raise StateError(
                f"{store.database.name}: the {name} is at schema {version}, this publisher's is {len(MIGRATIONS)}; "
                "run `publisher migrate` on it first"
            )
    copied = []
    with target.transaction():
        for table in table_names():
            rows = target.database.query_one(f"SELECT COUNT(*) FROM {table}")[0]
            if rows:
                raise StateError(
                    f"{target.database.name}: the target is not empty ({table} holds {rows} rows); "
                    "copy into a new, empty store"
                )
        for table in table_names():
            columns = source.database.columns(table)
            copied.append(_copy_table(source, target, table, columns))
    return copied


def _copy_table(source: StateStore, target: StateStore, table: str, columns: list[str]) -> TableCopy:
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    rows = source.database.query(f"SELECT {names} FROM {table}")
    for start in range(0, len(rows), BATCH):
        target.database.executemany(insert, [tuple(_plain(v) for v in row) for row in rows[start : start + BATCH]])
    target.database.reset_ids(table)
    expected = table_checksum(source, table, columns)
    found = table_checksum(target, table, columns)
    if found != expected:
        raise StateError(
            f"{target.database.name}: {table} does not match after copying "
            f"({found.rows} rows, checksum {found.checksum[:12]}; expected {expected.rows}, {expected.checksum[:12]}); "
            "nothing was kept"
        )
    return found


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value
