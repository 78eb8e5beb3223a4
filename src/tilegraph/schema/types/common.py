"""Inputs and payloads shared by many mutations."""

from __future__ import annotations

import strawberry


@strawberry.type(description="The answer of a mutation that returns no object.")
class OkPayload:
    ok: bool = strawberry.field(
        description="True when the mutation did what it was asked (see the mutation for when "
        "it is false)."
    )


@strawberry.type(description="The answer of a delete or remove mutation.")
class DeletePayload:
    deleted_id: strawberry.ID = strawberry.field(description="The id of what was removed.")


@strawberry.input(description="Names one object to act on: delete it, or plan its re-import.")
class DeleteInput:
    id: strawberry.ID = strawberry.field(description="The object's id.")
    force: bool = strawberry.field(
        default=False, description="Datasets only: delete even when cards or transforms use it."
    )


@strawberry.input(description="The execution to cancel.")
class CancelExecutionInput:
    id: strawberry.ID = strawberry.field(
        description="A CardExecution, TransformExecution, DatasetImport or DeliveryRun id."
    )


WORKSPACE_KEY = (
    "Matches the object with its files in a workspace directory (`tilegraph export` and "
    "`tilegraph apply`): 1 to 100 lower-case letters, digits, '-' and '_' (BAD_USER_INPUT "
    "otherwise), unique among the owner's objects of this kind (CONFLICT otherwise)."
)
WORKSPACE_KEY_FIELD = (
    "Matches the object with its files in a workspace directory (`tilegraph export` and "
    "`tilegraph apply`); unique among the owner's objects of this kind; null when none is set."
)
