"""Every error leaves with an `extensions.code` from the contract; anything unexpected is
masked to INTERNAL_SERVER_ERROR and logged with its stack and the request id. Redis out of
reach is no bug of ours: SERVICE_UNAVAILABLE with `retryAfter`, wherever it surfaced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from strawberry.extensions import SchemaExtension

from tilegraph.domain.errors import ServiceUnavailable, TilegraphError

log = structlog.get_logger("tilegraph.errors")

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_TOKEN_LIMIT = "Document contains more than"
# graphql-core: "Variable '$input' has invalid value at .file: Expected value of type ..."
_VARIABLE = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at ((?:\.\w+|\[\d+\])+))?: ")


def variable_field(message: str) -> str | None:
    """The input a variable that does not coerce is wrong at: the last named step of its
    path (`file` in input.file), or the variable itself."""
    found = _VARIABLE.match(message)
    if found is None:
        return None
    names = re.findall(r"\.(\w+)", found.group(2) or "")
    return names[-1] if names else found.group(1)


# What the Redis client raises when the server is down, restarting or unreachable.
REDIS_OUTAGES = (RedisConnectionError, RedisTimeoutError)


def _outage(original: BaseException | None) -> ServiceUnavailable | None:
    """The retryable error for a Redis outage (raised directly or as a cause)."""
    seen = 0
    while original is not None and seen < 5:
        if isinstance(original, ServiceUnavailable):
            return original
        if isinstance(original, REDIS_OUTAGES):
            return ServiceUnavailable()
        original = original.__cause__ or original.__context__
        seen += 1
    return None


def _request_id(extension: SchemaExtension) -> str | None:
    context = extension.execution_context.context
    return getattr(context, "request_id", None)


def shape_error(error: GraphQLError, *, request_id: str | None, suggestions: bool) -> GraphQLError:
    original = error.original_error
    extensions: dict[str, Any]
    message = error.message
    outage = _outage(original)
    if outage is not None:
        log.warning("dependency_unavailable", request_id=request_id, error=repr(original))
        original = outage
    if isinstance(original, TilegraphError):
        extensions = original.as_extensions()
        message = original.message
    elif isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        extensions = dict(original.extensions or {})
        message = original.message
    elif (error.extensions or {}).get("code"):
        extensions = dict(error.extensions or {})
    elif isinstance(error, GraphQLSyntaxError) and _TOKEN_LIMIT in error.message:
        extensions = {"code": "QUERY_TOO_COMPLEX"}
    elif original is None or (error.path is None and error.message.startswith("Variable '$")):
        # Parse and validation errors, and variables that do not coerce: the request is wrong.
        extensions = {"code": "BAD_USER_INPUT"}
        field = variable_field(error.message)
        if field:
            extensions["field"] = field
        if not suggestions:
            message = _SUGGESTION.sub("", message)
    else:
        log.error(
            "unhandled_error",
            request_id=request_id,
            path=list(error.path) if error.path else None,
            exc_info=(type(original), original, original.__traceback__),
        )
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
        message = f"Internal server error (request id {request_id})"
    if request_id:
        extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorShaping(SchemaExtension):
    """Runs last on every result, for queries, mutations and each subscription event."""

    def __init__(self, *, suggestions: bool) -> None:
        self.suggestions = suggestions
        self._streamed = False

    def _shape_result(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            request_id = _request_id(self)
            result.errors = [
                shape_error(e, request_id=request_id, suggestions=self.suggestions) for e in errors
            ]

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:
            self._shape_result(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        self._shape_result(result)
        yield None
