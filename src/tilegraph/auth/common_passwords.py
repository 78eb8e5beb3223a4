"""Refuses the passwords attackers try first: a shipped list of the 10,000 most common ones
(common_passwords.txt beside this file), compared after undoing the usual disguises, so
`Passw0rd!` or `Summer2024!` count as `password` and `summer`."""

from __future__ import annotations

import string
from functools import cache
from importlib import resources

# Digits and symbols people add around a word to satisfy a policy.
_PADDING = string.digits + string.punctuation
_LEET_COMMON = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"}
# "1", "!" and "|" stand for "i" or for "l": try both readings.
_LEET = [str.maketrans({**_LEET_COMMON, "1": letter, "!": letter, "|": letter}) for letter in "il"]


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line for line in (raw.strip() for raw in text.splitlines()) if line and line[0] != "#"
    )


def variants(password: str) -> set[str]:
    """The password case-folded, without the padding around its word (trailing digits and
    symbols, leading digits), and each of those with leet substitutions undone."""
    folded = password.casefold()
    bare = folded.rstrip(_PADDING)
    cores = {folded, folded.rstrip(string.punctuation), bare, bare.lstrip(string.digits)}
    cores.add(folded.strip(_PADDING))
    readings = {core.translate(table) for core in cores for table in _LEET}
    readings |= {reading.strip(_PADDING) for reading in readings}
    return {form for form in cores | readings if form}


def is_common(password: str) -> bool:
    return not common_passwords().isdisjoint(variants(password))
