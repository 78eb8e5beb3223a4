"""@requiresRole and @requiresPermission: printed in the SDL with their argument, and
enforced by this one field extension, so no resolver repeats an access check."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.schema_directive import Location
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UnsetType

from tilegraph.context import Info
from tilegraph.domain.errors import Forbidden, NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.permissions import PermissionLevel as DomainPermissionLevel
from tilegraph.domain.users import Role as DomainRole
from tilegraph.schema.enums import PermissionLevel, Role
from tilegraph.services.access import NO_SUCH_DASHBOARD, RequestLoaders


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
        loaders = info.context.loaders
        dashboard_id = await locate_dashboard(loaders, source, kwargs)
        if dashboard_id is None:
            raise NotFound(NO_SUCH_DASHBOARD, field="id")
        await info.context.access.require(principal, dashboard_id, self.level)

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
