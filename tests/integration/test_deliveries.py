"""Deliveries and alerts through the API, sent to real receivers on loopback: a signed
webhook (the signature verifies with the secret shown once; the Idempotency-Key is the run
id, the same on every retry), an email with an HTML snapshot and CSV attachments through a
real SMTP server, alerts that send nothing when their condition is false, recipients
refused at create and targets refused at send, who may create and see deliveries, and the
every-minute schedule that runs exactly once per minute with two schedulers ticking."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.client import Api
from tests.support.dashboards import create_dashboard, share
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess, InProcessApi
from tests.support.receiver import HttpReceiver
from tests.support.smtp import SmtpServer
from tests.support.stack import Stack
from tests.support.transforms import schedulers, tick_here
from tilegraph.jobs.schedules import schedule_tick

CREATE = """mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) {
  delivery { id name recipients channel contents enabled nextRunAt version
    condition { metric operator threshold card { id } } dashboard { id name } owner { id } }
  signingSecret } }"""
UPDATE = """mutation($i: UpdateDeliveryInput!) { updateDelivery(input: $i) {
  delivery { id recipients version } } }"""
RUN = """mutation($id: ID!) { runDelivery(input: {id: $id}) { run { id status triggeredBy } } }"""
RUN_STATE = """query($id: ID!) { node(id: $id) { ... on DeliveryRun { id status sent attempts
  conditionValue triggeredBy dueAt error { code message } delivery { id } } } }"""
FOLLOW = """subscription($id: ID!) { execution(id: $id) { id status
  ... on DeliveryRun { sent attempts conditionValue error { code message } } } }"""
RUNS = """query($id: ID!) { node(id: $id) { ... on Delivery { runs(first: 50) { totalCount
  nodes { id status dueAt triggeredBy sent } } lastRun { id } } } }"""

METRICS_CARD = render("""
import plotly.express as px
total = float(dataset["amount"].sum())
fig = px.bar(x=list(dataset["region"]), y=list(dataset["amount"]))
table = dataset[["region", "amount"]]
return HTMLResult(html=fig.to_html(), metrics={"total": total, "rows": len(dataset)}, table=table)
""")


# Scheduler ticks as of a moment no worker's own tick (on the real clock) reaches.
FAR_FUTURE = datetime.now(UTC) + timedelta(days=1)
# When a yearly delivery ("0 0 1 1 *") made now is next due, and a little after.
NEXT_NEW_YEAR = datetime(datetime.now(UTC).year + 1, 1, 1, 0, 0, 30, tzinfo=UTC)


def _settings(stack: Stack, smtp: SmtpServer) -> dict[str, str]:
    """A development deployment (loopback http targets allowed) on a queue of its own, so
    only its workers run these deliveries."""
    return {
        "TILEGRAPH_ENV": "dev",
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:deliveries:{secrets.token_hex(3)}",
        "TILEGRAPH_SMTP_HOST": "127.0.0.1",
        "TILEGRAPH_SMTP_PORT": str(smtp.port),
        "TILEGRAPH_SMTP_FROM": "reports@tilegraph.test",
        "TILEGRAPH_DELIVERY_RETRY_BASE_SECONDS": "0.05",
        "TILEGRAPH_SCHEDULE_MIN_INTERVAL_SECONDS": "60",
        "TILEGRAPH_PUBLIC_URL": "http://tilegraph.test",
    }


class Deployment:
    def __init__(self, api: Api, app: InProcessApi, env: dict[str, str]) -> None:
        self.api = api
        self.app = app
        self.env = env


@pytest.fixture(scope="module")
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def dev(stack: Stack, smtp: SmtpServer) -> AsyncIterator[Deployment]:
    env = _settings(stack, smtp)
    deployments = InProcess(stack)
    try:
        app = await deployments.start_api(env)
        await deployments.start_worker(env)
        client = Api(app.url, app.ws_url, app.transport)
        try:
            yield Deployment(client, app, env)
        finally:
            await client.close()
    finally:
        await deployments.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def owner(users: Users) -> dict[str, str]:
    return await users.create("deliveries")


@pytest.fixture(scope="module")
async def board(api: Api, owner: dict[str, str], worker: Any) -> dict[str, str]:
    """A dashboard with one metrics card (a chart, metrics and a table) over a dataset."""
    rows = [["region", "amount"], ["north", 10], ["south", 20], ["east", 12]]
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name="sales")
    assert final["status"] == "SUCCEEDED"
    dataset_id = str(uploaded["dataset"]["id"])
    card_id = await create_card(api, owner["token"], METRICS_CARD, [dataset_id], name="Sales")
    dashboard = await create_dashboard(api, owner["token"], name="Weekly sales", card_ids=[card_id])
    return {"dashboard": str(dashboard["id"]), "card": card_id, "dataset": dataset_id}


def delivery_input(
    board: dict[str, str], channel: str, recipients: list[str], **rest: Any
) -> dict[str, Any]:
    return {
        "dashboardId": board["dashboard"],
        "name": f"report-{secrets.token_hex(2)}",
        "scheduleCron": "0 7 * * 1",
        "enabled": False,  # run by hand unless a test ticks it
        "channel": channel,
        "recipients": recipients,
        **rest,
    }


async def finished(api: Api, token: str, run_id: str) -> dict[str, Any]:
    """The run's states over Subscription.execution, until it ends: the last one."""
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        assert (await session.receive())["type"] == "connection_ack"
        op = await session.subscribe(FOLLOW, {"id": run_id})
        states = [
            p["data"]["execution"] if p.get("data") else p async for p in session.messages(op)
        ]
    assert "errors" not in states[-1], states[-1]
    return states[-1]


async def run_now(dev: Deployment, token: str, delivery_id: str) -> dict[str, Any]:
    data = await dev.api.ok(RUN, {"id": delivery_id}, token=token)
    run = data["runDelivery"]["run"]
    assert run["triggeredBy"] == "MANUAL"
    final = await finished(dev.api, token, run["id"])
    return {**final, "id": run["id"]}


# ---------------------------------------------------------------- webhook


async def test_a_webhook_is_signed_with_the_secret_shown_once_and_keyed_by_the_run(
    dev: Deployment,
    owner: dict[str, str],
    board: dict[str, str],
    receiver: HttpReceiver,
    admin_token: str,
) -> None:
    url = receiver.url + "/hook/" + secrets.token_hex(8)
    data = await dev.api.ok(
        CREATE, {"i": delivery_input(board, "WEBHOOK", [url])}, token=owner["token"]
    )
    created = data["createDelivery"]
    secret = created["signingSecret"]
    delivery = created["delivery"]
    assert secret and len(secret) >= 32
    assert delivery["recipients"] == [re.sub(r"(//[^/]+)/.*", r"\1/…", url)]  # masked
    assert url not in json.dumps(delivery)
    read = await dev.api.ok(
        "query($id: ID!) { node(id: $id) { ... on Delivery { recipients } } }",
        {"id": delivery["id"]},
        token=owner["token"],
    )
    assert read["node"]["recipients"] == delivery["recipients"]

    final = await run_now(dev, owner["token"], delivery["id"])
    assert final["status"] == "SUCCEEDED", final
    assert final["sent"] is True and final["attempts"] == 1
    (request,) = await receiver.wait_for(1)
    assert request.path.startswith("/hook/")
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-tilegraph-signature"] == expected
    assert request.headers["idempotency-key"] == final["id"]
    body = json.loads(request.body)
    assert body["dashboard"]["name"] == "Weekly sales"
    assert body["dashboard"]["url"].endswith(f"/#/dashboards/{board['dashboard']}")
    assert body["cards"][0]["metrics"] == {"total": 42.0, "rows": 3}
    wrong = hmac.new(b"another secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-tilegraph-signature"] != "sha256=" + wrong

    history = await dev.api.ok(RUNS, {"id": delivery["id"]}, token=owner["token"])
    runs = history["node"]["runs"]
    assert runs["totalCount"] == 1 and runs["nodes"][0]["id"] == final["id"]
    assert history["node"]["lastRun"]["id"] == final["id"]
    audit = await dev.api.ok(
        """query($t: String!) { auditLogs(filter: {targetId: $t}) { nodes { eventType } } }""",
        {"t": delivery["id"]},
        token=admin_token,
    )
    events = [n["eventType"] for n in audit["auditLogs"]["nodes"]]
    assert events == ["DELIVERY_SENT"]


async def test_a_receiver_failing_twice_gets_three_tries_with_one_idempotency_key(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], receiver: HttpReceiver
) -> None:
    receiver.respond([503, 502, 200])
    url = receiver.url + "/flaky"
    data = await dev.api.ok(
        CREATE, {"i": delivery_input(board, "WEBHOOK", [url])}, token=owner["token"]
    )
    delivery_id = data["createDelivery"]["delivery"]["id"]
    final = await run_now(dev, owner["token"], delivery_id)
    assert final["status"] == "SUCCEEDED", final
    assert final["attempts"] == 3 and final["sent"] is True
    requests = await receiver.wait_for(3)
    assert {r.headers["idempotency-key"] for r in requests} == {final["id"]}
    assert len({r.body for r in requests}) == 1  # the same body (and signature) each time


async def test_a_receiver_that_keeps_failing_ends_delivery_failed_naming_the_answer(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], receiver: HttpReceiver
) -> None:
    receiver.respond([503, 503, 503])
    data = await dev.api.ok(
        CREATE,
        {"i": delivery_input(board, "SLACK", [receiver.url + "/slack"])},
        token=owner["token"],
    )
    final = await run_now(dev, owner["token"], data["createDelivery"]["delivery"]["id"])
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "DELIVERY_FAILED"
    assert "503" in final["error"]["message"]
    assert final["attempts"] == 3 and final["sent"] is False
    requests = await receiver.wait_for(3)
    text = json.loads(requests[0].body)["text"]
    assert "Weekly sales" in text and "total" in text


# ---------------------------------------------------------------- alerts


async def test_an_alert_sends_only_when_its_condition_holds(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], receiver: HttpReceiver
) -> None:
    async def alert(operator: str, threshold: float) -> dict[str, Any]:
        condition = {
            "cardId": board["card"],
            "metric": "total",
            "operator": operator,
            "threshold": threshold,
        }
        data = await dev.api.ok(
            CREATE,
            {"i": delivery_input(board, "WEBHOOK", [receiver.url + "/alert"], condition=condition)},
            token=owner["token"],
        )
        created = data["createDelivery"]["delivery"]
        assert created["condition"]["card"]["id"] == board["card"]
        return await run_now(dev, owner["token"], created["id"])

    quiet = await alert("GT", 100)
    assert quiet["status"] == "SUCCEEDED"
    assert quiet["sent"] is False and quiet["conditionValue"] == 42.0 and quiet["attempts"] == 0
    loud = await alert("GTE", 42)
    assert loud["status"] == "SUCCEEDED" and loud["sent"] is True
    (request,) = await receiver.wait_for(1)  # the quiet alert sent nothing
    assert request.headers["idempotency-key"] == loud["id"]
    assert json.loads(request.body)["condition"]["value"] == 42.0


async def test_an_alert_on_a_metric_the_card_does_not_return_fails_bad_result(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], receiver: HttpReceiver
) -> None:
    condition = {"cardId": board["card"], "metric": "missing", "operator": "GT", "threshold": 0}
    data = await dev.api.ok(
        CREATE,
        {"i": delivery_input(board, "WEBHOOK", [receiver.url + "/x"], condition=condition)},
        token=owner["token"],
    )
    final = await run_now(dev, owner["token"], data["createDelivery"]["delivery"]["id"])
    assert final["status"] == "FAILED" and final["error"]["code"] == "BAD_RESULT"
    assert "missing" in final["error"]["message"]


# ---------------------------------------------------------------- email


async def test_an_email_carries_the_dashboard_an_offline_snapshot_and_csv(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], smtp: SmtpServer
) -> None:
    before = len(smtp.messages)
    to = [f"team-{secrets.token_hex(3)}@example.com", "boss@example.org"]
    data = await dev.api.ok(
        CREATE,
        {"i": delivery_input(board, "EMAIL", to, contents=["SUMMARY", "HTML_SNAPSHOT", "CSV"])},
        token=owner["token"],
    )
    assert data["createDelivery"]["delivery"]["recipients"] == to
    assert data["createDelivery"]["signingSecret"] is None
    final = await run_now(dev, owner["token"], data["createDelivery"]["delivery"]["id"])
    assert final["status"] == "SUCCEEDED", final
    message = (await smtp.wait_for(before + 1))[before]
    assert "Weekly sales" in message["Subject"]
    assert set(to) <= {a.strip() for a in message["To"].split(",")}
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "total" in body.get_content()
    files = {part.get_filename(): part for part in message.iter_attachments()}
    html_name = next(name for name in files if name.endswith(".html"))
    snapshot = files[html_name].get_content()
    if isinstance(snapshot, bytes):
        snapshot = snapshot.decode()
    assert "Weekly sales" in snapshot and "Plotly.newPlot" in snapshot
    assert snapshot.count("plotly.js v") == 1  # the bundle, inlined once, in the head
    head, body = snapshot.split("</head>", 1)
    assert "plotly.js v" in head and "Plotly.newPlot" in body
    # Nothing loads from anywhere: no script, style or image from another host (the
    # bundle's own source mentions URLs in its strings, so the cards' part is checked).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body)
    assert not re.search(r"<script[^>]*\bsrc=", snapshot)
    assert "cdn." not in body
    csv_part = files["Sales.csv"]
    assert csv_part.get_content_type() == "text/csv"
    content = csv_part.get_content()
    text = content.decode() if isinstance(content, bytes) else content
    assert text.splitlines()[0].replace('"', "") == "region,amount"
    assert len(text.strip().splitlines()) == 4


async def test_two_cards_of_one_name_are_sent_as_two_files(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], smtp: SmtpServer
) -> None:
    token = owner["token"]
    twin = await create_card(dev.api, token, METRICS_CARD, [board["dataset"]], name="Sales")
    dashboard = await create_dashboard(dev.api, token, name="Twins", card_ids=[board["card"], twin])
    before = len(smtp.messages)
    data = await dev.api.ok(
        CREATE,
        {
            "i": {
                **delivery_input(board, "EMAIL", ["twins@example.com"], contents=["CSV"]),
                "dashboardId": dashboard["id"],
            }
        },
        token=token,
    )
    final = await run_now(dev, token, data["createDelivery"]["delivery"]["id"])
    assert final["status"] == "SUCCEEDED", final
    message = (await smtp.wait_for(before + 1))[before]
    files = [part.get_filename() for part in message.iter_attachments()]
    assert files == ["Sales.csv", "Sales-2.csv"]


# ---------------------------------------------------------------- safe targets


@pytest.mark.parametrize(
    ("channel", "recipients"),
    [
        ("WEBHOOK", ["https://169.254.169.254/latest/meta-data/"]),
        ("SLACK", ["http://169.254.169.254/"]),
        ("WEBHOOK", ["ftp://hooks.example.com/x"]),
        ("WEBHOOK", ["not a url"]),
        ("WEBHOOK", []),
        ("EMAIL", ["not-an-address"]),
        ("EMAIL", ["someone@"]),
        ("EMAIL", ["Boss <boss@example.com>"]),
    ],
)
async def test_malformed_or_forbidden_recipients_are_refused_at_create(
    dev: Deployment,
    owner: dict[str, str],
    board: dict[str, str],
    channel: str,
    recipients: list[str],
) -> None:
    response = await dev.api.fail(
        CREATE, {"i": delivery_input(board, channel, recipients)}, token=owner["token"]
    )
    assert response.code == "BAD_USER_INPUT", response.errors
    assert response.error["extensions"]["field"] == "recipients"


async def test_loopback_targets_are_refused_outside_development(
    api: Api, owner: dict[str, str], board: dict[str, str]
) -> None:
    """The session's deployment is not in development: http and loopback are refused."""
    for url in ["http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://localhost/hook"]:
        response = await api.fail(
            CREATE, {"i": delivery_input(board, "WEBHOOK", [url])}, token=owner["token"]
        )
        assert response.code == "BAD_USER_INPUT", (url, response.errors)
        assert response.error["extensions"]["field"] == "recipients"


async def test_a_target_is_checked_again_when_sent(
    dev: Deployment,
    inprocess: InProcess,
    owner: dict[str, str],
    board: dict[str, str],
    receiver: HttpReceiver,
) -> None:
    """Accepted when created (in development), refused when sent by a worker that is not:
    the addresses are checked at every send, so a name that resolves elsewhere later (DNS
    rebinding) reaches nothing it may not."""
    production = {
        **dev.env,
        "TILEGRAPH_ENV": "test",
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:prod:{secrets.token_hex(3)}",
    }
    app = await inprocess.start_api(production)
    await inprocess.start_worker(production)
    prod_api = Api(app.url, app.ws_url, app.transport)
    try:
        data = await dev.api.ok(
            CREATE,
            {"i": delivery_input(board, "WEBHOOK", [receiver.url + "/later"])},
            token=owner["token"],
        )
        started = await prod_api.ok(
            RUN, {"id": data["createDelivery"]["delivery"]["id"]}, token=owner["token"]
        )
        final = await finished(prod_api, owner["token"], started["runDelivery"]["run"]["id"])
    finally:
        await prod_api.close()
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "TARGET_NOT_ALLOWED", final
    assert receiver.requests == []


# ---------------------------------------------------------------- who may


async def test_a_viewer_cannot_create_a_delivery_and_an_editor_can(
    dev: Deployment,
    stack: Stack,
    users: Users,
    owner: dict[str, str],
    board: dict[str, str],
    receiver: HttpReceiver,
) -> None:
    viewer = await users.create("delivery-viewer")
    editor = await users.create("delivery-editor")
    stranger = await users.create("delivery-stranger")
    await share(dev.api, owner["token"], board["dashboard"], "USER", viewer["id"], "VIEWER")
    editor_share = await share(
        dev.api, owner["token"], board["dashboard"], "USER", editor["id"], "EDITOR"
    )
    hook = [receiver.url + "/who"]
    yearly = {"scheduleCron": "0 0 1 1 *", "enabled": True}  # due only when a test ticks
    refused = await dev.api.fail(
        CREATE, {"i": delivery_input(board, "WEBHOOK", hook)}, token=viewer["token"]
    )
    assert refused.code == "FORBIDDEN"
    hidden = await dev.api.fail(
        CREATE, {"i": delivery_input(board, "WEBHOOK", hook)}, token=stranger["token"]
    )
    assert hidden.code == "NOT_FOUND"
    made = await dev.api.ok(
        CREATE, {"i": delivery_input(board, "WEBHOOK", hook, **yearly)}, token=editor["token"]
    )
    delivery = made["createDelivery"]["delivery"]
    assert delivery["owner"]["id"] == editor["id"]

    listing = """query($id: ID!) { node(id: $id) { ... on Dashboard { deliveries { id } } } }"""
    mine = await dev.api.ok(listing, {"id": board["dashboard"]}, token=owner["token"])
    assert delivery["id"] in [d["id"] for d in mine["node"]["deliveries"]]
    denied = await dev.api.fail(listing, {"id": board["dashboard"]}, token=viewer["token"])
    assert denied.code == "FORBIDDEN"
    node = await dev.api.fail(
        "query($id: ID!) { node(id: $id) { id } }", {"id": delivery["id"]}, token=viewer["token"]
    )
    assert node.code == "NOT_FOUND"
    # Another editor sees it but may not change or run it; only its owner does.
    other = await dev.api.fail(
        UPDATE, {"i": {"id": delivery["id"], "name": "x"}}, token=owner["token"]
    )
    assert other.code == "NOT_FOUND"
    own = await dev.api.ok("""query { deliveries { nodes { id } } }""", token=editor["token"])
    assert [d["id"] for d in own["deliveries"]["nodes"]] == [delivery["id"]]

    # Demoted to VIEWER, the editor can no longer change their own delivery, and its next
    # scheduled run sends nothing.
    await dev.api.ok(
        """mutation($id: ID!) { updateDashboardShare(input: {id: $id, permission: VIEWER}) {
          share { id } } }""",
        {"id": editor_share},
        token=owner["token"],
    )
    demoted = await dev.api.fail(
        UPDATE, {"i": {"id": delivery["id"], "name": "y"}}, token=editor["token"]
    )
    assert demoted.code == "FORBIDDEN"
    await tick_here(stack, NEXT_NEW_YEAR, dev.env)
    history = await dev.api.ok(RUNS, {"id": delivery["id"]}, token=owner["token"])
    (queued,) = history["node"]["runs"]["nodes"]
    final = await finished(dev.api, owner["token"], queued["id"])
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "INPUT_UNAVAILABLE"
    assert "no longer an EDITOR" in final["error"]["message"]
    assert receiver.requests == []


async def test_an_update_keeps_the_url_when_sent_back_masked_and_checks_the_version(
    dev: Deployment, owner: dict[str, str], board: dict[str, str], receiver: HttpReceiver
) -> None:
    url = receiver.url + "/keep/" + secrets.token_hex(6)
    data = await dev.api.ok(
        CREATE, {"i": delivery_input(board, "WEBHOOK", [url])}, token=owner["token"]
    )
    delivery = data["createDelivery"]["delivery"]
    updated = await dev.api.ok(
        UPDATE,
        {
            "i": {
                "id": delivery["id"],
                "recipients": delivery["recipients"],
                "expectedVersion": delivery["version"],
            }
        },
        token=owner["token"],
    )
    assert updated["updateDelivery"]["delivery"]["recipients"] == delivery["recipients"]
    stale = await dev.api.fail(
        UPDATE,
        {"i": {"id": delivery["id"], "name": "n", "expectedVersion": delivery["version"]}},
        token=owner["token"],
    )
    assert stale.code == "CONFLICT"
    final = await run_now(dev, owner["token"], delivery["id"])
    assert final["status"] == "SUCCEEDED"
    (request,) = await receiver.wait_for(1)
    assert url.endswith(request.path)  # the real URL was kept


# ---------------------------------------------------------------- exactly once


async def test_an_every_minute_delivery_runs_once_a_minute_with_two_schedulers(
    dev: Deployment,
    inprocess: InProcess,
    stack: Stack,
    owner: dict[str, str],
    board: dict[str, str],
    receiver: HttpReceiver,
) -> None:
    await inprocess.start_worker(dev.env)  # a second worker on the same queue
    async with schedulers(stack, dev.env) as (first, second):
        data = await dev.api.ok(
            CREATE,
            {
                "i": delivery_input(
                    board,
                    "WEBHOOK",
                    [receiver.url + "/minutely"],
                    scheduleCron="* * * * *",
                    enabled=True,
                )
            },
            token=owner["token"],
        )
        delivery_id = data["createDelivery"]["delivery"]["id"]
        # Ticks as of tomorrow, the first right after the create: the schedule moves past
        # any worker's own tick on the real clock.
        start = FAR_FUTURE.replace(second=0, microsecond=0)
        for minute in range(1, 4):
            at = start + timedelta(minutes=minute, seconds=5)
            # Two schedulers tick at the same moment: one of them queues the minute's run.
            ticks = await asyncio.gather(schedule_tick(first, at), schedule_tick(second, at))
            assert sum(t.count(delivery_id) for t in ticks) == 1, ticks
            # A minute later in earnest, this minute's run has ended.
            queued = await dev.api.ok(RUNS, {"id": delivery_id}, token=owner["token"])
            newest = queued["node"]["runs"]["nodes"][0]["id"]
            assert (await finished(dev.api, owner["token"], newest))["status"] == "SUCCEEDED"
    requests = await receiver.wait_for(3)
    history = await dev.api.ok(RUNS, {"id": delivery_id}, token=owner["token"])
    runs = history["node"]["runs"]["nodes"]
    assert len(runs) == 3
    assert all(r["triggeredBy"] == "SCHEDULE" for r in runs)
    due = sorted(r["dueAt"] for r in runs)
    assert len(set(due)) == 3
    assert len({r.headers["idempotency-key"] for r in requests}) == 3
    # A tick as of the same last moment queues nothing more.
    again = await tick_here(stack, start + timedelta(minutes=3, seconds=30), dev.env)
    assert delivery_id not in again


async def test_a_deleted_dashboard_takes_its_deliveries_along(
    api: Api, owner: dict[str, str], board: dict[str, str]
) -> None:
    dashboard = await create_dashboard(
        api, owner["token"], name="Short-lived", card_ids=[board["card"]]
    )
    made = await api.ok(
        CREATE,
        {"i": delivery_input({**board, "dashboard": dashboard["id"]}, "EMAIL", ["a@example.com"])},
        token=owner["token"],
    )
    delivery_id = made["createDelivery"]["delivery"]["id"]
    await api.ok(
        "mutation($id: ID!) { deleteDashboard(input: {id: $id}) { deletedId } }",
        {"id": dashboard["id"]},
        token=owner["token"],
    )
    gone = await api.fail(
        "query($id: ID!) { node(id: $id) { id } }", {"id": delivery_id}, token=owner["token"]
    )
    assert gone.code == "NOT_FOUND"
    listed = await api.ok("query { deliveries(first: 100) { nodes { id } } }", token=owner["token"])
    assert delivery_id not in [d["id"] for d in listed["deliveries"]["nodes"]]
