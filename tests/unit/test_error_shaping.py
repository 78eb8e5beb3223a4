"""Every error leaves with a contract code; only the request's own mistakes are told."""

from __future__ import annotations

from graphql import GraphQLError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tilegraph.domain.errors import NotFound
from tilegraph.schema.errors import shape_error


def _shape(error: GraphQLError) -> dict[str, object]:
    return shape_error(error, request_id="req-1", suggestions=False).formatted


def test_unexpected_exceptions_are_masked_even_without_a_path() -> None:
    # As raised from inside a subscription's generator: no path, an arbitrary exception.
    leaked = GraphQLError(
        "'Loaders' object has no attribute 'x'",
        original_error=AttributeError("'Loaders' object has no attribute 'x'"),
    )
    shaped = _shape(leaked)
    assert shaped["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-1"}
    assert "Loaders" not in str(shaped["message"]) and "req-1" in str(shaped["message"])


def test_request_mistakes_are_bad_user_input_without_suggestions() -> None:
    validation = _shape(
        GraphQLError("Cannot query field 'mee' on type 'Query'. Did you mean 'me'?")
    )
    assert validation["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[index]
    assert "Did you mean" not in str(validation["message"])
    coercion = _shape(
        GraphQLError(
            "Variable '$n' got invalid value 'x'; Int cannot represent",
            original_error=ValueError("Int cannot represent"),
        )
    )
    assert coercion["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[index]


def test_our_errors_keep_their_code_and_field() -> None:
    shaped = _shape(
        GraphQLError("x", original_error=NotFound("No such card", field="id"), path=["card"])
    )
    assert shaped["message"] == "No such card"
    assert shaped["extensions"] == {"code": "NOT_FOUND", "field": "id", "requestId": "req-1"}


def test_redis_out_of_reach_is_service_unavailable_with_retry_after() -> None:
    """No masked INTERNAL_SERVER_ERROR for an outage, wherever the Redis error surfaced:
    raised directly, or as the cause of another exception."""
    wrapped = RuntimeError("while reading the queue")
    wrapped.__cause__ = RedisTimeoutError("Timeout reading from socket")
    for original in (RedisConnectionError("Error 111 connecting"), wrapped):
        shaped = _shape(GraphQLError(str(original), original_error=original))
        extensions = shaped["extensions"]
        assert isinstance(extensions, dict)
        assert extensions["code"] == "SERVICE_UNAVAILABLE", shaped
        assert isinstance(extensions["retryAfter"], int) and extensions["retryAfter"] > 0
        assert "111" not in str(shaped["message"])
