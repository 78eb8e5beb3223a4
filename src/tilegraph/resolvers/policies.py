"""Dataset policy mutations and the admin's setUserAttributes."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.schema.types.auth import UserPayload
from tilegraph.schema.types.common import DeleteInput, DeletePayload
from tilegraph.schema.types.datasets import (
    CreateDatasetPolicyInput,
    DatasetPolicy,
    DatasetPolicyPayload,
    SetUserAttributesInput,
    UpdateDatasetPolicyInput,
)
from tilegraph.schema.types.users import User
from tilegraph.schema.values import given


async def create_dataset_policy(
    info: Info,
    input: Annotated[
        CreateDatasetPolicyInput,
        strawberry.argument(description="The dataset, the target and what to limit."),
    ],
) -> DatasetPolicyPayload:
    ctx = info.context
    record = await ctx.services.policies.create(
        ctx.principal,
        dataset_id=str(input.dataset_id),
        target_type=input.target_type,
        target_id=str(input.target_id),
        row_filters=[f.to_record() for f in input.row_filters],
        hidden_columns=list(input.hidden_columns),
        request_id=ctx.request_id,
    )
    return DatasetPolicyPayload(policy=DatasetPolicy.from_record(record))


async def update_dataset_policy(
    info: Info,
    input: Annotated[
        UpdateDatasetPolicyInput,
        strawberry.argument(description="The policy and what to change about it."),
    ],
) -> DatasetPolicyPayload:
    ctx = info.context
    row_filters = given(input.row_filters)
    record = await ctx.services.policies.update(
        ctx.principal,
        str(input.id),
        row_filters=[f.to_record() for f in row_filters] if row_filters is not None else None,
        hidden_columns=given(input.hidden_columns),
        expected_version=given(input.expected_version),
        request_id=ctx.request_id,
    )
    return DatasetPolicyPayload(policy=DatasetPolicy.from_record(record))


async def delete_dataset_policy(
    info: Info,
    input: Annotated[
        DeleteInput, strawberry.argument(description="The policy; `force` plays no part.")
    ],
) -> DeletePayload:
    ctx = info.context
    deleted = await ctx.services.policies.delete(ctx.principal, str(input.id), ctx.request_id)
    return DeletePayload(deleted_id=strawberry.ID(deleted))


async def set_user_attributes(
    info: Info,
    input: Annotated[
        SetUserAttributesInput,
        strawberry.argument(description="The account and all its attributes."),
    ],
) -> UserPayload:
    ctx = info.context
    record = await ctx.services.users.set_attributes(
        ctx.principal, str(input.user_id), input.attributes, request_id=ctx.request_id
    )
    return UserPayload(user=User.from_record(record))
