"""Inputs and payloads of sign-in and account management."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.schema.enums import Role
from tilegraph.schema.types.users import Group, User


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class LoginPayload:
    token: str
    expires_at: datetime
    user: User


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class CreateUserInput:
    email: str
    name: str
    password: str
    role: Role = Role.USER


@strawberry.input
class UpdateUserInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description="Takes effect on the user's very next request, tokens already issued included.",
    )
    disabled: bool | None = strawberry.UNSET


@strawberry.type
class UserPayload:
    user: User


@strawberry.input
class CreateGroupInput:
    name: str


@strawberry.input
class UpdateGroupInput:
    id: strawberry.ID
    name: str


@strawberry.input
class GroupMemberInput:
    group_id: strawberry.ID
    user_id: strawberry.ID


@strawberry.type
class GroupPayload:
    group: Group
