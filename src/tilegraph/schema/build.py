"""Builds the Strawberry Schema with its extensions, from Settings."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection
from strawberry.types import ExecutionContext

from tilegraph.domain.cards import MAX_CARD_DATASETS
from tilegraph.domain.dashboards import MAX_FILTERS, MAX_LAYOUT_ITEMS
from tilegraph.domain.transforms import MAX_TRANSFORM_INPUTS
from tilegraph.schema.access import describe_directive_arguments
from tilegraph.schema.admission import Admission, QueryAdmission, TextLimits
from tilegraph.schema.arguments import check_id_arguments
from tilegraph.schema.authentication import require_sign_in
from tilegraph.schema.counting import RequestCounting
from tilegraph.schema.enums import ErrorCode
from tilegraph.schema.errors import ErrorShaping
from tilegraph.schema.limits import CostModel, QueryLimits
from tilegraph.schema.mutation import Mutation
from tilegraph.schema.node import Node
from tilegraph.schema.query import Query
from tilegraph.schema.scalars import SCALAR_OVERRIDES
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

# What each plain list can hold, by the rules that bound it (lists not named here count as
# TILEGRAPH_QUERY_LIST_DEFAULT).
LIST_BOUNDS = {
    "Dashboard.cards": MAX_LAYOUT_ITEMS,
    "DashboardLayout.items": MAX_LAYOUT_ITEMS,
    "DashboardExecutionPayload.executions": MAX_LAYOUT_ITEMS,
    "ReferencedDataset.usedByCards": MAX_LAYOUT_ITEMS,
    "Dashboard.filters": MAX_FILTERS,
    "Card.datasets": MAX_CARD_DATASETS,
    "Transform.inputDatasets": MAX_TRANSFORM_INPUTS,
}
# Fields that read stored data (Parquet in S3) each time: a preview took ~5 ms, about as
# much as 500 plain fields, so a hundred of them still answer well within a second.
READ_WEIGHT = 100
FIELD_WEIGHTS = {
    "Dataset.preview": READ_WEIGHT,
    "Dataset.columnValues": READ_WEIGHT,
    "FilterDefinition.values": READ_WEIGHT,
}


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
        costs=CostModel(
            list_bounds=LIST_BOUNDS,
            list_default=settings.query_list_default,
            weights=FIELD_WEIGHTS,
        ),
    )
    text_limits = TextLimits(
        max_bytes=settings.max_query_bytes,
        max_tokens=settings.max_tokens,
        max_fields=settings.max_fields,
    )
    admission = Admission(text_limits, limits)
    extensions: list[Any] = [
        lambda: QueryAdmission(admission=admission),
        lambda: ErrorShaping(suggestions=settings.field_suggestions_enabled),
    ]
    if settings.report_db_requests:
        extensions.append(RequestCounting)
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection())
    require_sign_in(Query, Mutation, Subscription)
    check_id_arguments(Query, Mutation, Subscription)
    schema = TilegraphSchema(
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
            ErrorCode,  # referenced by no field: listed so clients can generate it
        ],
        extensions=extensions,
        execution_context_class=SharedEventExecutor,
        scalar_overrides=SCALAR_OVERRIDES,
    )
    describe_directive_arguments(schema._schema)
    return schema


def print_sdl() -> str:
    """The schema as `tilegraph schema` prints it (independent of runtime settings)."""
    from tilegraph.settings import DEFAULT_JWT_SECRET

    schema = build_schema(Settings(env="dev", jwt_secret=DEFAULT_JWT_SECRET))
    return schema.as_str() + "\n"
