"""Inputs and payloads shared by many mutations."""

from __future__ import annotations

import strawberry


@strawberry.type
class OkPayload:
    ok: bool


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID


@strawberry.input
class DeleteInput:
    id: strawberry.ID
    force: bool = strawberry.field(
        default=False, description="Datasets only: delete even when cards or transforms use it."
    )


@strawberry.input
class CancelExecutionInput:
    id: strawberry.ID = strawberry.field(
        description="A CardExecution, TransformExecution or DatasetImport id."
    )
