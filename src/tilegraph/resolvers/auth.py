"""Sign-in, sign-out, the caller's own account."""

from __future__ import annotations

from typing import Annotated

import strawberry
from starlette.responses import Response

from tilegraph.auth.devices import DEVICE_COOKIE, well_formed
from tilegraph.context import Info
from tilegraph.domain.errors import Unauthenticated
from tilegraph.schema.types.auth import ChangePasswordInput, LoginInput, LoginPayload
from tilegraph.schema.types.common import OkPayload
from tilegraph.schema.types.users import User


async def me(info: Info) -> User:
    principal = info.context.principal
    user = await info.context.loaders.users.load(principal.user_id)
    if user is None:
        raise Unauthenticated("The account no longer exists")
    return User.from_record(user)


async def login(
    info: Info,
    input: Annotated[
        LoginInput, strawberry.argument(description="The email and password to sign in with.")
    ],
) -> LoginPayload:
    ctx = info.context
    result = await ctx.services.auth.login(
        input.email,
        input.password,
        ip=ctx.client_ip,
        device=well_formed(ctx.request.cookies.get(DEVICE_COOKIE)),
        request_id=ctx.request_id,
    )
    if isinstance(ctx.response, Response):
        # HttpOnly: page scripts never read it; sent back only to the API's own origin.
        ctx.response.set_cookie(
            DEVICE_COOKIE,
            result.device,
            max_age=ctx.settings.login_device_ttl_seconds,
            path="/graphql",
            httponly=True,
            secure=ctx.request.url.scheme == "https",
            samesite="strict",
        )
    return LoginPayload(
        token=result.token.token,
        expires_at=result.token.expires_at,
        user=User.from_record(result.user),
    )


async def logout(info: Info) -> OkPayload:
    principal = info.context.principal
    await info.context.services.auth.logout(principal, request_id=info.context.request_id)
    return OkPayload(ok=True)


async def logout_everywhere(info: Info) -> OkPayload:
    ctx = info.context
    await ctx.services.auth.logout_everywhere(ctx.principal, request_id=ctx.request_id)
    return OkPayload(ok=True)


async def change_password(
    info: Info,
    input: Annotated[
        ChangePasswordInput,
        strawberry.argument(description="The current password and the new one."),
    ],
) -> OkPayload:
    principal = info.context.principal
    await info.context.services.auth.change_password(
        principal, input.current_password, input.new_password
    )
    return OkPayload(ok=True)
