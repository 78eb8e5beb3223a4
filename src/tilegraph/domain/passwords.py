"""The password policy (DESIGN.md "Security"): 8+ characters with upper, lower, digit and
symbol, at most 72 UTF-8 bytes because bcrypt ignores everything past that, and no invisible
padding (blanks around it, zero-width characters anywhere) that a person cannot type again."""

from __future__ import annotations

MIN_LENGTH = 8
MAX_BYTES = 72
# Zero-width space, non-joiner and joiner, word joiner, and the byte-order mark.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def password_problems(password: str) -> list[str]:
    """Every rule the password breaks, in words a user can act on; empty when it is fine."""
    problems: list[str] = []
    if len(password.encode("utf-8")) > MAX_BYTES:
        problems.append(f"must be at most {MAX_BYTES} bytes in UTF-8")
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if not any(not c.isalnum() and not c.isspace() and c not in INVISIBLE for c in password):
        problems.append("must contain a symbol")
    if password != password.strip():
        problems.append("must not start or end with blanks")
    if any(c in INVISIBLE for c in password):
        problems.append("must not contain invisible (zero-width) characters")
    return problems
