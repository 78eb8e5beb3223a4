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
