"""Errors that carry an API error code. Services raise them; the API turns them into
GraphQL errors with `extensions.code`; anything else is masked as INTERNAL_SERVER_ERROR."""

from __future__ import annotations

from enum import Enum
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


# What a client told SERVICE_UNAVAILABLE waits before it tries again, in seconds.
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(TilegraphError):
    """A dependency the request needs (Redis: the queue, events, limits) cannot be reached
    now; nothing was changed, and the same request may be sent again after `retryAfter`."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(
        self,
        message: str = "A service this request needs is unavailable; try again shortly",
        *,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(message, retryAfter=retry_after)


class ErrorCode(Enum):
    """Every `extensions.code` a failure may carry."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


ERROR_CODES = tuple(code.value for code in ErrorCode)
