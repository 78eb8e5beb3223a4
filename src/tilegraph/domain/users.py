"""Users, roles and groups as stored records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"


@dataclass(frozen=True)
class UserRecord:
    id: str
    email: str
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    disabled: bool = False
    # Tokens carry the epoch they were issued in; ending every session bumps it, sparing
    # the one session that asked (`kept_session`, a token id).
    session_epoch: int = 0
    kept_session: str | None = None
    # Name → string or list of strings, set by admins; dataset policies filter rows by them.
    attributes: dict[str, str | list[str]] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def accepts(self, *, epoch: int, jti: str) -> bool:
        """Whether a token of this user (issued in `epoch`, with id `jti`) still stands."""
        return not self.disabled and (epoch == self.session_epoch or jti == self.kept_session)


@dataclass(frozen=True)
class GroupRecord:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    version: int = 1


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_name(name: str) -> str:
    """Names compare case-insensitively and without surrounding blanks."""
    return " ".join(name.split()).lower()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request or WebSocket connection."""

    user_id: str
    role: Role
    jti: str
    expires_at: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
