"""Inputs and payloads of sign-in and account management."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.schema.enums import Role
from tilegraph.schema.types.users import Group, User

PASSWORD_RULES = (
    "At least 8 characters and at most 72 bytes, with an upper-case and a lower-case letter, "
    "a digit and a symbol; no blanks around it, and not a common password."
)
GROUP_NAME_RULES = (
    "Unique among groups, ignoring letter case (CONFLICT otherwise); at most 100 characters."
)


@strawberry.input(description="The credentials to sign in with.")
class LoginInput:
    email: str = strawberry.field(description="The account's email, in any letter case.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="A new session.")
class LoginPayload:
    token: str = strawberry.field(
        description="Send it as `Authorization: Bearer <token>` over HTTP, or as "
        '{"authorization": "Bearer <token>"} in the WebSocket connection_init payload.'
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working, unless it is revoked sooner (logout, a "
        "password change, a disabled account)."
    )
    user: User = strawberry.field(description="The account that signed in.")


@strawberry.input(description="The caller's current password and the one to replace it.")
class ChangePasswordInput:
    current_password: str = strawberry.field(
        description="The password in use now; BAD_USER_INPUT when it is wrong."
    )
    new_password: str = strawberry.field(description=PASSWORD_RULES)


@strawberry.input(description="A new account.")
class CreateUserInput:
    email: str = strawberry.field(
        description="The address to sign in with; CONFLICT when another account has it in any "
        "letter case."
    )
    name: str = strawberry.field(description="How the user is shown to others.")
    password: str = strawberry.field(description=PASSWORD_RULES)
    role: Role = strawberry.field(default=Role.USER, description="What the account may do.")


@strawberry.input(description="Changes to an account; fields left out stay as they are.")
class UpdateUserInput:
    id: strawberry.ID = strawberry.field(description="The user to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="A new name.")
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description="Takes effect on the user's very next request, tokens already issued included.",
    )
    disabled: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="True disables the account (it can no longer sign in, and its tokens stop "
        "working at once); false enables it again. Admins cannot disable themselves.",
    )


@strawberry.type(description="The account a mutation created or changed.")
class UserPayload:
    user: User = strawberry.field(description="The account as it is now.")


@strawberry.input(description="A new group.")
class CreateGroupInput:
    name: str = strawberry.field(description=GROUP_NAME_RULES)


@strawberry.input(description="A new name for a group.")
class UpdateGroupInput:
    id: strawberry.ID = strawberry.field(description="The group to rename.")
    name: str = strawberry.field(description=GROUP_NAME_RULES)


@strawberry.input(description="A user and a group, to add to or remove from it.")
class GroupMemberInput:
    group_id: strawberry.ID = strawberry.field(description="The group.")
    user_id: strawberry.ID = strawberry.field(description="The user.")


@strawberry.type(description="The group a mutation created or changed.")
class GroupPayload:
    group: Group = strawberry.field(description="The group as it is now.")
