"""One embedded SQLite file, shared by the state store and the notifier's ledger.

WAL journal with ``synchronous=NORMAL``: a commit survives the process being killed (the OS has
it) without an fsync each; a power cut may forget the last commits, which the callers tolerate
(a retry republishes the same event id, a notification is sent again).

Reads and writes run in a thread, grouped: those that arrive while others run share the next
thread hop (writes: one hop and one commit for all of them). Under load a thread per write
queued on one lock, and each holder waited for the GIL before it could let go (a convoy that
held the web service near 145 requests/s while the disk sat idle).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from gateway.errors import StateStoreError

T = TypeVar("T")
Item = TypeVar("Item")
Statement = tuple[str, Sequence[Sequence[Any]]]  # SQL and the rows it runs for
Change = Callable[[sqlite3.Connection], Any]  # statements whose result its caller wants
Query = Callable[[sqlite3.Connection], Any]
Outcome = tuple[Any, Exception | None]  # a value, or the error its caller gets


class _Grouped(Generic[Item]):
    """Items that arrive while a group runs share the next call of ``run`` in a thread, which
    returns one outcome per item; if it raises, every item of the group gets the error."""

    def __init__(self, run: Callable[[list[Item]], list[Outcome]]) -> None:
        self._run = run
        self._pending: list[tuple[Item, asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run_pending())
        return await done

    async def _run_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                outcomes = await asyncio.to_thread(self._run, [item for item, _ in group])
            except Exception as exc:  # noqa: BLE001 (every waiter gets it: none is left hanging)
                outcomes = [(None, exc)] * len(group)
            for (_, done), (value, error) in zip(group, outcomes, strict=True):
                if done.done():
                    continue
                if error is None:
                    done.set_result(value)
                else:
                    done.set_exception(error)


class SqliteFile:
    """``path`` None: in memory (tests). ``schema``: statements run once at opening."""

    def __init__(
        self, path: Path | None, schema: str, private: bool = True, secure_delete: bool = False
    ) -> None:
        """``secure_delete``: what is deleted is overwritten with zeros in the file (keys
        destroyed, personal data erased), not left in free pages."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if secure_delete:
            self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(schema)
        if path is not None and private:
            path.chmod(0o600)
        self._lock = threading.Lock()
        self._reads: _Grouped[Query] = _Grouped(self._run_reads)
        self._writes: _Grouped[Statement | Change] = _Grouped(self._commit)

    def close(self) -> None:
        """Once the read or write in progress in a thread is over: closed under it, SQLite's
        connection was freed while that thread used it (a segmentation fault, seen in CI when
        a service stopped while its tracker read)."""
        with self._lock:
            self._db.close()

    def add_columns(
        self, added: Mapping[str, Mapping[str, str]], indexes: Sequence[str] = ()
    ) -> None:
        """Columns added since the file's first version (table -> column -> type), added at
        opening to a file of an older version, then ``indexes`` (``CREATE INDEX IF NOT
        EXISTS`` on them) made; in one transaction."""
        with self._lock, self._db:
            for table, columns in added.items():
                present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            for index in indexes:
                self._db.execute(index)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """``query(connection)`` in a thread, alone on the connection (with the reads waiting
        then, one after the other)."""
        value: T = await self._reads.submit(query)
        return value

    def _run_reads(self, queries: list[Query]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self._lock:
            for query in queries:
                try:
                    outcomes.append((query(self._db), None))
                except sqlite3.Error as exc:
                    outcomes.append((None, StateStoreError(f"state store: {exc}")))
                except Exception as exc:  # noqa: BLE001 (its caller gets it, the others their rows)
                    outcomes.append((None, exc))
        return outcomes

    async def one(self, sql: str, parameters: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row ``sql`` selects, or None."""
        row: tuple[Any, ...] | None = await self.read(
            lambda db: db.execute(sql, parameters).fetchone()
        )
        return row

    async def write(self, sql: str, *rows: Sequence[Any]) -> None:
        """Run ``sql`` for each row; returns once committed (with the writes waiting then)."""
        await self._writes.submit((sql, rows))

    async def change(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """``run(connection)`` inside the next committed transaction (with the writes waiting
        then); its result once committed. For writes whose outcome decides what comes next
        (``INSERT ... RETURNING``)."""
        value: T = await self._writes.submit(run)
        return value

    def _commit(self, statements: list[Statement | Change]) -> list[Outcome]:
        """One transaction for all ``statements``: all land, or all get its error."""
        values: list[Any] = []
        try:
            with self._lock, self._db:
                for statement in statements:
                    if callable(statement):
                        values.append(statement(self._db))
                    else:
                        sql, rows = statement
                        self._db.executemany(sql, rows)
                        values.append(None)
        except sqlite3.Error as exc:  # "database or disk is full", I/O errors...
            raise StateStoreError(f"state store: {exc}") from exc
        return [(value, None) for value in values]
