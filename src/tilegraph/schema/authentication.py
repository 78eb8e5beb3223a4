"""Every root field needs a signed-in caller, except the few in PUBLIC_FIELDS: one field
extension, applied to the root types when the schema is built, checks the token once per
request (on a WebSocket, again for every operation) before the field resolves. Resolvers
and the fields below them then read the caller as `info.context.principal`, and none
checks it itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types.base import get_object_definition
from strawberry.utils.await_maybe import await_maybe

from tilegraph.context import Info

# (root type, field) pairs anyone may call.
PUBLIC_FIELDS = frozenset({("Mutation", "login")})


class Authenticated(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        await info.context.authenticate()
        _ = info.context.principal  # UNAUTHENTICATED when nobody is signed in
        return await await_maybe(next_(source, info, **kwargs))


def require_sign_in(*roots: type) -> None:
    """Adds Authenticated to every field of the root types but the public ones, as their
    outermost extension (it runs first). Schemas may be built more than once per process,
    so a field that has it already is left alone."""
    for root in roots:
        for field in get_object_definition(root, strict=True).fields:
            if (root.__name__, field.python_name) in PUBLIC_FIELDS:
                continue
            if not any(isinstance(e, Authenticated) for e in field.extensions):
                field.extensions.append(Authenticated())
