"""Login, logout, token checks and password changes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.common_passwords import is_common
from tilegraph.auth.devices import KnownDevices
from tilegraph.auth.passwords import PasswordHasher
from tilegraph.auth.revocation import TokenDenylist
from tilegraph.auth.throttle import LoginThrottle
from tilegraph.auth.tokens import INVALID_TOKEN, IssuedToken, TokenService
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.errors import BadUserInput, Conflict, RateLimited, Unauthenticated
from tilegraph.domain.passwords import password_problems
from tilegraph.domain.users import Principal, UserRecord, normalize_email
from tilegraph.store.dynamo import ConditionFailed
from tilegraph.store.users import UserRepository

BAD_CREDENTIALS = "Invalid email or password"


@dataclass(frozen=True)
class LoginResult:
    token: IssuedToken
    user: UserRecord
    # The id of the device that signed in: known for this account from now on.
    device: str


def check_password_policy(password: str, *, field: str) -> None:
    """Wherever a password is set: the rules of the policy, then the common-password list."""
    problems = password_problems(password)
    if not problems and is_common(password):
        problems.append(
            "is one of the most common passwords (even with digits, symbols or "
            "look-alike characters around or in it); choose another"
        )
    if problems:
        raise BadUserInput("The password " + "; ".join(problems), field=field)


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        tokens: TokenService,
        denylist: TokenDenylist,
        throttle: LoginThrottle,
        devices: KnownDevices,
        audit: AuditRecorder,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.tokens = tokens
        self.denylist = denylist
        self.throttle = throttle
        self.devices = devices
        self.audit = audit
        # Called with the principal whose token was just revoked (e.g. to drop cached checks).
        self.on_logout: list[Callable[[Principal], None]] = []
        # Called with the id of a user whose sessions, role or state changed.
        self.on_user_changed: list[Callable[[str], None]] = []

    async def login(
        self,
        email: str,
        password: str,
        *,
        ip: str,
        device: str | None = None,
        request_id: str | None,
    ) -> LoginResult:
        """The same answer and the same bcrypt cost whether or not the email exists.
        `device`: the id the client was given at an earlier login (its `tg_device` cookie)."""
        email_key = normalize_email(email)
        known = await self.devices.is_known(email_key, device)
        scopes = self.throttle.scopes(email_key, ip, device if known else None)
        wait = await self.throttle.retry_after(scopes)
        if wait:
            await self.audit.record(
                AuditEventType.USER_LOGIN_FAILED,
                user_id=None,
                target_type="email",
                target_id=email_key,
                details={"ip": ip, "reason": "rate_limited", "known_device": known},
                request_id=request_id,
            )
            seconds = math.ceil(wait)
            raise RateLimited(
                f"Too many failed logins; try again in {seconds} s", retryAfter=seconds
            )
        user = await self.users.get_by_email(email_key) if email_key else None
        matched = await self.hasher.verify(password, user.password_hash if user else None)
        refusal = (
            "unknown_email"
            if user is None
            else "bad_password"
            if not matched
            else "disabled"
            if user.disabled
            else None
        )
        if refusal is not None:
            if refusal != "disabled":  # the right password of a disabled account is no attack
                await self.throttle.record_failure(scopes)
            await self.audit.record(
                AuditEventType.USER_LOGIN_FAILED,
                user_id=user.id if user else None,
                target_type="user" if user else "email",
                target_id=user.id if user else email_key,
                details={"ip": ip, "reason": refusal},
                request_id=request_id,
            )
            raise Unauthenticated(BAD_CREDENTIALS)
        assert user is not None
        issued = self.tokens.issue(user.id, user.role, user.session_epoch)
        await self.denylist.issued(issued.jti)
        if known:
            await self.throttle.forget(scopes)
        device = await self.devices.remember(email_key, device)
        await self._audit_own(AuditEventType.USER_LOGIN, user.id, request_id, {"ip": ip})
        return LoginResult(issued, user, device)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal for an `Authorization: Bearer …` value; None when there is none."""
        identified = await self.identify(authorization)
        return identified[0] if identified else None

    def carries_valid_token(self, authorization: str | None) -> bool:
        """Whether the header holds a token this server signed that has not expired, checked
        without any read (what the budget for anonymous requests tells callers apart by)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            self.tokens.verify(token.strip())
        except Unauthenticated:
            return False
        return True

    async def identify(self, authorization: str | None) -> tuple[Principal, UserRecord] | None:
        """The principal and the user record it was checked against (a request reuses the
        record instead of reading the user again)."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(INVALID_TOKEN)
        claims = self.tokens.verify(token.strip())
        if await self.denylist.is_revoked(claims.jti):
            raise Unauthenticated(INVALID_TOKEN)
        # Who the caller is now, not when the token was made: deleted, disabled, demoted,
        # or signed out everywhere since.
        user = await self.users.get(claims.user_id)
        if user is None or not user.accepts(epoch=claims.epoch, jti=claims.jti):
            raise Unauthenticated(INVALID_TOKEN)
        return Principal(user.id, user.role, claims.jti, claims.expires_at), user

    async def logout(self, principal: Principal, *, request_id: str | None) -> None:
        await self.denylist.revoke(principal.jti, principal.expires_at)
        for forget in self.on_logout:
            forget(principal)
        await self._audit_own(AuditEventType.USER_LOGOUT, principal.user_id, request_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        user = await self._caller(principal)
        if not await self.hasher.verify(current, user.password_hash):
            raise BadUserInput("The current password is wrong", field="currentPassword")
        check_password_policy(new, field="newPassword")
        new_hash = await self.hasher.hash(new)
        await self._end_other_sessions(principal, user, {"password_hash": new_hash})

    async def logout_everywhere(self, principal: Principal, *, request_id: str | None) -> None:
        """Every session of the caller ends but the one making the request."""
        await self._end_other_sessions(principal, await self._caller(principal), {})
        await self._audit_own(
            AuditEventType.USER_LOGOUT, principal.user_id, request_id, {"everywhere": True}
        )

    async def _caller(self, principal: Principal) -> UserRecord:
        user = await self.users.get(principal.user_id)
        if user is None:
            raise Unauthenticated(INVALID_TOKEN)
        return user

    async def _audit_own(
        self,
        event: AuditEventType,
        user_id: str,
        request_id: str | None,
        details: dict[str, object] | None = None,
    ) -> None:
        """An event of a user's own account, done by that user."""
        await self.audit.record(
            event,
            user_id=user_id,
            target_type="user",
            target_id=user_id,
            details=details,
            request_id=request_id,
        )

    async def _end_other_sessions(
        self, principal: Principal, user: UserRecord, changes: dict[str, object]
    ) -> None:
        try:
            await self.users.update(
                user,
                {
                    **changes,
                    "session_epoch": user.session_epoch + 1,
                    "kept_session": principal.jti,
                    "updated_at": to_iso(utcnow()),
                },
            )
        except ConditionFailed as exc:
            raise Conflict("The account changed meanwhile; try again") from exc
        self.user_changed(user.id)

    def user_changed(self, user_id: str) -> None:
        for forget in self.on_user_changed:
            forget(user_id)
