"""The SQLite database under the state store: opening it, bringing its
schema up to date, transactions, and what is SQLite's own in the SQL the
repositories write.

    database = Database.open(Path(".publisher/state.db"))
    with database.transaction():
        database.execute("DELETE FROM web_events WHERE at < ?", (cutoff,))
    database.close()

Everything SQLite-specific lives in this module: the pragmas (WAL, the
integrity check, the schema version in ``user_version``), ``BEGIN
IMMEDIATE``, the read-only URI, and ``Dialect`` for the few differences
inside the repositories' queries. Another backend supplies a database with
the same methods and a dialect of its own.

Read-only use is one mechanism, ``ScratchDatabase`` (what
``Database.open(path, readonly=True)`` gives): it reads the file without
writing anything beside it (no -wal or -shm files), and makes changes in a
copy in memory, taken at the first change, whose transactions always roll
back. A change lasts until the end of its transaction (one made outside a
transaction is a transaction of its own), so a read-only build works out
identities as a real one would and keeps none of them. An older schema is
upgraded in that copy; a file that does not exist yet is an empty database
in memory. Changes that mean nothing unless kept (``change()``: subscribers,
issues and deliveries, job runs, web events) are refused instead.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from publisher.errors import StateError
from publisher.files import PRIVATE_FILE, PRIVATE_FOLDER, make_private
from publisher.state.schema import MIGRATIONS, migration_script

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


class Dialect:
    """What the repositories' SQL and the migrations say differently from one
    database to another; this one is SQLite's (``publisher.state.postgres``
    has PostgreSQL's). SQL is written as SQLite reads it, with ``?`` and
    ``:name`` parameters; a dialect says what differs."""

    name = "sqlite"
    # A clause after a SELECT that claims rows: other claimers pass over them.
    # SQLite needs none (BEGIN IMMEDIATE lets one writer in at a time).
    skip_locked = ""

    def ddl(self, statement: str) -> str:
        """A migration's statement as this database takes it."""
        return statement

    def list_agg(self, expression: str, separator: str) -> str:
        """An aggregate joining the values of ``expression`` with ``separator``."""
        return f"group_concat({expression}, '{separator}')"

    def limit(self, count: int | None) -> int:
        """The value of a ``LIMIT ?`` parameter for at most ``count`` rows (None: all)."""
        return -1 if count is None else count


class Database:
    """A state database open for reading and writing.

    Reads (``query``, ``query_one``) and writes (``execute``,
    ``executemany``, ``insert``) take SQL with ``?`` or ``:name``
    parameters. A write outside ``transaction()`` commits on its own.
    """

    persists = True  # are changes kept?
    # The write lock is taken at BEGIN: two writers queue (up to the busy
    # timeout) instead of one failing halfway through its transaction.
    _BEGIN = "BEGIN IMMEDIATE"

    def __init__(self, connection: sqlite3.Connection, name: str):
        self._connection = connection
        self.name = name  # the path as given, for messages
        self.dialect = Dialect()

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False, check: bool = True, wait: float = 10.0) -> Database:
        """Open (creating when writable) the database at ``path`` and bring
        its schema up to date; ``readonly`` gives a ``ScratchDatabase``.

        ``check``: read every page first (``PRAGMA quick_check``), so damage
        is one clear error now rather than a failure mid-command. It reads
        the whole file: a server that opens the database for each request
        checks once at start-up and opens with ``check=False``.

        ``wait``: seconds a statement waits for another process's write
        lock before it fails (``is_busy`` tells that failure apart).
        """
        shown = str(path)
        database: Database | None = None
        try:
            try:
                if path.exists() and path.stat().st_size == 0:
                    # An empty file is a database that lost its contents, not a new
                    # one: starting afresh would forget every subscriber and issue.
                    raise sqlite3.DatabaseError("the file is empty")
                database = (ScratchDatabase if readonly else Database)._connect(path, shown, wait)
                if check and path.exists():
                    database._check_pages()
                database._migrate(MIGRATIONS)
            except sqlite3.DatabaseError as exc:
                raise StateError(
                    f"{shown}: cannot use the state database ({exc}); "
                    "if it is damaged, restore it from a backup or move it aside to start afresh"
                ) from exc
            except OSError as exc:
                raise StateError(f"{shown}: cannot open the state database: {exc.strerror}") from exc
        except BaseException:
            if database is not None:
                database.close()
            raise
        return database

    @classmethod
    def _connect(cls, path: Path, name: str, wait: float = 10.0) -> Database:
        _private_file(path)
        connection = sqlite3.connect(path, timeout=wait, isolation_level=None)  # transactions are explicit
        try:
            # WAL with synchronous=NORMAL: a commit costs tens of
            # microseconds, not an fsync (a send commits every delivery).
            # A crash of the process loses nothing; a power cut may lose
            # the last commits (a message may then go out twice), never
            # the file's consistency.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            connection.close()
            raise
        return cls(connection, name)

    def _check_pages(self) -> None:
        # Damage past the header only shows when a page is read: find it
        # now, as one clear error, not mid-command.
        problem = self._connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {problem}")

    @staticmethod
    def peek_version(path: Path) -> int:
        """The schema version of the file at ``path`` (0: none yet), read without changing it."""
        if not path.exists():
            return 0
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: cannot use the state database ({exc})") from exc
        finally:
            connection.close()

    def version(self) -> int:
        """The schema version the database is at (0: empty)."""
        return self._connection.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, migrations: Sequence) -> tuple[int, int]:
        """Apply the migrations not yet applied; the versions before and after."""
        before = self.version()
        self._migrate(migrations)
        return before, self.version()

    def _migrate(self, migrations: Sequence) -> None:
        # SQLite's file belongs to one machine: it is brought up to date as
        # it is opened (PostgreSQL's waits for `publisher migrate`).
        version = self.version()
        if version > len(migrations):
            raise StateError(f"{self.name}: written by a newer publisher (schema {version}); upgrade publisher")
        if version == len(migrations):
            return
        connection = self._schema_connection()
        connection.execute(self._BEGIN)
        try:
            for number in range(version, len(migrations)):
                for statement in migration_script(migrations[number], self.dialect.name):
                    connection.execute(self.dialect.ddl(statement))
                connection.execute(f"PRAGMA user_version = {number + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _schema_connection(self) -> sqlite3.Connection:
        """Where the schema is brought up to date, for as long as this is open."""
        return self._connection

    # -- reading and writing -------------------------------------------------------

    def query(self, sql: str, params: Params = ()) -> list[tuple]:
        """Every row ``sql`` gives."""
        return self._connection.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> tuple | None:
        """The first row ``sql`` gives, if any."""
        return self._connection.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a change; how many rows it changed."""
        return self._write(lambda connection: connection.execute(sql, params).rowcount)

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run a change once per row of parameters; how many rows it changed in all."""
        return self._write(lambda connection: connection.executemany(sql, rows).rowcount)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT of one row; the new row's id."""
        return self._write(lambda connection: connection.execute(sql, params).lastrowid)

    def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        return run(self._connection)

    def serialize(self, key: str) -> None:
        """Inside a transaction: wait until no other transaction holding
        ``key`` is open (nothing to do here: BEGIN IMMEDIATE already lets one
        writer in at a time)."""

    def tables(self) -> list[str]:
        """The schema's tables, in the order they were created."""
        rows = self._connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        ).fetchall()
        return [row[0] for row in rows]

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self._connection.execute(f'PRAGMA table_info("{table}")').fetchall()]

    def reset_ids(self, table: str) -> None:
        """After rows were copied in with their ids: new rows' ids follow them
        (SQLite's do already)."""

    # -- transactions --------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside commit together, or none do."""
        try:
            self._connection.execute(self._BEGIN)
        except sqlite3.OperationalError as exc:
            raise StateError(f"{self.name}: {exc} (is another publisher running?)") from exc
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._end()

    def _end(self) -> None:
        self._connection.execute("COMMIT")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """The caller's transaction, or one of its own when there is none."""
        if self._connection.in_transaction:
            yield
        else:
            with self.transaction():
                yield

    def change(self, what: str) -> AbstractContextManager[None]:
        """A change that means nothing unless kept (``what`` it is, as in
        "change subscribers"): inside the caller's transaction, or one of
        its own."""
        return self.atomic()

    def close(self) -> None:
        self._connection.close()


class StoreBusy(StateError):
    """The store cannot be used now (too many requests are waiting on it already)."""


# PostgreSQL's SQLSTATEs for a transaction that lost a race to another
# (the same new key committed first, a serialization failure, a deadlock):
# run again, it sees what the other committed.
_LOST_RACE = {"23505", "40001", "40P01"}


def is_busy(exc: BaseException) -> bool:
    """Did ``exc`` come from another process holding the write lock longer
    than the wait (or from ``StoreBusy``), or, on PostgreSQL, from a
    transaction that lost a race to another's? Either way the change may be
    tried again."""
    while exc is not None:
        if isinstance(exc, StoreBusy) or (isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)):
            return True
        if getattr(exc, "sqlstate", None) in _LOST_RACE:
            return True
        exc = exc.__cause__  # a StateError raised from it
    return False


def _private_file(path: Path) -> None:
    """The database holds every address and name: its folder is created
    0700, the file (and SQLite's -wal and -shm beside it, which take its
    mode) 0600; an existing file or folder readable by others is fixed,
    with a warning (the folder only when it is not the site's own, which
    holds its .toml config)."""
    path.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    if not any(path.parent.glob("*.toml")):
        make_private(path.parent, PRIVATE_FOLDER)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        make_private(path, PRIVATE_FILE)
        for beside in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                make_private(beside, PRIVATE_FILE)
            except FileNotFoundError:
                pass  # none, or the last connection closing has just removed it


class ScratchDatabase(Database):
    """A database opened read-only: the file is read, never written, and
    changes are made in a copy in memory and always rolled back (see the
    module docstring)."""

    persists = False
    _BEGIN = "BEGIN"  # nothing to lock: the file is never written

    def __init__(self, connection: sqlite3.Connection, name: str, *, in_memory: bool = False):
        super().__init__(connection, name)
        self._in_memory = in_memory

    @classmethod
    def _connect(cls, path: Path, name: str, wait: float = 10.0) -> ScratchDatabase:
        if not path.exists():
            return cls(sqlite3.connect(":memory:", isolation_level=None), name, in_memory=True)
        # No -wal file means no writer is open and every commit is in the
        # main file: read it as immutable, which creates no -wal/-shm files
        # beside it (`publisher check` writes nothing).
        wal = path.with_name(path.name + "-wal")
        flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        return cls(sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True, isolation_level=None), name)

    def _scratch(self) -> sqlite3.Connection:
        """The copy in memory, taken now if it is not yet (inside the
        transaction, if one is open, as that transaction sees the file)."""
        if not self._in_memory:
            memory = sqlite3.connect(":memory:", isolation_level=None)
            self._connection.backup(memory)
            ongoing = self._connection.in_transaction
            self._connection.close()
            self._connection, self._in_memory = memory, True
            if ongoing:
                memory.execute(self._BEGIN)
        return self._connection

    def _schema_connection(self) -> sqlite3.Connection:
        # An older file opened read-only: upgrade the copy, so `check` and
        # previews work without writing to it.
        return self._scratch()

    def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._scratch()
        if connection.in_transaction:
            return run(connection)
        with self.transaction():
            return run(self._connection)

    def _end(self) -> None:
        self._connection.execute("ROLLBACK")

    def change(self, what: str) -> AbstractContextManager[None]:
        raise StateError(f"{self.name}: opened read-only; cannot {what}")
