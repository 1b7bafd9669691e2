"""The claim-check store's group commit (``gateway.store.journal``): objects made durable a batch
at a time, a writer killed in the middle of a batch, and what a power cut could take away."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store import claims, journal
from gateway.store.claims import FileClaimStore
from gateway.store.journal import ObjectJournal

PROJECT = Path(__file__).resolve().parents[3]

WRITER = """
import asyncio, hashlib, os, sys
from pathlib import Path
from gateway.store.claims import FileClaimStore

async def main(root: str, script: list[str]) -> None:
    store = FileClaimStore(Path(root))
    await store.open()
    for step in script:
        verb, _, text = step.partition(":")
        if verb == "put":
            print((await store.put(text.encode())).sha256, flush=True)
        elif verb == "delete":
            await store.delete(hashlib.sha256(text.encode()).hexdigest())
            print("deleted", flush=True)
    while not script:  # a steady load: 16 at a time, each printed once answered
        batch = [os.urandom(512) + b"letter" for _ in range(16)]
        for stored in await asyncio.gather(*(store.put(data) for data in batch)):
            print(stored.sha256, flush=True)
    print("done", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


class Writer:
    """A process writing to a store under ``root``, killed with SIGKILL when asked."""

    def __init__(self, root: Path, *script: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), *script],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self._lines: Iterator[str] = (line.strip() for line in self.process.stdout)

    def answered(self, count: int) -> list[str]:
        """The next ``count`` lines the writer printed."""
        return [next(self._lines) for _ in range(count)]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


def spied(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[tuple[Any, ...]]:
    """The arguments of each call of ``owner.name`` from now on; each call still made."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(owner, name)

    def spy(*arguments: Any) -> Any:
        calls.append(arguments)
        return real(*arguments)

    monkeypatch.setattr(owner, name, spy)
    return calls


def journaled_store(
    root: Path,
    *,
    segment_bytes: int = journal.SEGMENT_BYTES,
    checkpoint_after_s: float = journal.CHECKPOINT_AFTER_S,
) -> FileClaimStore:
    """A store under ``root`` whose journal rotates at these limits."""
    store = FileClaimStore(root)
    store._journal = ObjectJournal(
        root / "journal",
        claims._JournalPlacement(store),
        segment_bytes=segment_bytes,
        checkpoint_after_s=checkpoint_after_s,
    )
    return store


def segments(root: Path) -> list[Path]:
    return sorted((root / "journal").glob("*.wal"))


def recorded(root: Path) -> set[str]:
    """The names whose records are whole in the segments under ``root``."""
    return {name for path in segments(root) for name, _, _ in journal._records(path.read_bytes())}


def power_cut(root: Path, names: set[str]) -> None:
    """What a power cut may do to objects placed but not synced: gone, or cut short; and a
    batch being appended when it struck: a torn record at the end of each segment."""
    for number, name in enumerate(sorted(names)):
        path = FileClaimStore(root).path_of(name)
        if number % 2:
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[:100])
    for segment in segments(root):
        with segment.open("ab") as torn:
            torn.write(journal.RECORD.pack(journal.MAGIC, time.time_ns(), 64, 4096, 0) + b"ab")


async def test_given_many_writers_at_once_then_their_objects_share_a_few_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends = spied(monkeypatch, journal, "_append")
    store = FileClaimStore(tmp_path)
    await store.open()
    letters = [f"Lettre {n} : mon remboursement est en retard.".encode() for n in range(200)]
    stored = await asyncio.gather(*(store.put(letter) for letter in letters))
    assert [await store.get(s.sha256) for s in stored] == letters
    assert len(appends) <= 20, f"{len(appends)} syncs for 200 objects"
    await store.close()
    assert segments(tmp_path) == []


@pytest.mark.parametrize("unnamed_files", ["linux", "refused", "absent"])
async def test_given_either_way_of_placing_then_objects_are_whole_private_and_leave_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed_files: str
) -> None:
    """Unnamed files (``O_TMPFILE``) where the system has them; a named temp file where it has
    none, or where the file system refuses them."""
    if unnamed_files == "absent":
        monkeypatch.setattr(claims, "_UNNAMED_FILES", False)
    elif unnamed_files == "refused":
        real_open = os.open

        def no_tmpfile(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & os.O_TMPFILE == os.O_TMPFILE:
                raise OSError(errno.EOPNOTSUPP, "not on this file system")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(claims.os, "open", no_tmpfile)
    elif not claims._UNNAMED_FILES:
        pytest.skip("this system has no O_TMPFILE")
    named_temps = spied(monkeypatch, claims, "_write_new")
    store = FileClaimStore(tmp_path)
    letters = [f"Lettre {n} : ma carte n'est jamais arrivée.".encode() for n in range(20)]
    stored = await asyncio.gather(*(store.put(letter) for letter in letters))
    again = await store.put(letters[0])
    assert again.sha256 == stored[0].sha256
    assert [await store.get(s.sha256) for s in stored] == letters
    assert {store.path_of(s.sha256).stat().st_mode & 0o777 for s in stored} == {0o600}
    placed_through_temps = {data for _, data in named_temps}
    assert placed_through_temps == (set() if unnamed_files == "linux" else set(letters))
    assert list((tmp_path / "incoming").glob("*")) == []
    await store.close()


async def test_given_an_object_there_already_then_it_is_not_journaled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileClaimStore(tmp_path)
    await store.put(b"the same letter")
    appends: list[int] = []
    monkeypatch.setattr(journal, "_append", lambda *_: appends.append(1))
    again = await store.put(b"the same letter")
    assert await store.get(again.sha256) == b"the same letter"
    assert appends == []
    await store.close()


async def test_given_a_writer_killed_mid_batch_and_a_power_cut_then_every_answered_object_is_whole(
    tmp_path: Path,
) -> None:
    writer = Writer(tmp_path)
    try:
        answered = writer.answered(400)
    finally:
        writer.kill()
    unsynced = recorded(tmp_path)
    assert set(answered) <= unsynced  # none checkpointed yet: the journal alone holds them
    power_cut(tmp_path, set(answered))

    store = FileClaimStore(tmp_path)
    await store.open()
    for sha256 in answered:
        assert hashlib.sha256(await store.get(sha256)).hexdigest() == sha256
    assert segments(tmp_path) == []
    await store.close()


async def test_given_an_erased_object_then_recovery_does_not_bring_it_back(
    tmp_path: Path,
) -> None:
    writer = Writer(
        tmp_path, "put:kept", "put:erased", "delete:erased", "put:back", "delete:back", "put:back"
    )
    try:
        kept, erased, _, back, _, back_again, done = writer.answered(7)
    finally:
        writer.kill()
    assert done == "done"
    assert back == back_again
    power_cut(tmp_path, {kept, back})

    store = FileClaimStore(tmp_path)
    await store.open()
    assert await store.get(kept) == b"kept"
    assert not await store.exists(erased)
    assert await store.get(back) == b"back"  # stored again after it was erased
    assert not (tmp_path / "journal" / journal.ERASED).exists()  # no segment needs the notes
    await store.close()


async def test_given_a_live_writer_then_another_recovery_leaves_its_journal_alone(
    tmp_path: Path,
) -> None:
    live = FileClaimStore(tmp_path)
    first = await live.put(b"first letter")
    held = segments(tmp_path)
    assert len(held) == 1

    other = FileClaimStore(tmp_path)
    await other.open()
    assert segments(tmp_path) == held
    second = await live.put(b"second letter")
    assert recorded(tmp_path) == {first.sha256, second.sha256}
    await live.close()
    await other.close()
    assert segments(tmp_path) == []


@pytest.mark.parametrize("few_objects", [64, 0], ids=["each-file-synced", "syncfs"])
async def test_given_a_full_or_old_segment_then_it_is_checkpointed_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, few_objects: int
) -> None:
    checkpoints = spied(monkeypatch, journal, "_checkpoint")
    real_syncfs = journal._SYNCFS
    file_systems_synced = [] if real_syncfs is None else spied(monkeypatch, journal, "_SYNCFS")
    monkeypatch.setattr(journal, "FEW_OBJECTS", few_objects)
    store = journaled_store(tmp_path, segment_bytes=2048, checkpoint_after_s=0.5)
    letters = [os.urandom(700) for _ in range(13)]  # the last alone in its segment
    for letter in letters:
        await store.put(letter)
    for _ in range(100):
        if not segments(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert segments(tmp_path) == []
    checkpointed = [segment.size for (segment,) in checkpoints]
    assert len(checkpointed) == 5
    assert all(size >= 2048 for size in checkpointed[:4])  # full: three letters each
    assert checkpointed[-1] < 2048  # the last, once old enough
    if real_syncfs is not None:  # Linux: one syncfs a checkpoint, or none for a few objects
        assert len(file_systems_synced) == (5 if few_objects == 0 else 0)
    for letter in letters:
        assert await store.get(hashlib.sha256(letter).hexdigest()) == letter
    await store.close()


def test_given_a_record_altered_then_the_segment_ends_there() -> None:
    first = journal._record(journal._Pending("a" * 64, b"first", 1))
    second = bytearray(journal._record(journal._Pending("b" * 64, b"second", 2)))
    third = journal._record(journal._Pending("c" * 64, b"third", 3))
    second[-1] ^= 1
    names = [name for name, _, _ in journal._records(first + bytes(second) + third)]
    assert names == ["a" * 64]


async def test_given_an_idle_store_then_its_writer_thread_ends_and_a_write_starts_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "IDLE_END_S", 0.1)
    store = journaled_store(tmp_path, checkpoint_after_s=0.1)

    def writers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "claims-journal" and t.is_alive()]

    before = set(writers())
    first = await store.put(b"first letter")
    for _ in range(200):  # checkpointed once old enough, then idle: the thread ends
        if not set(writers()) - before and not segments(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert not set(writers()) - before
    assert segments(tmp_path) == []
    second = await store.put(b"second letter")
    assert await store.get(first.sha256) == b"first letter"
    assert await store.get(second.sha256) == b"second letter"
    await store.close()
    assert segments(tmp_path) == []


async def test_given_an_unplanned_fault_placing_an_object_then_its_writer_gets_it_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileClaimStore(tmp_path)
    placement = store._journal._placement
    real_place = placement.place
    faults = iter([ValueError("a fault no one planned for")])

    def place_once_faulty(name: str, data: bytes) -> Path | None:
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return real_place(name, data)

    monkeypatch.setattr(placement, "place", place_once_faulty)
    with pytest.raises(ValueError, match="no one planned"):
        await store.put(b"first letter")
    second = await asyncio.wait_for(store.put(b"second letter"), timeout=10)
    assert await store.get(second.sha256) == b"second letter"
    await store.close()


async def test_given_a_live_segment_then_recovery_keeps_only_the_erasure_notes_it_may_need(
    tmp_path: Path,
) -> None:
    live = FileClaimStore(tmp_path)
    await live.put(b"a letter being written")
    notes = tmp_path / "journal" / journal.ERASED
    recent = time.time_ns()
    notes.write_text(f"1 {'a' * 64}\n{recent} {'b' * 64}\n")  # one from long before the segment

    await FileClaimStore(tmp_path).open()
    assert notes.read_text() == f"{recent} {'b' * 64}\n"
    await live.close()
    await FileClaimStore(tmp_path).open()
    assert not notes.exists()  # no segment left to need it
