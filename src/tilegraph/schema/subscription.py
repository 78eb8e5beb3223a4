"""The Subscription root."""

from __future__ import annotations

import strawberry

from tilegraph.domain.permissions import PermissionLevel
from tilegraph.resolvers import cards as cards_r
from tilegraph.resolvers import chat as chat_r
from tilegraph.resolvers import datasets as datasets_r
from tilegraph.resolvers import executions as executions_r
from tilegraph.resolvers import transforms as transforms_r
from tilegraph.schema.access import requires_permission


@strawberry.type(
    description="Live streams over WebSocket (graphql-transport-ws, with the token in the "
    "connection_init payload); an execution stream checks the caller's access again before "
    "every event."
)
class Subscription:
    card_execution = strawberry.subscription(
        resolver=cards_r.card_execution_updates,
        description="The execution's state now, then every change until it reaches SUCCEEDED, "
        "FAILED or CANCELLED; then the stream completes. Subscribing after the end yields the "
        "final state once.",
    )
    transform_execution = strawberry.subscription(
        resolver=transforms_r.transform_execution_updates,
        description="As cardExecution, for a transform run.",
    )
    transform_executions = strawberry.subscription(
        resolver=transforms_r.transform_runs_updates,
        description="Every run of one transform, manual or scheduled, as it changes. "
        "Never completes.",
    )
    dashboard_chat = strawberry.subscription(
        resolver=chat_r.dashboard_chat,
        extensions=requires_permission(PermissionLevel.VIEWER),
        description="Streams the answer to one question about a dashboard's data; ends with "
        "DONE or ERROR.",
    )
    dataset_import = strawberry.subscription(
        resolver=datasets_r.dataset_import_updates,
        description="As cardExecution, for a dataset import.",
    )
    execution = strawberry.subscription(
        resolver=executions_r.execution_updates,
        description="Follows any execution by id until it ends: the same events as "
        "cardExecution, transformExecution or datasetImport, whichever kind it is (and the "
        "only stream of a DeliveryRun).",
    )
