"""Input rules for names, emails, free text and lists, in words a user can act on."""

from __future__ import annotations

import re
from collections.abc import Sized

from tilegraph.domain.errors import BadUserInput

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(email: str, *, field: str = "email") -> str:
    cleaned = email.strip()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise BadUserInput("Enter a valid email address", field=field)
    return cleaned


def check_name(name: str, *, field: str = "name", max_length: int = 200) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise BadUserInput("The name cannot be empty", field=field)
    if len(cleaned) > max_length:
        raise BadUserInput(f"The name must be at most {max_length} characters", field=field)
    return cleaned


def check_count(items: Sized, limit: int, *, field: str, what: str) -> None:
    if len(items) > limit:
        raise BadUserInput(f"At most {limit} {what} are allowed", field=field)
