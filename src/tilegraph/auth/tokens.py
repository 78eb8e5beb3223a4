"""JWT access tokens: HS256 only, with exp/iat/sub/jti/iss/aud all required and checked."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from jose import jwt
from jose.exceptions import JOSEError

from tilegraph.domain.errors import Unauthenticated
from tilegraph.domain.users import Role

ALGORITHM = "HS256"
INVALID_TOKEN = "Invalid or expired token"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    role: Role
    jti: str
    expires_at: int
    epoch: int = 0  # the user's session epoch when it was issued


# Clock skew allowed between the issuer and this server when checking a token's lifetime.
LIFETIME_SLACK_SECONDS = 60


class TokenService:
    def __init__(self, secret: str, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: str, role: Role, epoch: int = 0) -> IssuedToken:
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        claims = {
            "sub": user_id,
            "role": role.value,
            "jti": jti,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "epoch": epoch,
            "iss": self.issuer,
            "aud": self.audience,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token, jti, datetime.fromtimestamp(now + self.ttl_seconds, UTC))

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; every failure gives the same Unauthenticated error."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise Unauthenticated(INVALID_TOKEN)
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_jti": True,
                    "require_iss": True,
                    "require_aud": True,
                },
            )
            # A correctly signed token may still claim more life than this server grants.
            if int(claims["exp"]) - int(claims["iat"]) > self.ttl_seconds + LIFETIME_SLACK_SECONDS:
                raise Unauthenticated(INVALID_TOKEN)
            return TokenClaims(
                user_id=str(claims["sub"]),
                role=Role(claims.get("role", Role.USER.value)),
                jti=str(claims["jti"]),
                expires_at=int(claims["exp"]),
                epoch=int(claims.get("epoch", 0)),
            )
        except (JOSEError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise Unauthenticated(INVALID_TOKEN) from exc
