"""Creating and finding users."""

from __future__ import annotations

from tilegraph.auth.passwords import PasswordHasher
from tilegraph.domain.clock import utcnow
from tilegraph.domain.errors import BadUserInput, Conflict
from tilegraph.domain.ids import new_id
from tilegraph.domain.users import Role, UserRecord
from tilegraph.domain.validation import check_email, check_name
from tilegraph.services.auth import check_password_policy
from tilegraph.store.users import EmailTaken, UserRepository

MAX_SEARCH_RESULTS = 100


class UserService:
    def __init__(self, users: UserRepository, hasher: PasswordHasher) -> None:
        self.users = users
        self.hasher = hasher

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

    async def search(self, query: str, limit: int) -> list[UserRecord]:
        if not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise BadUserInput(f"`limit` must be between 1 and {MAX_SEARCH_RESULTS}", field="limit")
        needle = query.strip().lower()
        if not needle:
            return []
        return await self.users.search_by_email(needle, limit)

    async def ensure_admin(self, email: str, name: str, password: str) -> tuple[UserRecord, bool]:
        """The admin with this email, creating it when missing. True when it was created."""
        existing = await self.users.get_by_email(email)
        if existing is not None:
            return existing, False
        return await self.create(email, name, password, Role.ADMIN), True
