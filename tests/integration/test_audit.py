"""The audit log records sign-ins (including failures) and filters by user and type."""

from __future__ import annotations

from tests.conftest import Users
from tests.support.client import Api

LOGS = """query($f: AuditLogFilter, $first: Int, $after: String) {
  auditLogs(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id timestamp eventType targetType targetId details requestId user { id } } }
  } }"""
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token } }"


async def test_logins_logouts_and_failures_are_audited(
    api: Api, users: Users, admin_token: str
) -> None:
    user = await users.create("audited")  # one successful login
    failed = await api.post(LOGIN, {"i": {"email": user["email"], "password": "Wrong-pass1!"}})
    assert failed.code == "UNAUTHENTICATED"
    await api.ok("mutation { logout { ok } }", token=user["token"])

    mine = await api.ok(LOGS, {"f": {"userId": user["id"]}}, token=admin_token)
    events = [e["node"] for e in mine["auditLogs"]["edges"]]
    assert [e["eventType"] for e in events] == ["USER_LOGOUT", "USER_LOGIN_FAILED", "USER_LOGIN"]
    assert mine["auditLogs"]["totalCount"] == 3
    assert all(e["user"]["id"] == user["id"] for e in events)
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps, reverse=True)
    failed_event = events[1]
    assert failed_event["details"]["reason"] == "bad_password"
    assert failed_event["requestId"] == failed.headers["x-request-id"]

    only_failed = await api.ok(
        LOGS, {"f": {"userId": user["id"], "eventType": "USER_LOGIN_FAILED"}}, token=admin_token
    )
    assert [e["node"]["eventType"] for e in only_failed["auditLogs"]["edges"]] == [
        "USER_LOGIN_FAILED"
    ]

    by_type = await api.ok(
        LOGS, {"f": {"eventType": "USER_LOGOUT"}, "first": 100}, token=admin_token
    )
    nodes = [e["node"] for e in by_type["auditLogs"]["edges"]]
    assert nodes and all(n["eventType"] == "USER_LOGOUT" for n in nodes)
    assert user["id"] in {n["targetId"] for n in nodes}

    by_target = await api.ok(LOGS, {"f": {"targetId": user["id"]}}, token=admin_token)
    assert by_target["auditLogs"]["totalCount"] == 3


async def test_unknown_email_failures_are_audited_without_a_user(
    api: Api, admin_token: str
) -> None:
    email = "no-such-person@tests.example"
    await api.post(LOGIN, {"i": {"email": email, "password": "Wrong-pass1!"}})
    logs = await api.ok(LOGS, {"f": {"targetId": email}}, token=admin_token)
    node = logs["auditLogs"]["edges"][0]["node"]
    assert node["eventType"] == "USER_LOGIN_FAILED" and node["user"] is None
    assert node["details"]["reason"] == "unknown_email"


async def test_audit_pages_and_time_window(api: Api, users: Users, admin_token: str) -> None:
    user = await users.create("paged")
    for _ in range(3):
        await api.login(user["email"], user["password"])
    first = await api.ok(LOGS, {"f": {"userId": user["id"]}, "first": 2}, token=admin_token)
    assert first["auditLogs"]["totalCount"] == 4
    assert first["auditLogs"]["pageInfo"]["hasNextPage"]
    rest = await api.ok(
        LOGS,
        {
            "f": {"userId": user["id"]},
            "first": 2,
            "after": first["auditLogs"]["pageInfo"]["endCursor"],
        },
        token=admin_token,
    )
    ids = [e["node"]["id"] for e in first["auditLogs"]["edges"] + rest["auditLogs"]["edges"]]
    assert len(set(ids)) == 4
    newest = first["auditLogs"]["edges"][0]["node"]["timestamp"]
    window = await api.ok(LOGS, {"f": {"userId": user["id"], "to": newest}}, token=admin_token)
    assert window["auditLogs"]["totalCount"] == 4
    future = await api.ok(
        LOGS, {"f": {"userId": user["id"], "from": "2999-01-01T00:00:00+00:00"}}, token=admin_token
    )
    assert future["auditLogs"]["totalCount"] == 0
