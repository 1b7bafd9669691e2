"""Cross-channel duplicates: the same person sending a near-identical text within 30 days.

The same person: the same *valid* identifier, or the same *verified* email or phone. Near-identical:
Jaccard similarity of the texts' word 3-shingles >= 0.8 (``DUPLICATE_THRESHOLD``). Candidates
are only the same person's most recent complaints (at most 50), so similarity is computed
exactly on the stored shingle hashes (32 bits, from the words' CRC-32: stable across processes
and versions of Python) rather than estimated with MinHash signatures, all candidates at once
with numpy (``jaccards_against``).
At 0.8, a 300-word complaint resent with a greeting or a sentence changed still matches; two
different complaints of the same person about the same card rarely share 80% of their phrases.

A match never merges anything: the event gets the flag ``possible_duplicate`` and the earlier
reference; the case team decides. The index (``DuplicateIndex``) survives restarts: SQLite
under ``GATEWAY_DATA_DIR`` (``gateway.store.sqlite_duplicates``, one machine) or the shared
PostgreSQL (``gateway.store.postgres.duplicates``: a duplicate is found whichever replica took
the earlier complaint); entries older than the window are pruned as new ones arrive.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from gateway.normalizers.rules import fold, words_of

DUPLICATE_THRESHOLD = 0.8
WINDOW = timedelta(days=30)
SHINGLE_WORDS = 3  # shingles() builds them with a 3-way zip
MAX_CANDIDATES = 50  # a person's most recent complaints compared; more is a campaign, not a slip

_HASH = np.dtype(np.uint32)
_HASH_BYTES = _HASH.itemsize
# A shingle's hash: the high half of the sum (xor) of its words' CRC-32 times odd 64-bit
# constants (multiplicative hashing; the order of the words counts).
_MIXERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def shingles(text: str) -> bytes:
    """The distinct hashes of the text's overlapping 3-word sequences (folded: lower case, no
    accents), sorted and packed 4 bytes each: the form the index stores and compares."""
    return shingles_of_words(words_of(fold(text)))


def shingles_of_words(words: list[str]) -> bytes:
    """``shingles`` of a text already split into folded words (the rules split it too)."""
    if not words:
        return b""
    if len(words) < SHINGLE_WORDS:
        return pack(frozenset([zlib.crc32(" ".join(words).encode())]))
    crcs = np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))
    first, second, third = crcs[:-2], crcs[1:-1], crcs[2:]
    mixed = (first * _MIXERS[0]) ^ (second * _MIXERS[1]) ^ (third * _MIXERS[2])
    hashes = (mixed >> np.uint64(32)).astype(_HASH)
    hashes.sort()
    distinct = np.empty(len(hashes), dtype=bool)  # what np.unique does, without its overhead
    distinct[0] = True
    np.not_equal(hashes[1:], hashes[:-1], out=distinct[1:])
    kept: npt.NDArray[np.uint32] = hashes[distinct]
    return kept.tobytes()


class _WordHashes(dict[str, int]):
    """Each word's CRC-32, computed once: a look-up in C for the words seen before (a
    complaints office's vocabulary is a few tens of thousands of words). Emptied when it holds
    too many (a flood of random strings), so its memory stays bounded."""

    LIMIT = 200_000

    def __missing__(self, word: str) -> int:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes()


def pack(hashes: frozenset[int]) -> bytes:
    """A set of 32-bit hashes in the stored form: sorted, 4 bytes each, the machine's order."""
    return np.array(sorted(hashes), dtype=_HASH).tobytes()


def jaccard(first: bytes, second: bytes) -> float:
    """Jaccard similarity of two packed shingle sets (0 when either is empty)."""
    return float(jaccards_against(first, [second])[0])


def jaccards_against(own: bytes, stored: list[bytes]) -> npt.NDArray[np.float64]:
    """``jaccard`` of one packed shingle set with each of others, at once: each stored hash is
    looked up in ``own`` (sorted: a binary search), the hits counted per set, the union's size
    follows from the intersection's. Some five times faster than a set intersection each."""
    sizes = np.fromiter(map(len, stored), dtype=np.intp, count=len(stored)) // _HASH_BYTES
    if not own or not sizes.any():
        return np.zeros(len(stored))
    mine = np.frombuffer(own, dtype=_HASH)
    theirs = np.frombuffer(b"".join(stored), dtype=_HASH)
    positions = np.minimum(mine.searchsorted(theirs), len(mine) - 1)
    hits = np.concatenate(([0], np.cumsum(mine[positions] == theirs)))
    ends = np.cumsum(sizes)
    common = hits[ends] - hits[ends - sizes]
    return np.where(sizes > 0, common / (len(mine) + sizes - common), 0.0)


class DuplicateIndex(Protocol):
    """The recent complaints of each person, by person key. Called by the normalizer, which
    runs in a worker thread: ``find_and_record`` blocks that thread, never the event loop."""

    def find_and_record(
        self,
        person_keys: Iterable[str],
        reference: str,
        own: bytes,
        received_at: datetime,
    ) -> str | None:
        """The earliest near-identical complaint of the same person in the window (``own``:
        this text's ``shingles``), then record this one. Recording the same reference twice (a
        redelivery) changes nothing."""
        ...

    def close(self) -> None: ...


class Candidate(Protocol):
    """A stored complaint compared with a new one."""

    @property
    def reference(self) -> str: ...

    @property
    def shingles(self) -> bytes: ...


def earliest_similar(own: bytes, candidates: Sequence[Candidate]) -> str | None:
    """The reference of the oldest candidate (they come newest first) similar enough to ``own``."""
    figures = jaccards_against(own, [row.shingles for row in candidates])
    similar = np.flatnonzero(figures >= DUPLICATE_THRESHOLD)
    return candidates[similar[-1]].reference if similar.size else None
