"""Opaque, prefixed, globally unique ids (usr_, grp_, ds_ …) that sort by creation time."""

from __future__ import annotations

import os
import time

PREFIXES = {
    "usr": "User",
    "grp": "Group",
    "ds": "Dataset",
    "imp": "DatasetImport",
    "card": "Card",
    "cex": "CardExecution",
    "dash": "Dashboard",
    "share": "DashboardShare",
    "fv": "FilterView",
    "tf": "Transform",
    "tex": "TransformExecution",
    "log": "AuditLog",
    "pol": "DatasetPolicy",
    "rev": "Revision",
    "dl": "Delivery",
    "dlr": "DeliveryRun",
}

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, after `prefix_`."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_base32(millis, 10)}{_base32(random_bits, 16)}"


def prefix_of(identifier: str) -> str | None:
    """The prefix of a well-formed id, or None."""
    head, sep, tail = identifier.partition("_")
    if not sep or head not in PREFIXES or not tail:
        return None
    return head


def type_name_of(identifier: str) -> str | None:
    prefix = prefix_of(identifier)
    return PREFIXES[prefix] if prefix else None
