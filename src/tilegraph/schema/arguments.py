"""ID arguments of the root fields are checked before anything resolves: an id that is
empty or absurdly long cannot name anything, and sent on to a loader or the store it would
fail there (DynamoDB refuses empty keys) as an internal error. It is BAD_USER_INPUT naming
the argument or input field instead. Ids that are merely unknown stay NOT_FOUND.

One field extension per root field, built when the schema is: it knows from the field's
argument types where ids sit (arguments, input fields, lists of them) and checks only
those values, once per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types.base import (
    StrawberryList,
    StrawberryOptional,
    get_object_definition,
    has_object_definition,
)
from strawberry.types.field import StrawberryField
from strawberry.utils.await_maybe import await_maybe

from tilegraph.context import Info
from tilegraph.domain.errors import BadUserInput

MAX_ID_CHARS = 256

# python name -> (GraphQL name, None for an id or the ids inside an input object)
IdSpec = Mapping[str, tuple[str, "IdSpec | None"]]


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, StrawberryOptional | StrawberryList):
        type_ = type_.of_type
    return type_


def _ids_in(type_: Any, depth: int = 0) -> tuple[bool, IdSpec | None]:
    """(holds ids, None for an ID itself or the IdSpec of an input object holding ids)."""
    type_ = _unwrap(type_)
    if type_ is strawberry.ID:
        return True, None
    if depth < 4 and has_object_definition(type_):
        definition = get_object_definition(type_, strict=True)
        if definition.is_input:
            fields = ((f.python_name, f.graphql_name, f.type) for f in definition.fields)
            spec = _spec(fields, depth)
            return bool(spec), spec
    return False, None


def _spec(entries: Any, depth: int = 0) -> dict[str, tuple[str, IdSpec | None]]:
    spec: dict[str, tuple[str, IdSpec | None]] = {}
    for python_name, graphql_name, type_ in entries:
        holds_ids, inner = _ids_in(type_, depth + 1)
        if holds_ids:
            spec[python_name] = (graphql_name or _camel(python_name), inner)
    return spec


def _camel(name: str) -> str:
    """The GraphQL name Strawberry gives a Python name (auto camel case)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def id_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if not value.strip():
        return "is empty"
    if len(value) > MAX_ID_CHARS:
        return f"is longer than {MAX_ID_CHARS} characters"
    return None


def _check(value: Any, name: str, spec: IdSpec | None) -> None:
    if value is None or value is strawberry.UNSET:
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, name, spec)
        return
    if spec is None:
        problem = id_problem(value)
        if problem:
            raise BadUserInput(f"`{name}` is not an id: it {problem}", field=name)
        return
    for attribute, (inner_name, inner) in spec.items():
        _check(getattr(value, attribute, None), inner_name, inner)


class IdArguments(FieldExtension):
    def __init__(self, spec: IdSpec) -> None:
        self.spec = spec

    def _check_all(self, kwargs: Mapping[str, Any]) -> None:
        for argument, (name, inner) in self.spec.items():
            _check(kwargs.get(argument), name, inner)

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        self._check_all(kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        self._check_all(kwargs)
        return await await_maybe(next_(source, info, **kwargs))


def check_id_arguments(*roots: type) -> None:
    """Adds IdArguments to every root field that takes ids, just inside the outermost
    extension (sign-in is checked first), once even when the schema is built again."""
    for root in roots:
        for field in get_object_definition(root, strict=True).fields:
            _add(field)


def _add(field: StrawberryField) -> None:
    if any(isinstance(e, IdArguments) for e in field.extensions):
        return
    spec = _spec((a.python_name, a.graphql_name, a.type) for a in field.arguments)
    if spec:
        position = max(len(field.extensions) - 1, 0)
        field.extensions.insert(position, IdArguments(spec))
