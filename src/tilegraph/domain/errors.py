"""Errors that carry an API error code. Services raise them; the API turns them into
GraphQL errors with `extensions.code`; anything else is masked as INTERNAL_SERVER_ERROR."""

from __future__ import annotations

from typing import Any


class TilegraphError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extensions = extensions

    def as_extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code, **self.extensions}
        if self.field is not None:
            ext["field"] = self.field
        return ext


class Unauthenticated(TilegraphError):
    code = "UNAUTHENTICATED"


class Forbidden(TilegraphError):
    code = "FORBIDDEN"


class NotFound(TilegraphError):
    code = "NOT_FOUND"


class BadUserInput(TilegraphError):
    code = "BAD_USER_INPUT"


class Conflict(TilegraphError):
    code = "CONFLICT"


class RateLimited(TilegraphError):
    code = "RATE_LIMITED"


class QueryTooComplex(TilegraphError):
    code = "QUERY_TOO_COMPLEX"


ERROR_CODES = (
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
    "INTERNAL_SERVER_ERROR",
)
