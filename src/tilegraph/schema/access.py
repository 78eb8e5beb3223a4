"""@requiresRole and @requiresPermission: printed in the SDL with their argument, and
enforced by this one field extension, so no resolver repeats an access check."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.schema_directive import Location
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from tilegraph.domain.errors import Forbidden
from tilegraph.domain.permissions import PermissionLevel as DomainPermissionLevel
from tilegraph.domain.users import Role as DomainRole
from tilegraph.schema.enums import PermissionLevel, Role


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresRole",
    description="The caller must have `role`.",
)
class RequiresRole:
    role: Role


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPermission",
    description="The caller must hold at least `level` on the dashboard the field is about.",
)
class RequiresPermission:
    level: PermissionLevel


class Access(FieldExtension):
    """Checks the caller before the resolver runs; prints the matching directive."""

    def __init__(
        self,
        *,
        role: DomainRole | None = None,
        level: DomainPermissionLevel | None = None,
    ) -> None:
        if (role is None) == (level is None):
            raise ValueError("Access needs exactly one of role or level")
        self.role = role
        self.level = level

    def apply(self, field: StrawberryField) -> None:
        directive: object
        if self.role is not None:
            directive = RequiresRole(role=self.role)
        else:
            assert self.level is not None
            directive = RequiresPermission(level=self.level)
        # Schemas may be built more than once per process; print the directive once.
        if not any(type(d) is type(directive) for d in field.directives):
            field.directives.append(directive)

    async def check(self, source: Any, info: Info, kwargs: dict[str, Any]) -> None:
        principal = await info.context.require_principal()
        if self.role is not None:
            if self.role is DomainRole.ADMIN and not principal.is_admin:
                raise Forbidden("Only administrators can do this")
            return
        assert self.level is not None
        await info.context.require_dashboard_level(source, kwargs, self.level)

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        await self.check(source, info, kwargs)
        result = next_(source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def admin_only() -> list[FieldExtension]:
    return [Access(role=DomainRole.ADMIN)]


def requires_permission(level: DomainPermissionLevel) -> list[FieldExtension]:
    return [Access(level=level)]
