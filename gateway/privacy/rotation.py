"""``intake-gateway keys rotate``: everything sealed is brought under the first master key of
``GATEWAY_ENCRYPTION_KEYS``, so the others can then be removed.

Objects are not touched: each object's data key is re-wrapped in place (``DataKeyStore``): the
stored bytes stay sealed by their own data key. The personal values of state rows (the
notifier's contacts) are opened and sealed again with the current key, and those still in
clear (written by an earlier version) sealed. Idempotent: what the current key already wraps
is left as it is, so a second run (or a run cut short, then started again) changes only what
is left. Rows are changed one by one with a check that nobody changed them meanwhile (several
replicas may run it at once).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gateway.store.datakeys import DataKeyStore
from gateway.store.keyring import Keyring
from gateway.store.sealed import PersonalDataStore

BATCH = 500


@dataclass
class RotationReport:
    current: str
    rewrapped: int = 0
    already: int = 0
    others: dict[str, int] = field(default_factory=dict)  # left under other keys (should be none)
    resealed: int = 0  # rows of personal values

    def lines(self) -> list[str]:
        said = [
            f"data keys re-wrapped\t{self.rewrapped}\twith {self.current!r}",
            f"data keys already\t{self.already}\twith {self.current!r}",
        ]
        said += [f"data keys left\t{count}\twith {key!r}" for key, count in self.others.items()]
        said.append(f"state rows re-sealed\t{self.resealed}\twith {self.current!r}")
        return said


async def rotate(
    keyring: Keyring, keys: DataKeyStore, sealed: list[PersonalDataStore]
) -> RotationReport:
    """Data keys re-wrapped, personal values re-sealed, with the current key."""
    report = await rotate_data_keys(keyring, keys)
    for store in sealed:
        report.resealed += await store.reseal()
    return report


async def rotate_data_keys(keyring: Keyring, keys: DataKeyStore) -> RotationReport:
    current = keyring.current.id
    report = RotationReport(current)
    after = ""
    while batch := await keys.wrapped_by_other_than(current, after, BATCH):
        for old in batch:
            data_key = keyring.open(old.master_key_id, old.wrapped, old.context)
            master_id, wrapped = keyring.seal(data_key, old.context)
            new = dataclasses.replace(old, master_key_id=master_id, wrapped=wrapped)
            report.rewrapped += await keys.rewrap(old, new)
        after = batch[-1].key_id
    counts = await keys.counts()
    report.already = counts.pop(current, 0) - report.rewrapped
    report.others = counts
    return report
