"""Parsing with a cache and the token limit.

Strawberry's ParserCache raises parse errors from its hook, which escapes the operation's
extensions (so error shaping never sees them). This cache swallows the error and leaves
the document unset; Strawberry then parses again on its own error path, where the error
becomes a normal pre-execution error that ErrorShaping gives a code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension


@lru_cache(maxsize=1024)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class CachedParsing(SchemaExtension):
    def __init__(self, *, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query and ctx.graphql_document is None:
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = _parse(ctx.query, self.max_tokens)
        yield
