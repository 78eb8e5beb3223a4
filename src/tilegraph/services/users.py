"""Creating and finding users."""

from __future__ import annotations

from typing import Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.passwords import PasswordHasher
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.errors import BadUserInput, Conflict, NotFound
from tilegraph.domain.ids import new_id
from tilegraph.domain.policies import check_attributes
from tilegraph.domain.users import Principal, Role, UserRecord, normalize_name
from tilegraph.domain.validation import check_email, check_name
from tilegraph.services.auth import AuthService, check_password_policy
from tilegraph.store.dynamo import ConditionFailed
from tilegraph.store.users import EmailTaken, UserRepository

MAX_SEARCH_RESULTS = 100
# What a non-admin may look up: a prefix this long at least, this many answers at most (so
# `users(query: "@")` is no directory of every account).
MIN_PREFIX = 3
MAX_PREFIX_RESULTS = 10


class UserService:
    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        auth: AuthService,
        audit: AuditRecorder,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.auth = auth
        self.audit = audit

    async def update(
        self,
        admin: Principal,
        user_id: str,
        *,
        name: str | None,
        role: Role | None,
        disabled: bool | None,
        request_id: str | None,
    ) -> UserRecord:
        """An admin's change to an account; it holds from the user's next request on, for
        every token already issued (the role and state are read at every request)."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user", field="id")
        if user.id == admin.user_id and role not in (None, user.role):
            raise BadUserInput("You cannot change your own role", field="role")
        if user.id == admin.user_id and disabled:
            raise BadUserInput("You cannot disable your own account", field="disabled")
        changes: dict[str, Any] = {}
        if name is not None and name != user.name:
            changes["name"] = check_name(name)
        if role is not None and role is not user.role:
            changes["role"] = role.value
        if disabled is not None and disabled != user.disabled:
            changes["disabled"] = disabled
        if not changes:
            return user
        try:
            updated = await self.users.update(user, {**changes, "updated_at": to_iso(utcnow())})
        except ConditionFailed as exc:
            raise Conflict("The account changed meanwhile; try again") from exc
        self.auth.user_changed(user.id)
        await self.audit.record(
            AuditEventType.USER_UPDATED,
            user_id=admin.user_id,
            target_type="user",
            target_id=user.id,
            details={"changed": sorted(changes)},
            request_id=request_id,
        )
        return updated

    async def set_attributes(
        self, admin: Principal, user_id: str, attributes: Any, *, request_id: str | None
    ) -> UserRecord:
        """An admin replaces every attribute of a user; policies read them from the next
        access resolved."""
        checked = check_attributes(attributes)
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user", field="userId")
        if checked == user.attributes:
            return user
        try:
            updated = await self.users.update(
                user, {"attributes": checked, "updated_at": to_iso(utcnow())}
            )
        except ConditionFailed as exc:
            raise Conflict("The account changed meanwhile; try again") from exc
        await self.audit.record(
            AuditEventType.USER_ATTRIBUTES_CHANGED,
            user_id=admin.user_id,
            target_type="user",
            target_id=user.id,
            details={"before": user.attributes, "after": checked},
            request_id=request_id,
        )
        return updated

    async def create(self, email: str, name: str, password: str, role: Role) -> UserRecord:
        email = check_email(email)
        name = check_name(name)
        check_password_policy(password, field="password")
        now = utcnow()
        user = UserRecord(
            id=new_id("usr"),
            email=email,
            name=name,
            role=role,
            password_hash=await self.hasher.hash(password),
            created_at=now,
            updated_at=now,
        )
        try:
            await self.users.create(user)
        except EmailTaken as exc:
            raise Conflict("A user with this email already exists", field="email") from exc
        return user

    async def search(self, principal: Principal, query: str, limit: int) -> list[UserRecord]:
        """Admins: emails containing `query`. Others, to find someone to share with: emails
        or names starting with `query` (3+ characters), at most 10."""
        if not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise BadUserInput(f"`limit` must be between 1 and {MAX_SEARCH_RESULTS}", field="limit")
        if principal.is_admin:
            needle = query.strip().lower()
            return await self.users.search_by_email(needle, limit) if needle else []
        prefix = normalize_name(query)
        if not prefix:
            return []
        if len(prefix) < MIN_PREFIX:
            raise BadUserInput(
                f"Type at least {MIN_PREFIX} characters of the email or name", field="query"
            )
        return await self.users.search_by_prefix(prefix, min(limit, MAX_PREFIX_RESULTS))

    async def ensure_admin(self, email: str, name: str, password: str) -> tuple[UserRecord, bool]:
        """The admin with this email, creating it when missing. True when it was created."""
        existing = await self.users.get_by_email(email)
        if existing is not None:
            return existing, False
        return await self.create(email, name, password, Role.ADMIN), True
