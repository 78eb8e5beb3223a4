"""Builds the Strawberry Schema with its extensions, from Settings."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from tilegraph.schema.authentication import require_sign_in
from tilegraph.schema.counting import RequestCounting
from tilegraph.schema.errors import ErrorShaping
from tilegraph.schema.limits import QueryLimits, QueryLimitsExtension
from tilegraph.schema.mutation import Mutation
from tilegraph.schema.node import Node
from tilegraph.schema.parsing import CachedParsing
from tilegraph.schema.query import Query
from tilegraph.schema.shared_events import SharedEventExecutor
from tilegraph.schema.subscription import Subscription
from tilegraph.schema.types.audit import AuditLog
from tilegraph.schema.types.cards import Card, CardExecution
from tilegraph.schema.types.dashboards import Dashboard, DashboardShare, FilterView
from tilegraph.schema.types.datasets import Dataset, DatasetImport
from tilegraph.schema.types.transforms import Transform, TransformExecution
from tilegraph.schema.types.users import Group, User
from tilegraph.settings import Settings

SCHEMA_DESCRIPTION = "Tilegraph GraphQL API."


class TilegraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by ErrorShaping (with the request id), not here."""


def build_schema(settings: Settings) -> strawberry.Schema:
    limits = QueryLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_directives=settings.max_directives,
        max_cost=settings.max_cost,
    )
    extensions: list[Any] = [
        lambda: CachedParsing(max_tokens=settings.max_tokens),
        ValidationCache(maxsize=1024),
        lambda: QueryLimitsExtension(limits=limits),
        lambda: ErrorShaping(suggestions=settings.field_suggestions_enabled),
    ]
    if settings.report_db_requests:
        extensions.append(RequestCounting)
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection())
    require_sign_in(Query, Mutation, Subscription)
    return TilegraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Node,
            User,
            Group,
            AuditLog,
            Dataset,
            DatasetImport,
            Card,
            CardExecution,
            Dashboard,
            DashboardShare,
            FilterView,
            Transform,
            TransformExecution,
        ],
        extensions=extensions,
        execution_context_class=SharedEventExecutor,
    )


def print_sdl() -> str:
    """The schema as `tilegraph schema` prints it (independent of runtime settings)."""
    from tilegraph.settings import DEFAULT_JWT_SECRET

    schema = build_schema(Settings(env="dev", jwt_secret=DEFAULT_JWT_SECRET))
    return schema.as_str() + "\n"
