"""@requiresRole and @requiresPermission: printed in the SDL with their argument, and
enforced by one permission extension (HasRole, HasDashboardPermission), so no resolver
repeats an access check."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLSchema
from strawberry.extensions import FieldExtension
from strawberry.schema_directive import Location
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UnsetType
from strawberry.utils.await_maybe import await_maybe

from tilegraph.context import Info
from tilegraph.domain.errors import Forbidden, NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.permissions import PermissionLevel as DomainPermissionLevel
from tilegraph.domain.users import Principal
from tilegraph.domain.users import Role as DomainRole
from tilegraph.schema.enums import PermissionLevel, Role
from tilegraph.services.access import NO_SUCH_DASHBOARD, RequestLoaders


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresRole",
    description="The caller must have `role`.",
)
class RequiresRole:
    role: Role = strawberry.field(description="The role the caller needs; others get FORBIDDEN.")


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPermission",
    description="The caller must hold at least `level` on the dashboard the field is about.",
)
class RequiresPermission:
    level: PermissionLevel = strawberry.field(
        description="The lowest level that passes (VIEWER < EDITOR < OWNER): a lower one is "
        "FORBIDDEN, none at all NOT_FOUND."
    )


def describe_directive_arguments(schema: GraphQLSchema) -> None:
    """Strawberry drops the descriptions of a schema directive's arguments; this copies them
    from the directive classes onto the built directives, for the SDL and introspection."""
    directive_classes: tuple[type, ...] = (RequiresRole, RequiresPermission)
    for directive_class in directive_classes:
        definition = directive_class.__strawberry_directive__  # type: ignore[attr-defined]
        built = schema.get_directive(definition.graphql_name)
        assert built is not None, definition.graphql_name
        for argument in definition.fields:
            built.args[argument.python_name].description = argument.description


async def _dashboard_of(loaders: RequestLoaders, identifier: object) -> str | None:
    """A dashboard id, or the dashboard of a share or filter view id."""
    if not identifier:
        return None
    text = str(identifier)
    kind = prefix_of(text)
    if kind == "dash":
        return text
    if kind == "share":
        share = await loaders.shares.load(text)
        return share.dashboard_id if share else None
    if kind == "fv":
        view = await loaders.filter_views.load(text)
        return view.dashboard_id if view else None
    return None


async def locate_dashboard(
    loaders: RequestLoaders, source: object, kwargs: dict[str, Any]
) -> str | None:
    """The dashboard a field is about: its `dashboardId`, `id`, `input.dashboardId` or
    `input.id` argument (a share or filter view id leads to its dashboard), else the
    parent object."""
    candidates: list[Any] = []
    given_input = kwargs.get("input")
    if given_input is not None:
        candidates += [getattr(given_input, "dashboard_id", None), getattr(given_input, "id", None)]
    candidates += [kwargs.get("dashboard_id"), kwargs.get("id")]
    for candidate in candidates:
        if candidate is not None and not isinstance(candidate, UnsetType):
            return await _dashboard_of(loaders, candidate)
    if source is not None:
        return await _dashboard_of(
            loaders, getattr(source, "dashboard_id", None) or getattr(source, "id", None)
        )
    return None


class Permission(FieldExtension, ABC):
    """Checks the caller before the resolver runs and prints its directive in the SDL;
    each subclass supplies both. The caller is signed in already (the root field's
    Authenticated extension runs first)."""

    @abstractmethod
    def directive(self) -> object:
        """The schema directive that documents this check."""

    @abstractmethod
    async def check(
        self, principal: Principal, source: Any, info: Info, kwargs: dict[str, Any]
    ) -> None:
        """Raises FORBIDDEN or NOT_FOUND when the caller may not resolve the field."""

    def apply(self, field: StrawberryField) -> None:
        directive = self.directive()
        # Schemas may be built more than once per process; print the directive once.
        if not any(type(d) is type(directive) for d in field.directives):
            field.directives.append(directive)

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        await self.check(info.context.principal, source, info, kwargs)
        return await await_maybe(next_(source, info, **kwargs))


class HasRole(Permission):
    """@requiresRole(role:)."""

    def __init__(self, role: DomainRole) -> None:
        super().__init__()
        self.role = role

    def directive(self) -> RequiresRole:
        return RequiresRole(role=self.role)

    async def check(
        self, principal: Principal, source: Any, info: Info, kwargs: dict[str, Any]
    ) -> None:
        if self.role is DomainRole.ADMIN and not principal.is_admin:
            raise Forbidden("Only administrators can do this")


class HasDashboardPermission(Permission):
    """@requiresPermission(level:) on the dashboard the field is about (see
    locate_dashboard)."""

    def __init__(self, level: DomainPermissionLevel) -> None:
        super().__init__()
        self.level = level

    def directive(self) -> RequiresPermission:
        return RequiresPermission(level=self.level)

    async def check(
        self, principal: Principal, source: Any, info: Info, kwargs: dict[str, Any]
    ) -> None:
        dashboard_id = await locate_dashboard(info.context.loaders, source, kwargs)
        if dashboard_id is None:
            raise NotFound(NO_SUCH_DASHBOARD, field="id")
        await info.context.access.require(principal, dashboard_id, self.level)


def admin_only() -> list[FieldExtension]:
    return [HasRole(DomainRole.ADMIN)]


def requires_permission(level: DomainPermissionLevel) -> list[FieldExtension]:
    return [HasDashboardPermission(level)]
