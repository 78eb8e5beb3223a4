"""Sign-in, tokens and their failure modes, through the GraphQL endpoint."""

from __future__ import annotations

import base64
import json
import time

from jose import jwt

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Users
from tests.support.client import Api, fresh_ip
from tests.support.stack import Stack

ME = "{ me { id email role } }"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token expiresAt user { id email } } }"
INVALID = "Invalid or expired token"


async def test_login_me_logout_and_revocation(api: Api, users: Users) -> None:
    user = await users.create("alice")
    data = await api.ok(LOGIN, {"i": {"email": user["email"], "password": user["password"]}})
    token = data["login"]["token"]
    assert data["login"]["user"]["email"] == user["email"]
    me = await api.ok(ME, token=token)
    assert me["me"] == {"id": user["id"], "email": user["email"], "role": "USER"}

    assert (await api.ok("mutation { logout { ok } }", token=token))["logout"]["ok"] is True
    after = await api.fail(ME, token=token)
    assert after.code == "UNAUTHENTICATED"
    assert after.error["message"] == INVALID
    # Other sessions of the same user are not affected.
    assert (await api.ok(ME, token=user["token"]))["me"]["id"] == user["id"]


async def test_login_failures_look_the_same_for_unknown_and_known_emails(
    api: Api, users: Users
) -> None:
    user = await users.create("bob")
    wrong = await api.fail(LOGIN, {"i": {"email": user["email"], "password": "Wrong-pass1!"}})
    unknown = await api.fail(
        LOGIN, {"i": {"email": "nobody@tests.example", "password": "Wrong-pass1!"}}
    )
    assert wrong.code == unknown.code == "UNAUTHENTICATED"
    assert wrong.error["message"] == unknown.error["message"] == "Invalid email or password"


def _forge(stack: Stack, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": "usr_x",
        "role": "ADMIN",
        "jti": "j1",
        "iat": now,
        "exp": now + 600,
        "iss": "tilegraph",
        "aud": "tilegraph-api",
    }
    claims.update(overrides)
    for key, value in list(claims.items()):
        if value is None:
            del claims[key]
    return jwt.encode(claims, stack.env["TILEGRAPH_JWT_SECRET"], algorithm="HS256")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_every_token_failure_is_unauthenticated_with_one_message(
    api: Api, users: Users, stack: Stack
) -> None:
    user = await users.create("carol")
    good = _forge(stack, sub=user["id"], role="USER")
    assert (await api.ok(ME, token=good))["me"]["id"] == user["id"]
    header, payload, signature = good.split(".")
    now = int(time.time())
    bad_tokens = {
        "expired": _forge(stack, sub=user["id"], iat=now - 7200, exp=now - 3600),
        "tampered payload": f"{header}.{_b64({'sub': user['id'], 'role': 'ADMIN'})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg HS512": jwt.encode(
            jwt.get_unverified_claims(good), stack.env["TILEGRAPH_JWT_SECRET"], algorithm="HS512"
        ),
        "alg RS256 header": f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}",
        "other secret": jwt.encode(jwt.get_unverified_claims(good), "x" * 40, algorithm="HS256"),
        "no jti": _forge(stack, sub=user["id"], jti=None),
        "no exp": _forge(stack, sub=user["id"], exp=None),
        "no iat": _forge(stack, sub=user["id"], iat=None),
        "no sub": _forge(stack, sub=None),
        "wrong issuer": _forge(stack, sub=user["id"], iss="someone-else"),
        "wrong audience": _forge(stack, sub=user["id"], aud="another-api"),
        "no audience": _forge(stack, sub=user["id"], aud=None),
        "garbage": "not-a-token",
    }
    for name, token in bad_tokens.items():
        response = await api.fail(ME, token=token)
        assert response.code == "UNAUTHENTICATED", name
        assert response.error["message"] == INVALID, name
    wrong_scheme = await api.post(ME, headers={"Authorization": f"Basic {good}"})
    assert wrong_scheme.code == "UNAUTHENTICATED"


async def test_every_root_field_but_login_needs_a_signed_in_caller(api: Api, users: Users) -> None:
    for document in (
        ME,
        '{ users(query: "a") { id } }',
        "{ dashboards { totalCount } }",
        'mutation { createDashboard(input: {name: "Sales"}) { dashboard { id } } }',
    ):
        response = await api.fail(document)
        assert response.code == "UNAUTHENTICATED", document
    user = await users.create("grace")
    # A stale token does not stop anyone from signing in again.
    again = await api.ok(
        LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, token="not-a-token"
    )
    assert again["login"]["user"]["id"] == user["id"]


async def test_password_policy_and_the_72_byte_rule(api: Api, admin_token: str) -> None:
    create = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }"
    weak = {
        "Sh0rt!": "at least 8",
        "alllowercase1!": "upper-case",
        "ALLUPPER1!": "lower-case",
        "NoDigits!!": "digit",
        "NoSymbol123": "symbol",
    }
    for password, reason in weak.items():
        response = await api.fail(
            create,
            {"i": {"email": f"p{len(password)}@tests.example", "name": "P", "password": password}},
            token=admin_token,
        )
        assert response.code == "BAD_USER_INPUT", password
        assert response.error["extensions"]["field"] == "password"
        assert reason in response.error["message"], (password, response.error["message"])
    # 73 bytes in UTF-8 (but only 40 characters): refused, never silently truncated.
    too_long = "Aa1!" + "é" * 34 + "xy"
    assert len(too_long.encode()) == 74 and len(too_long) == 40
    response = await api.fail(
        create,
        {"i": {"email": "long@tests.example", "name": "L", "password": too_long}},
        token=admin_token,
    )
    assert response.code == "BAD_USER_INPUT"
    assert "72 bytes" in response.error["message"]
    exactly_72 = "Aa1!" + "é" * 34
    assert len(exactly_72.encode()) == 72
    ok = await api.ok(
        create,
        {"i": {"email": "exact72@tests.example", "name": "E", "password": exactly_72}},
        token=admin_token,
    )
    assert ok["createUser"]["user"]["id"].startswith("usr_")
    assert await api.login("exact72@tests.example", exactly_72)


async def test_change_password(api: Api, users: Users) -> None:
    user = await users.create("dave")
    change = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { ok } }"
    wrong = await api.fail(
        change, {"i": {"currentPassword": "nope", "newPassword": "New-pass1!"}}, token=user["token"]
    )
    assert (
        wrong.code == "BAD_USER_INPUT" and wrong.error["extensions"]["field"] == "currentPassword"
    )
    weak = await api.fail(
        change,
        {"i": {"currentPassword": user["password"], "newPassword": "weak"}},
        token=user["token"],
    )
    assert weak.code == "BAD_USER_INPUT" and weak.error["extensions"]["field"] == "newPassword"
    await api.ok(
        change,
        {"i": {"currentPassword": user["password"], "newPassword": "New-pass1!"}},
        token=user["token"],
    )
    assert await api.login(user["email"], "New-pass1!")
    old = await api.fail(LOGIN, {"i": {"email": user["email"], "password": user["password"]}})
    assert old.code == "UNAUTHENTICATED"


async def test_sixth_failed_login_for_an_email_is_rate_limited(api: Api, users: Users) -> None:
    user = await users.create("erin")
    for attempt in range(5):
        response = await api.fail(
            LOGIN, {"i": {"email": user["email"], "password": "Bad-pass1!"}}, ip=fresh_ip()
        )
        assert response.code == "UNAUTHENTICATED", attempt
    sixth = await api.fail(
        LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, ip=fresh_ip()
    )
    assert sixth.code == "RATE_LIMITED"
    # Another account is not affected.
    assert await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)


async def test_failures_from_one_address_are_limited_but_successes_do_not_count(
    api: Api, users: Users
) -> None:
    ip = fresh_ip()
    user = await users.create("frank")
    for _ in range(25):  # many people behind one address can still sign in
        await api.ok(LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, ip=ip)
    for n in range(20):
        response = await api.fail(
            LOGIN, {"i": {"email": f"ghost{n}@tests.example", "password": "Bad-pass1!"}}, ip=ip
        )
        assert response.code == "UNAUTHENTICATED", n
    blocked = await api.fail(
        LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, ip=ip
    )
    assert blocked.code == "RATE_LIMITED"
    assert await api.ok(
        LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, ip=fresh_ip()
    )


async def test_admin_only_fields(api: Api, users: Users, admin_token: str) -> None:
    user = await users.create("gina")
    for query in (
        "{ groups { totalCount } }",
        '{ group(id: "grp_x") { id } }',
        "{ auditLogs { totalCount } }",
    ):
        as_user = await api.fail(query, token=user["token"])
        assert as_user.code == "FORBIDDEN", query
        anonymous = await api.fail(query)
        assert anonymous.code == "UNAUTHENTICATED", query
    create = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }"
    denied = await api.fail(
        create,
        {"i": {"email": "x@tests.example", "name": "x", "password": "Xx-passw0rd!"}},
        token=user["token"],
    )
    assert denied.code == "FORBIDDEN"
    assert (await api.ok("{ groups { totalCount } }", token=admin_token))["groups"][
        "totalCount"
    ] >= 0


async def test_users_search_by_email_substring(api: Api, users: Users) -> None:
    a = await users.create("zed-search")
    query = "query($q: String!) { users(query: $q) { id email } }"
    found = await api.ok(query, {"q": "ZED-SEARCH"}, token=a["token"])
    assert a["id"] in [u["id"] for u in found["users"]]
    assert all("zed-search" in u["email"] for u in found["users"])
    assert (await api.ok(query, {"q": "  "}, token=a["token"]))["users"] == []
    limited = await api.ok('{ users(query: "@tests.example", limit: 1) { id } }', token=a["token"])
    assert len(limited["users"]) == 1
    no_hash = await api.fail('{ users(query: "a") { passwordHash } }', token=a["token"])
    assert no_hash.code == "BAD_USER_INPUT"


async def test_duplicate_email_is_a_conflict(api: Api, users: Users, admin_token: str) -> None:
    user = await users.create("hank")
    create = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }"
    again = await api.fail(
        create,
        {"i": {"email": user["email"].upper(), "name": "Hank 2", "password": "Hank-passw0rd!"}},
        token=admin_token,
    )
    assert again.code == "CONFLICT"
