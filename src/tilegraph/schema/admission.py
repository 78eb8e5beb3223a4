"""Admission of a GraphQL document: the cheap refusals first, the expensive part off the
event loop.

A document's text is refused by its size before anything else, then by its token and
field counts (graphql-core's lexer, no syntax tree), then, parsed, by the depth, alias,
directive and cost limits (schema/limits.py) — all before validation, whose overlap check
costs the square of the fields. Everything a new text
needs runs in one bounded thread, so one request never holds the loop; a text seen before
and parsed is answered from a cache on the loop, without the thread hop.

A refusal becomes a pre-execution error on a stand-in document (an empty query with the
requested operation's name), so Strawberry neither parses nor validates again and the
error passes through ErrorShaping like any other."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from graphql.language import Lexer, Source, TokenKind
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from tilegraph.schema.limits import QueryLimits, limit_violation, measure_document

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True)
class TextLimits:
    max_bytes: int
    max_tokens: int
    max_fields: int


@dataclass(frozen=True)
class _Checked:
    """What is known of one query text, whatever its variables."""

    document: DocumentNode | None = None
    refusal: GraphQLError | None = None
    # None until the document was validated (a cost refusal comes before validation).
    validation: tuple[GraphQLError, ...] | None = None


def too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX})


_Seen = tuple[TokenKind, str | None]
_NOT_A_FIELD_AFTER = (TokenKind.SPREAD, TokenKind.AT, TokenKind.COLON)


def _starts_selection(kind: TokenKind, previous: _Seen, before_previous: _Seen) -> bool:
    """Inside a selection set and outside parentheses: a spread, or a name that is not a
    fragment's, a directive's, an aliased field's or an inline fragment's type."""
    if kind == TokenKind.SPREAD:
        return True
    if kind != TokenKind.NAME or previous[0] in _NOT_A_FIELD_AFTER:
        return False
    return not (previous == (TokenKind.NAME, "on") and before_previous[0] == TokenKind.SPREAD)


@dataclass(frozen=True)
class Scan:
    tokens: int
    selections: int


def scan(query: str, max_tokens: int) -> Scan:
    """Counts tokens and selections with the lexer alone (no syntax tree), stopping past
    `max_tokens`. A selection is a field (an alias and its field count once) or a `...`
    spread or inline fragment, written inside a selection set: a name outside parentheses
    (where arguments and variable definitions live) that names neither a directive, a
    fragment, a type condition nor, after its alias's colon, the aliased field."""
    lexer = Lexer(Source(query))
    tokens = selections = braces = parens = 0
    before_previous: _Seen = (TokenKind.SOF, None)
    previous: _Seen = (TokenKind.SOF, None)
    while tokens <= max_tokens:
        token = lexer.advance()
        kind = token.kind
        if kind == TokenKind.EOF:
            break
        tokens += 1
        if kind == TokenKind.BRACE_L:
            braces += 1
        elif kind == TokenKind.BRACE_R:
            braces -= 1
        elif kind == TokenKind.PAREN_L:
            parens += 1
        elif kind == TokenKind.PAREN_R:
            parens -= 1
        elif braces > 0 and parens == 0 and _starts_selection(kind, previous, before_previous):
            selections += 1
        before_previous, previous = previous, (kind, token.value)
    return Scan(tokens, selections)


def size_refusal(query: str, limits: TextLimits) -> GraphQLError | None:
    size = len(query.encode())
    if size > limits.max_bytes:
        return too_complex(f"The query is {size} bytes long; the limit is {limits.max_bytes}")
    return None


def check_text(query: str, limits: TextLimits) -> _Checked:
    """The variable-independent refusals: size, tokens, syntax, number of fields."""
    refusal = size_refusal(query, limits)
    if refusal is not None:
        return _Checked(refusal=refusal)
    try:
        counted = scan(query, limits.max_tokens)
        if counted.tokens > limits.max_tokens:
            return _Checked(
                refusal=too_complex(f"The query has more than {limits.max_tokens} tokens")
            )
        if counted.selections > limits.max_fields:
            return _Checked(
                refusal=too_complex(
                    f"The query selects {counted.selections} fields; "
                    f"the limit is {limits.max_fields}"
                )
            )
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLError as error:
        return _Checked(refusal=error)  # a syntax error: ErrorShaping says BAD_USER_INPUT
    return _Checked(document=document)


def _validated(
    schema: GraphQLSchema, checked: _Checked, rules: tuple[type[ASTValidationRule], ...]
) -> _Checked:
    assert checked.document is not None
    errors = validate_document(schema, checked.document, rules)
    return _Checked(document=checked.document, validation=tuple(errors))


def stand_in(operation_name: str | None) -> DocumentNode:
    """An empty query named like the requested operation, to carry a refusal."""
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=OperationType.QUERY,
                name=NameNode(value=operation_name) if operation_name else None,
                directives=(),
                variable_definitions=(),
                selection_set=SelectionSetNode(
                    selections=(FieldNode(name=NameNode(value="__typename"), directives=()),)
                ),
            ),
        )
    )


class AdmissionCache:
    """Recent texts that parsed, with their document and validation; touched on the event
    loop only."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, tuple[type[ASTValidationRule], ...]], _Checked]
        self._entries = OrderedDict()

    def get(self, key: tuple[str, tuple[type[ASTValidationRule], ...]]) -> _Checked | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, tuple[type[ASTValidationRule], ...]], entry: _Checked) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)


class Admission:
    """One per schema: the text limits, the query limits, the cache and the one thread."""

    def __init__(self, text_limits: TextLimits, limits: QueryLimits, threads: int = 1) -> None:
        self.text_limits = text_limits
        self.limits = limits
        self.cache = AdmissionCache()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gql-admission")

    def _limit_problem(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> str | None:
        measure = measure_document(schema, document, variables, self.limits.costs)
        return limit_violation(measure, self.limits)

    def _check(
        self,
        schema: GraphQLSchema,
        query: str,
        rules: tuple[type[ASTValidationRule], ...],
        variables: Mapping[str, Any],
        known: _Checked | None,
    ) -> tuple[_Checked, GraphQLError | None]:
        """Runs in the thread: everything a text not seen before needs."""
        checked = known or check_text(query, self.text_limits)
        if checked.refusal is not None or checked.document is None:
            return checked, checked.refusal
        problem = self._limit_problem(schema, checked.document, variables)
        if problem:
            return checked, too_complex(problem)
        if checked.validation is None:
            checked = _validated(schema, checked, rules)
        return checked, None

    async def admit(
        self,
        schema: GraphQLSchema,
        query: str,
        rules: tuple[type[ASTValidationRule], ...],
        variables: Mapping[str, Any] | None,
    ) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """The document (None when refused) and its pre-execution errors."""
        key = (query, rules)
        variables = variables or {}
        known = self.cache.get(key)
        if known is not None and known.validation is not None:
            assert known.document is not None
            # Seen and validated: only the variable-dependent limits remain (linear, small).
            problem = self._limit_problem(schema, known.document, variables)
            if problem:
                return None, [too_complex(problem)]
            return known.document, list(known.validation)
        refusal = size_refusal(query, self.text_limits)
        if refusal is not None:
            return None, [refusal]
        loop = asyncio.get_running_loop()
        checked, refusal = await loop.run_in_executor(
            self._pool, self._check, schema, query, rules, variables, known
        )
        if checked.document is not None:
            # Refused texts are not kept: new ones each time would push out the good ones.
            self.cache.put(key, checked)
        if refusal is not None:
            return None, [refusal]
        assert checked.document is not None and checked.validation is not None
        return checked.document, list(checked.validation)


class QueryAdmission(SchemaExtension):
    """Parses, limits and validates in the parsing step; Strawberry then skips its own."""

    def __init__(self, *, admission: Admission) -> None:
        self.admission = admission

    async def on_parse(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        if ctx.query and ctx.graphql_document is None:
            document, errors = await self.admission.admit(
                ctx.schema._schema, ctx.query, tuple(ctx.validation_rules), ctx.variables
            )
            ctx.graphql_document = document or stand_in(ctx.operation_name)
            ctx.pre_execution_errors = errors
        yield


__all__ = [
    "Admission",
    "QueryAdmission",
    "TextLimits",
    "scan",
    "stand_in",
]
