"""Complaint references: short, readable over the phone, deterministic, self-checking.

A reference looks like ``PL-7K3M-9Q2X-HB4G``: a prefix naming the office (``PL`` by default),
then eleven data symbols and one check symbol in groups of four.

Alphabet
    Crockford's base 32 without ``V``: ``0123456789ABCDEFGHJKMNPQRSTWXYZ`` (31 symbols). No ``I``,
    ``L``, ``O`` or ``U``; when a person types or reads them they are taken as ``1``, ``1``, ``0``
    and rejected respectively. 31 is prime, which the check relies on.

Check symbol (weighted sum modulo a prime, as ISO 7064's pure systems)
    With the symbols ``d1..d12`` (``d12`` the check), the reference is valid when
    ``sum(i * d_i for i in 1..12) % 31 == 0``. Every weight is non-zero and two neighbours always
    have different weights (modulo 31), so:
    - a single wrong symbol changes the sum by ``i * delta`` with ``0 < |delta| < 31``: never a
      multiple of 31, always detected;
    - a swap of neighbours changes it by ``(i - (i+1)) * (a - b) = b - a``: non-zero unless the
      two symbols are equal, always detected.

Uniqueness without a central counter
    The eleven data symbols (about 54.5 bits) are drawn from SHA-256 over the input's source
    key (channel + the source's own unique id: Message-ID, idempotency key, file hash), so the
    same input on any replica gets the same reference, and different inputs collide only by
    chance. With N = 31**11 ~ 2.5e16 possible references, the probability of at least one
    collision among n references is about ``1 - exp(-n**2 / (2 * N))``: 0.2% at n = 10 million,
    2e-5 at one million (see docs/reference.md).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from gateway.errors import InvalidReference
from gateway.textsearch import finditer_near

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTWXYZ"
BASE: Final = len(ALPHABET)  # 31, a prime
DATA_SYMBOLS: Final = 11
GROUP: Final = 4
DEFAULT_PREFIX: Final = "PL"

_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_PREFIX_RE = re.compile(r"^[A-Z]{2,4}$")
_REFERENCE_RE = re.compile(
    r"\b([A-Za-z]{2,4})-([0-9A-Za-z]{4})[- ]?([0-9A-Za-z]{4})[- ]?([0-9A-Za-z]{4})\b"
)
_REFERENCE_REACH = 20  # a reference is at most 19 characters long, a dash among them


def check_symbol(data: str) -> str:
    """The symbol that makes ``data + symbol`` a valid weighted sum modulo 31."""
    weighted = sum(position * _VALUE[symbol] for position, symbol in enumerate(data, start=1))
    weight_of_check = len(data) + 1
    # Solve weighted + weight_of_check * c == 0 (mod 31) for c.
    inverse = pow(weight_of_check, -1, BASE)
    return ALPHABET[(-weighted * inverse) % BASE]


def is_valid_symbols(symbols: str) -> bool:
    """True when the data symbols and their check symbol agree."""
    if any(symbol not in _VALUE for symbol in symbols):
        return False
    total = sum(position * _VALUE[symbol] for position, symbol in enumerate(symbols, start=1))
    return total % BASE == 0


def _format(prefix: str, symbols: str) -> str:
    groups = [symbols[i : i + GROUP] for i in range(0, len(symbols), GROUP)]
    return "-".join([prefix, *groups])


def reference_for(source_key: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The reference of the input identified by ``source_key`` (deterministic)."""
    if not _PREFIX_RE.match(prefix):
        msg = f"reference prefix must be 2 to 4 capital letters, got {prefix!r}"
        raise ValueError(msg)
    number = int.from_bytes(hashlib.sha256(source_key.encode("utf-8")).digest()[:16], "big")
    data = []
    for _ in range(DATA_SYMBOLS):
        number, value = divmod(number, BASE)
        data.append(ALPHABET[value])
    text = "".join(data)
    return _format(prefix, text + check_symbol(text))


def parse_reference(text: str) -> str:
    """The canonical form of a reference typed or read by a person.

    Accepts lower case, spaces or no separators between groups, and the look-alikes I, L, O.
    Raises InvalidReference when the shape is wrong or the check symbol does not match.
    """
    cleaned = re.sub(r"[\s-]", "", text.strip().upper())
    match = re.fullmatch(r"([A-Z]{2,4}?)([0-9A-Z]{12})", cleaned)
    if match is None:
        msg = "a reference has a 2-4 letter prefix and 12 symbols, e.g. PL-7K3M-9Q2X-HB4G"
        raise InvalidReference(msg)
    prefix, symbols = match.group(1), match.group(2).translate(_LOOKALIKES)
    if not is_valid_symbols(symbols):
        msg = "the reference's check symbol does not match: a symbol is wrong or two are swapped"
        raise InvalidReference(msg)
    return _format(prefix, symbols)


def find_references(text: str) -> list[str]:
    """Every valid reference mentioned in a text (subject, body), in order, without repeats."""
    found: list[str] = []
    for match in finditer_near(_REFERENCE_RE, text, "-", _REFERENCE_REACH):
        try:
            reference = parse_reference(match.group(0))
        except InvalidReference:
            continue
        if reference not in found:
            found.append(reference)
    return found
