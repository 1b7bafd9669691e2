"""One embedded SQLite file, shared by the state store and the notifier's ledger.

WAL journal with ``synchronous=NORMAL``: a commit survives the process being killed (the OS has
it) without an fsync each; a power cut may forget the last commits, which the callers tolerate
(a retry republishes the same event id, a notification is sent again).

Reads and writes run in a thread, grouped: those that arrive while others run share the next
thread hop (writes: one hop and one commit for all of them). Under load a thread per write
queued on one lock, and each holder waited for the GIL before it could let go (a convoy that
held the web service near 145 requests/s while the disk sat idle).

``quick=True``: a statement on a few rows found by their key (an idempotency key, a data key, a
complaint's contacts) runs at once on the caller's thread, the event loop's, through a
connection of its own that never waits: a few microseconds from the page cache, where a thread
hop cost far more than the statement (with the GIL passed back and forth: at saturation, a
quarter of the web service's CPU). When that connection cannot have the file at once
(another connection is writing), the statement goes the grouped way, in a thread, which waits.
That connection never checkpoints the WAL itself (a checkpoint syncs the file): every
``QUICK_COMMITS_A_CHECKPOINT`` of its commits, a checkpoint runs in a thread. A quick write
commits alone: where many writes come at once, the grouped way's shared commits cost less (the
notifier's ledger, 32 sends at a time: its writes quick cost 1.42 ms of CPU an acknowledgement
against 1.26 grouped, same-run A/B), so the ledger's writes stay grouped and its reads are quick.
"""

from __future__ import annotations

import asyncio
import contextlib
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
QUICK_COMMITS_A_CHECKPOINT = 250  # SQLite checkpoints every 1,000 pages: a few per commit
_LOCKED = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Later(Exception):
    """The quick connection could not have the file at once: the statement goes to a thread."""


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
        self._db = _connect(path, secure_delete)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(schema)
        if path is not None and private:
            path.chmod(0o600)
        self._lock = threading.Lock()
        self._reads: _Grouped[Query] = _Grouped(self._run_reads)
        self._writes: _Grouped[Statement | Change] = _Grouped(self._commit)
        # In memory, the one connection (no other can hold the file); else one that never waits.
        self._quick, self._quick_lock = self._db, self._lock
        if path is not None:
            self._quick, self._quick_lock = _connect(path, secure_delete, 0), threading.Lock()
            self._quick.execute("PRAGMA wal_autocheckpoint=0")
        self._quick_commits = 0
        self._checkpoints: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Once the read or write in progress in a thread is over: closed under it, SQLite's
        connection was freed while that thread used it (a segmentation fault, seen in CI when
        a service stopped while its tracker read)."""
        with self._lock:
            self._db.close()
        with self._quick_lock:
            self._quick.close()

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

    async def read(self, query: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """``query(connection)`` in a thread, alone on the connection (with the reads waiting
        then, one after the other); ``quick``: at once if it can be (module docstring)."""
        if quick:
            with contextlib.suppress(_Later):
                return self._at_once(query, commit=False)
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

    async def one(
        self, sql: str, parameters: Sequence[Any], *, quick: bool = False
    ) -> tuple[Any, ...] | None:
        """The first row ``sql`` selects, or None."""
        row: tuple[Any, ...] | None = await self.read(
            lambda db: db.execute(sql, parameters).fetchone(), quick=quick
        )
        return row

    async def write(self, sql: str, *rows: Sequence[Any], quick: bool = False) -> None:
        """Run ``sql`` for each row; returns once committed (with the writes waiting then)."""
        if quick:
            with contextlib.suppress(_Later):
                self._at_once(lambda db: db.executemany(sql, rows), commit=True)
                return
        await self._writes.submit((sql, rows))

    async def change(self, run: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """``run(connection)`` inside the next committed transaction (with the writes waiting
        then); its result once committed. For writes whose outcome decides what comes next
        (``INSERT ... RETURNING``). ``quick``: ``run`` may run twice (the first time rolled
        back, when the file was busy): it must change nothing but the database."""
        if quick:
            with contextlib.suppress(_Later):
                return self._at_once(run, commit=True)
        value: T = await self._writes.submit(run)
        return value

    def _at_once(self, run: Callable[[sqlite3.Connection], T], *, commit: bool) -> T:
        """``run`` on the quick connection now, committed if ``commit``; ``_Later`` when it
        cannot have the connection or the file at once (then rolled back)."""
        if not self._quick_lock.acquire(blocking=False):
            raise _Later
        try:
            if not commit:
                return run(self._quick)
            with self._quick:
                value = run(self._quick)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _LOCKED:
                raise _Later from exc
            raise StateStoreError(f"state store: {exc}") from exc
        finally:
            self._quick_lock.release()
        self._quick_commits += 1
        if self._quick_commits % QUICK_COMMITS_A_CHECKPOINT == 0 and self._quick is not self._db:
            self._checkpoint_soon()
        return value

    def _checkpoint_soon(self) -> None:
        """A passive checkpoint of the WAL in a thread: it copies what no reader still needs
        into the file, without waiting for anyone."""
        task = asyncio.get_running_loop().create_task(self._checkpoint())
        self._checkpoints.add(task)
        task.add_done_callback(self._checkpoints.discard)

    async def _checkpoint(self) -> None:
        with contextlib.suppress(StateStoreError):  # the next one copies what this one could not
            await self.read(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())

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


def _connect(path: Path | None, secure_delete: bool, timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection that waits up to ``timeout_s`` for a file another connection is writing.
    ``secure_delete``: what is deleted is overwritten with zeros in the file."""
    connection = sqlite3.connect(
        str(path) if path else ":memory:", timeout=timeout_s, check_same_thread=False
    )
    connection.execute("PRAGMA synchronous=NORMAL")
    if secure_delete:
        connection.execute("PRAGMA secure_delete=ON")
    return connection
