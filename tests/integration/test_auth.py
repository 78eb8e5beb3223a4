"""Sign-in, tokens and their failure modes, through the GraphQL endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from jose import jwt

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Users
from tests.support.client import Api, fresh_ip
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess, InProcessApi
from tests.support.stack import Stack
from tests.support.transforms import create_transform

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


@dataclass
class Forgery:
    """A real user's token forged with the server's secret: the base of every bad token."""

    stack: Stack
    user_id: str

    def forge(self, **overrides: object) -> str:
        return _forge(self.stack, **{"sub": self.user_id, "role": "USER", **overrides})

    @property
    def good(self) -> str:
        return self.forge()

    @property
    def parts(self) -> list[str]:
        """header, payload, signature"""
        return self.good.split(".")


BAD_TOKENS: dict[str, Callable[[Forgery], str]] = {
    "expired": lambda f: f.forge(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "tampered payload": lambda f: (
        f"{f.parts[0]}.{_b64({'sub': f.user_id, 'role': 'ADMIN'})}.{f.parts[2]}"
    ),
    "tampered signature": lambda f: f"{f.parts[0]}.{f.parts[1]}.{f.parts[2][:-4]}AAAA",
    "alg none": lambda f: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{f.parts[1]}.",
    "alg HS512": lambda f: jwt.encode(
        jwt.get_unverified_claims(f.good), f.stack.env["TILEGRAPH_JWT_SECRET"], algorithm="HS512"
    ),
    "alg RS256 header": lambda f: (
        f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{f.parts[1]}.{f.parts[2]}"
    ),
    "other secret": lambda f: jwt.encode(
        jwt.get_unverified_claims(f.good), "x" * 40, algorithm="HS256"
    ),
    "no jti": lambda f: f.forge(jti=None),
    "no exp": lambda f: f.forge(exp=None),
    "no iat": lambda f: f.forge(iat=None),
    "no sub": lambda f: f.forge(sub=None),
    "wrong issuer": lambda f: f.forge(iss="someone-else"),
    "wrong audience": lambda f: f.forge(aud="another-api"),
    "no audience": lambda f: f.forge(aud=None),
    "garbage": lambda f: "not-a-token",
}


@pytest.fixture(scope="module")
async def forgery(users: Users, stack: Stack) -> Forgery:
    return Forgery(stack, (await users.create("carol"))["id"])


async def test_a_token_made_with_the_secret_works_as_a_bearer_token_only(
    api: Api, forgery: Forgery
) -> None:
    assert (await api.ok(ME, token=forgery.good))["me"]["id"] == forgery.user_id
    wrong_scheme = await api.post(ME, headers={"Authorization": f"Basic {forgery.good}"})
    assert wrong_scheme.code == "UNAUTHENTICATED"


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_every_token_failure_is_unauthenticated_with_one_message(
    api: Api, forgery: Forgery, case: str
) -> None:
    response = await api.fail(ME, token=BAD_TOKENS[case](forgery))
    assert response.code == "UNAUTHENTICATED"
    assert response.error["message"] == INVALID


async def test_no_token_is_unauthenticated(api: Api) -> None:
    response = await api.fail(ME)
    assert response.code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "document",
    [
        ME,
        '{ users(query: "a") { id } }',
        "{ dashboards { totalCount } }",
        'mutation { createDashboard(input: {name: "Sales"}) { dashboard { id } } }',
    ],
    ids=["me", "users", "dashboards", "createDashboard"],
)
async def test_every_root_field_but_login_needs_a_signed_in_caller(api: Api, document: str) -> None:
    response = await api.fail(document)
    assert response.code == "UNAUTHENTICATED"


async def test_a_stale_token_does_not_stop_anyone_from_signing_in(api: Api, users: Users) -> None:
    user = await users.create("grace")
    again = await api.ok(
        LOGIN, {"i": {"email": user["email"], "password": user["password"]}}, token="not-a-token"
    )
    assert again["login"]["user"]["id"] == user["id"]


CREATE_USER = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "at least 8"),
        ("alllowercase1!", "upper-case"),
        ("ALLUPPER1!", "lower-case"),
        ("NoDigits!!", "digit"),
        ("NoSymbol123", "symbol"),
    ],
)
async def test_a_weak_password_is_refused_with_the_rule_it_breaks(
    api: Api, admin_token: str, password: str, reason: str
) -> None:
    response = await api.fail(
        CREATE_USER,
        {"i": {"email": f"p{len(password)}@tests.example", "name": "P", "password": password}},
        token=admin_token,
    )
    assert response.code == "BAD_USER_INPUT"
    assert response.error["extensions"]["field"] == "password"
    assert reason in response.error["message"], response.error["message"]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Passw0rd!", "most common"),
        ("Summer2024!", "most common"),
        ("P@ssw0rd123", "most common"),
        ("Dragon-1999", "most common"),
        (" Good-passw0rd1", "blanks"),
        ("Good-passw0rd1\t", "blanks"),
        ("Good\u200b-passw0rd1", "invisible"),
        ("\ufeffGood-passw0rd1", "invisible"),
        ("Good-pass\u2060w0rd1", "invisible"),
    ],
)
async def test_common_or_padded_passwords_are_refused_wherever_one_is_set(
    api: Api, users: Users, admin_token: str, password: str, problem: str
) -> None:
    email = f"weak-{secrets.token_hex(4)}@tests.example"
    created = await api.fail(
        CREATE_USER, {"i": {"email": email, "name": "W", "password": password}}, token=admin_token
    )
    assert created.code == "BAD_USER_INPUT" and created.error["extensions"]["field"] == "password"
    assert problem in created.error["message"], created.error["message"]
    user = await users.create("weak")
    changed = await api.fail(
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { ok } }",
        {"i": {"currentPassword": user["password"], "newPassword": password}},
        token=user["token"],
    )
    assert changed.code == "BAD_USER_INPUT"
    assert changed.error["extensions"]["field"] == "newPassword"
    assert problem in changed.error["message"]


async def test_the_72_byte_rule(api: Api, admin_token: str) -> None:
    # 73 bytes in UTF-8 (but only 40 characters): refused, never silently truncated.
    too_long = "Aa1!" + "é" * 34 + "xy"
    assert len(too_long.encode()) == 74 and len(too_long) == 40
    response = await api.fail(
        CREATE_USER,
        {"i": {"email": "long@tests.example", "name": "L", "password": too_long}},
        token=admin_token,
    )
    assert response.code == "BAD_USER_INPUT"
    assert "72 bytes" in response.error["message"]
    exactly_72 = "Aa1!" + "é" * 34
    assert len(exactly_72.encode()) == 72
    ok = await api.ok(
        CREATE_USER,
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


@asynccontextmanager
async def browser(app: InProcessApi) -> AsyncIterator[Api]:
    """A client with a cookie jar of its own: a browser that has not signed in here yet."""
    client = Api(app.url, app.ws_url, app.transport)
    try:
        yield client
    finally:
        await client.close()


def _login(email: str, password: str) -> dict[str, object]:
    return {"i": {"email": email, "password": password}}


async def test_five_failed_logins_slow_an_email_down_for_clients_it_does_not_know(
    api: Api, api_app: InProcessApi, users: Users
) -> None:
    user = await users.create("erin")  # signs in through `api`: a browser erin uses
    bad, good = _login(user["email"], "Bad-pass1!"), _login(user["email"], user["password"])
    async with browser(api_app) as stranger, browser(api_app) as another:
        for attempt in range(5):
            response = await stranger.fail(LOGIN, bad, ip=fresh_ip())
            assert response.code == "UNAUTHENTICATED", attempt
        sixth = await stranger.fail(LOGIN, good, ip=fresh_ip())
        assert sixth.code == "RATE_LIMITED"
        assert sixth.error["extensions"]["retryAfter"] > 0
        assert (await another.fail(LOGIN, good, ip=fresh_ip())).code == "RATE_LIMITED"
    # Erin's own browser is not locked out by them, and another account is not affected.
    assert (await api.ok(LOGIN, good, ip=fresh_ip()))["login"]["user"]["id"] == user["id"]
    assert await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)


async def test_failures_from_one_address_are_limited_but_successes_do_not_count(
    api: Api, api_app: InProcessApi, users: Users
) -> None:
    ip = fresh_ip()
    user = await users.create("frank")
    good = _login(user["email"], user["password"])
    for _ in range(25):  # many people behind one address can still sign in
        await api.ok(LOGIN, good, ip=ip)
    async with browser(api_app) as crowd:
        for n in range(20):
            response = await crowd.fail(
                LOGIN, _login(f"ghost{n}@tests.example", "Bad-pass1!"), ip=ip
            )
            assert response.code == "UNAUTHENTICATED", n
        blocked = await crowd.fail(LOGIN, good, ip=ip)
        assert blocked.code == "RATE_LIMITED"
        assert await crowd.ok(LOGIN, good, ip=fresh_ip())
    # The browser frank signed in with before still gets in from the blocked address.
    assert await api.ok(LOGIN, good, ip=ip)


async def _refused_for(client: Api, attempt: dict[str, object], ip: str) -> int:
    response = await client.fail(LOGIN, attempt, ip=ip)
    assert response.code == "RATE_LIMITED", response.body
    return int(response.error["extensions"]["retryAfter"])


async def _wait_out(client: Api, attempt: dict[str, object], ip: str) -> None:
    """Polls (refused attempts cost nothing and do not count) until the wait is over and
    the attempt is judged again: a wrong password then fails, and counts."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = await client.fail(LOGIN, attempt, ip=ip)
        if response.code != "RATE_LIMITED":
            assert response.code == "UNAUTHENTICATED", response.body
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the login throttle never let the client try again")


async def test_an_attacker_neither_locks_the_owner_out_nor_keeps_guessing_fast(
    inprocess: InProcess, users: Users
) -> None:
    app = await inprocess.start_api(
        {"TILEGRAPH_LOGIN_BACKOFF_SECONDS": "1", "TILEGRAPH_LOGIN_BACKOFF_MAX_SECONDS": "60"}
    )
    victim = await users.create("victim")
    good, guess = _login(victim["email"], victim["password"]), _login(victim["email"], "Guess-1!x")
    ip_a, ip_b = fresh_ip(), fresh_ip()
    async with browser(app) as owner, browser(app) as attacker, browser(app) as new_laptop:
        signed_in = await owner.post(LOGIN, good, ip=ip_b)
        assert not signed_in.errors
        cookie = signed_in.headers["set-cookie"].lower()
        assert cookie.startswith("tg_device=") and "httponly" in cookie
        assert "samesite=strict" in cookie and "path=/graphql" in cookie

        for n in range(5):
            assert (await attacker.fail(LOGIN, guess, ip=ip_a)).code == "UNAUTHENTICATED", n
        waits = [await _refused_for(attacker, guess, ip_a)]
        # The owner's browser gets in at once, from home, from the attacker's address, anywhere.
        for ip in (ip_b, ip_a, fresh_ip()):
            assert (await owner.ok(LOGIN, good, ip=ip))["login"]["user"]["id"] == victim["id"]
        # A browser the account never signed in with waits like the attacker.
        assert (await new_laptop.fail(LOGIN, good, ip=fresh_ip())).code == "RATE_LIMITED"
        # Each failure past the limit doubles the wait: 1 s, 2 s, 4 s …
        for _ in range(2):
            await _wait_out(attacker, guess, ip_a)
            waits.append(await _refused_for(attacker, guess, ip_a))
        assert waits[0] >= 1 and waits[0] < waits[1] < waits[2], waits

        # A known browser has a limit of its own (a stolen cookie is no licence to guess).
        for n in range(5):
            assert (await owner.fail(LOGIN, guess, ip=ip_b)).code == "UNAUTHENTICATED", n
        assert (await owner.fail(LOGIN, good, ip=ip_b)).code == "RATE_LIMITED"


@pytest.mark.parametrize(
    "query",
    ["{ groups { totalCount } }", '{ group(id: "grp_x") { id } }', "{ auditLogs { totalCount } }"],
    ids=["groups", "group", "auditLogs"],
)
async def test_admin_only_fields(api: Api, users: Users, query: str) -> None:
    user = await users.create("gina")
    as_user = await api.fail(query, token=user["token"])
    assert as_user.code == "FORBIDDEN"
    anonymous = await api.fail(query)
    assert anonymous.code == "UNAUTHENTICATED"


async def test_only_admins_create_users(api: Api, users: Users, admin_token: str) -> None:
    user = await users.create("gina")
    denied = await api.fail(
        CREATE_USER,
        {"i": {"email": "x@tests.example", "name": "x", "password": "Xx-passw0rd!"}},
        token=user["token"],
    )
    assert denied.code == "FORBIDDEN"
    assert (await api.ok("{ groups { totalCount } }", token=admin_token))["groups"][
        "totalCount"
    ] >= 0


async def test_users_search_by_prefix_for_users_and_by_substring_for_admins(
    api: Api, users: Users, admin_token: str
) -> None:
    a = await users.create("zed-search")
    tag = secrets.token_hex(3)
    named = await api.ok(
        CREATE_USER,
        {
            "i": {
                "email": f"qa-{tag}@tests.example",
                "name": f"Quincy{tag} Adams",
                "password": USER_PASSWORD,
            }
        },
        token=admin_token,
    )
    query = "query($q: String!, $n: Int) { users(query: $q, limit: $n) { id email } }"

    async def found(q: str, token: str, limit: int = 20) -> list[str]:
        data = await api.ok(query, {"q": q, "n": limit}, token=token)
        return [u["email"] for u in data["users"]]

    # A user finds people by the start of their email or name, case-insensitively.
    by_email = await found("ZED-SEARCH", a["token"])
    assert a["email"] in by_email and all(e.startswith("zed-search") for e in by_email)
    assert await found(f"quincy{tag.upper()}", a["token"]) == [f"qa-{tag}@tests.example"]
    # …but not by what is inside them, and not with fewer than 3 characters.
    assert await found("@tests.example", a["token"]) == []
    assert await found(f"{tag} Adams", a["token"]) == []
    for short in ("@", "a", "ze", " ze "):
        refused = await api.fail(query, {"q": short}, token=a["token"])
        assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == "query"
    assert await found("  ", a["token"]) == []
    # At most 10 answers, whatever the limit asked.
    crowd = f"crowd{secrets.token_hex(2)}"
    for n in range(12):
        await api.ok(
            CREATE_USER,
            {"i": {"email": f"{crowd}-{n}@tests.example", "name": "C", "password": USER_PASSWORD}},
            token=admin_token,
        )
    assert len(await found(crowd, a["token"], limit=50)) == 10
    # Admins keep the directory search: any part of the email, up to the limit asked.
    assert len(await found(crowd, admin_token, limit=50)) == 12
    everyone = await found("@", admin_token, limit=50)
    assert len(everyone) > 10  # past the 10 a non-admin gets (the session holds many more)
    assert a["email"] in await found(a["email"].split("@")[0][4:], admin_token)
    assert len(await found("@tests.example", admin_token, limit=1)) == 1
    assert named["createUser"]["user"]["id"]
    no_hash = await api.fail('{ users(query: "abc") { passwordHash } }', token=a["token"])
    assert no_hash.code == "BAD_USER_INPUT"


async def test_duplicate_email_is_a_conflict(api: Api, users: Users, admin_token: str) -> None:
    user = await users.create("hank")
    again = await api.fail(
        CREATE_USER,
        {"i": {"email": user["email"].upper(), "name": "Hank 2", "password": "Hank-passw0rd!"}},
        token=admin_token,
    )
    assert again.code == "CONFLICT"


UPDATE_USER = (
    "mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id role disabled } } }"
)
CREATE_ADMIN = 'mutation($e: String!) { createUser(input: {email: $e, name: "N", password: "Admin-Passw0rd!", role: ADMIN}) { user { id } } }'


async def _signed_in(api: Api, user: dict[str, str]) -> str:
    data = await api.ok(LOGIN, {"i": {"email": user["email"], "password": user["password"]}})
    return str(data["login"]["token"])


async def test_a_logout_ends_what_an_open_socket_may_do(api: Api, users: Users) -> None:
    user = await users.create("socket-logout")
    token = await _signed_in(api, user)
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        await api.ok("mutation { logout { ok } }", token=token)
        op = await session.subscribe(ME)
        answer = [payload async for payload in session.messages(op)]
    assert answer[0]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_logout_ends_an_idle_subscription(api: Api, users: Users, worker: object) -> None:
    """A stream that never gets an event still ends once its token is signed out."""
    user = await users.create("idle-stream")
    token = await _signed_in(api, user)
    uploaded, _ = await import_and_wait(api, token, csv_bytes([["x"], [1]]))
    transform = await create_transform(
        api, token, "output = inputs[0]", [uploaded["dataset"]["id"]]
    )
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(
            "subscription($t: ID!) { transformExecutions(transformId: $t) { id } }",
            {"t": transform["id"]},
        )
        await api.ok("mutation { logout { ok } }", token=token)
        answer = [payload async for payload in session.messages(op, timeout=15)]
    assert answer[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", answer


async def test_a_deleted_users_token_stops_working(api: Api, users: Users, stack: Stack) -> None:
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    user = await users.create("deleted")
    services = await Services.open(Settings.from_env(stack.env))
    try:
        await services.db.delete("users", {"id": user["id"]})
    finally:
        await services.close()
    assert (await api.fail(ME, token=user["token"])).code == "UNAUTHENTICATED"


async def test_a_demoted_admin_is_a_user_at_once(api: Api, users: Users, admin_token: str) -> None:
    demoted = await users.create("demoted", role="ADMIN")
    await api.ok(UPDATE_USER, {"i": {"id": demoted["id"], "role": "USER"}}, token=admin_token)
    refused = await api.fail(CREATE_ADMIN, {"e": "sneaky@tests.example"}, token=demoted["token"])
    assert refused.code == "FORBIDDEN"
    assert (await api.ok(ME, token=demoted["token"]))["me"]["role"] == "USER"
    audit = await api.ok(
        "query($id: String!) { auditLogs(filter: {targetId: $id}) { nodes { eventType } } }",
        {"id": demoted["id"]},
        token=admin_token,
    )
    assert "USER_UPDATED" in {e["eventType"] for e in audit["auditLogs"]["nodes"]}


async def test_a_disabled_user_is_refused_until_enabled_again(
    api: Api, users: Users, admin_token: str
) -> None:
    user = await users.create("disabled")
    data = await api.ok(UPDATE_USER, {"i": {"id": user["id"], "disabled": True}}, token=admin_token)
    assert data["updateUser"]["user"]["disabled"] is True
    assert (await api.fail(ME, token=user["token"])).code == "UNAUTHENTICATED"
    login = {"i": {"email": user["email"], "password": user["password"]}}
    assert (await api.fail(LOGIN, login)).code == "UNAUTHENTICATED"
    await api.ok(UPDATE_USER, {"i": {"id": user["id"], "disabled": False}}, token=admin_token)
    assert (await api.ok(ME, token=await _signed_in(api, user)))["me"]["id"] == user["id"]


async def test_an_admin_cannot_lock_themselves_out(api: Api, admin_token: str) -> None:
    me = (await api.ok(ME, token=admin_token))["me"]
    for change, field in (({"role": "USER"}, "role"), ({"disabled": True}, "disabled")):
        refused = await api.fail(UPDATE_USER, {"i": {"id": me["id"], **change}}, token=admin_token)
        assert refused.code == "BAD_USER_INPUT" and refused.error["extensions"]["field"] == field


@pytest.mark.parametrize("how", ["changePassword", "logoutEverywhere"])
async def test_ending_other_sessions_keeps_the_one_that_asked(
    api: Api, users: Users, how: str
) -> None:
    user = await users.create(f"sessions-{how}")
    other = await _signed_in(api, user)
    if how == "changePassword":
        mutation = 'mutation($p: String!) { changePassword(input: {currentPassword: $p, newPassword: "New-Passw0rd!!"}) { ok } }'
        await api.ok(mutation, {"p": user["password"]}, token=user["token"])
    else:
        await api.ok("mutation { logoutEverywhere { ok } }", token=user["token"])
    assert (await api.fail(ME, token=other)).code == "UNAUTHENTICATED"
    assert (await api.ok(ME, token=user["token"]))["me"]["id"] == user["id"]


async def test_a_token_living_longer_than_the_server_grants_is_refused(
    api: Api, users: Users, stack: Stack
) -> None:
    user = await users.create("long-lived")
    now = int(time.time())
    forever = _forge(stack, sub=user["id"], role="USER", iat=now, exp=now + 100 * 365 * 86400)
    assert (await api.fail(ME, token=forever)).code == "UNAUTHENTICATED"
    fair = _forge(stack, sub=user["id"], role="USER", iat=now, exp=now + 600)
    assert (await api.ok(ME, token=fair))["me"]["id"] == user["id"]
