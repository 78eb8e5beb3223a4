"""The outbound senders against real servers on loopback: email to aiosmtpd, webhooks and
Slack messages to an HTTP receiver, and the send-time target check with real resolution."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import plotly.graph_objects as go
import pytest

from tests.support.receiver import HANG, HttpReceiver, self_signed
from tests.support.smtp import SmtpServer, free_port
from tilegraph.executor.plotly_asset import asset_path, bundle_path, point_plotly_at
from tilegraph.outbound import (
    Attachment,
    CardSummary,
    DeliveryMessage,
    MailSettings,
    SendFailed,
    TargetNotAllowed,
    build_snapshot,
    check_target,
    deliver,
    new_client,
    post_slack,
    post_webhook,
    send_email,
    summary_text,
    webhook_body,
)
from tilegraph.outbound.email import NO_SERVER
from tilegraph.settings import Settings

SRC = "http://bi.example:8000" + asset_path()
SECRET = "whsec_0123456789abcdef"


def _snapshot() -> bytes:
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))
    card_html = point_plotly_at(figure.to_html(include_plotlyjs="cdn"), SRC)
    plotly_js = bundle_path().read_text(encoding="utf-8")
    return build_snapshot("Sales", [("Trend", card_html)], plotly_js=plotly_js).encode()


def _message(attachments: list[Attachment] | None = None) -> DeliveryMessage:
    return DeliveryMessage(
        delivery_id="dlv_1",
        delivery_name="Morning numbers",
        dashboard_id="dsh_1",
        dashboard_name="Sales EMEA",
        dashboard_url="https://bi.example/dashboards/dsh_1",
        run_id="run_0001",
        triggered_by="SCHEDULE",
        due_at="2026-12-02T08:00:00Z",
        cards=[CardSummary("crd_1", "Revenue", {"total": 1200.0})],
        attachments=attachments or [],
    )


def _mail(server: SmtpServer) -> MailSettings:
    return MailSettings(
        host=server.host,
        port=server.port,
        username="",
        password="",
        sender="tilegraph@bi.example",
        starttls=False,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as client:
        yield client


# -- email ----------------------------------------------------------------------------------


async def test_an_email_carries_the_summary_the_snapshot_and_the_csv(
    smtp_server: SmtpServer,
) -> None:
    snapshot = _snapshot()
    csv = b"region,total\nEMEA,1200\n"
    message = _message(
        [
            Attachment("sales.html", "text/html", snapshot),
            Attachment("revenue.csv", "text/csv", csv),
        ]
    )
    to = ["ann@example.com", "bob@example.org"]
    await send_email(_mail(smtp_server), to, message, timeout_seconds=10)

    [mail] = await smtp_server.wait_for(1)
    assert smtp_server.received[0].rcpt_tos == to
    assert "Sales EMEA" in mail["Subject"] and "Morning numbers" in mail["Subject"]
    assert mail["From"] == "tilegraph@bi.example"
    assert mail["Message-ID"] == "<run_0001@bi.example>"
    body = mail.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == summary_text(message)
    parts = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(parts) == {"revenue.csv", "sales.html"}
    assert parts["sales.html"].get_content_type() == "text/html"
    assert parts["revenue.csv"].get_content_type() == "text/csv"
    assert parts["revenue.csv"].get_content().encode() == csv
    html = parts["sales.html"].get_content()
    assert isinstance(html, str)
    plotly_js = bundle_path().read_text(encoding="utf-8")
    assert html.count(plotly_js) == 1
    rest = html.replace(plotly_js, "")
    assert not re.search(r"""<(?:script|link)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//""", rest)
    assert "cdn.plot.ly" not in rest and SRC not in rest


async def test_a_transient_smtp_refusal_is_retryable_and_a_permanent_one_is_not(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.respond(["451 4.3.0 Try again later", "554 5.6.0 Message rejected"])
    with pytest.raises(SendFailed) as transient:
        await send_email(_mail(smtp_server), ["ann@example.com"], _message(), timeout_seconds=10)
    assert transient.value.retryable
    assert transient.value.answer.startswith("SMTP 451")
    with pytest.raises(SendFailed) as permanent:
        await send_email(_mail(smtp_server), ["ann@example.com"], _message(), timeout_seconds=10)
    assert not permanent.value.retryable
    assert permanent.value.answer.startswith("SMTP 554") and "rejected" in permanent.value.answer
    assert smtp_server.answers == 2 and smtp_server.messages == []
    await send_email(_mail(smtp_server), ["ann@example.com"], _message(), timeout_seconds=10)
    assert len(await smtp_server.wait_for(1)) == 1


async def test_refused_recipients(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("gone@example.com")
    with pytest.raises(SendFailed) as everyone:
        await send_email(_mail(smtp_server), ["gone@example.com"], _message(), timeout_seconds=10)
    assert not everyone.value.retryable
    assert "SMTP 550" in everyone.value.answer and "gone@example.com" in everyone.value.answer
    # Someone got it: a retry would send it to them twice, so the send stands.
    await send_email(
        _mail(smtp_server),
        ["gone@example.com", "ann@example.com"],
        _message(),
        timeout_seconds=10,
    )
    await smtp_server.wait_for(1)
    assert smtp_server.received[0].rcpt_tos == ["ann@example.com"]


async def test_no_smtp_server_and_an_unreachable_one() -> None:
    unset = MailSettings("", 25, "", "", "tilegraph@localhost", False)
    with pytest.raises(SendFailed) as missing:
        await send_email(unset, ["ann@example.com"], _message(), timeout_seconds=5)
    assert missing.value.answer == NO_SERVER and not missing.value.retryable
    down = MailSettings("127.0.0.1", free_port(), "", "", "tilegraph@localhost", False)
    with pytest.raises(SendFailed) as unreachable:
        await send_email(down, ["ann@example.com"], _message(), timeout_seconds=5)
    assert unreachable.value.retryable and "127.0.0.1" in unreachable.value.answer


# -- webhooks and Slack ---------------------------------------------------------------------


async def test_a_webhook_is_signed_and_carries_the_idempotency_key(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    body = webhook_body(_message())
    url = f"{http_receiver.url}/hooks/T0/secret-path"
    await post_webhook(
        client, url, body, secret=SECRET, idempotency_key="run_0001", timeout_seconds=10
    )
    [request] = await http_receiver.wait_for(1)
    assert request.method == "POST" and request.path == "/hooks/T0/secret-path"
    assert request.body == body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "run_0001"
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-tilegraph-signature"] == f"sha256={expected}"
    assert orjson.loads(request.body)["dashboard"]["name"] == "Sales EMEA"


async def test_a_webhook_without_a_secret_is_unsigned(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    await post_webhook(
        client, http_receiver.url, b"{}", secret=None, idempotency_key="k", timeout_seconds=10
    )
    [request] = await http_receiver.wait_for(1)
    assert "x-tilegraph-signature" not in request.headers


@pytest.mark.parametrize(
    ("answer", "retryable", "text"),
    [
        ((503, b"Service   Unavailable\n" + b"x" * 500), True, "HTTP 503: Service Unavailable x"),
        (500, True, "HTTP 500: scripted 500"),
        (429, True, "HTTP 429"),
        (408, True, "HTTP 408"),
        ((400, b"bad payload"), False, "HTTP 400: bad payload"),
        (404, False, "HTTP 404"),
        (302, False, "HTTP 302: redirects to http://127.0.0.1:"),
    ],
)
async def test_failed_answers(
    http_receiver: HttpReceiver,
    client: httpx.AsyncClient,
    answer: int | tuple[int, bytes],
    retryable: bool,
    text: str,
) -> None:
    http_receiver.respond([answer])
    with pytest.raises(SendFailed) as caught:
        await post_webhook(
            client, http_receiver.url, b"{}", secret=SECRET, idempotency_key="k", timeout_seconds=10
        )
    assert caught.value.retryable is retryable
    assert caught.value.answer.startswith(text), caught.value.answer
    assert len(caught.value.answer) <= len("HTTP 503: ") + 200
    # A redirect is not followed: the receiver saw one request only.
    assert len(http_receiver.requests) == 1


async def test_retries_keep_one_idempotency_key(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    http_receiver.respond([503, 503, 200])
    outcomes: list[bool] = []
    for _ in range(3):
        try:
            await post_webhook(
                client,
                http_receiver.url,
                b"{}",
                secret=SECRET,
                idempotency_key="run_7",
                timeout_seconds=10,
            )
            outcomes.append(True)
        except SendFailed as failed:
            assert failed.retryable
            outcomes.append(False)
    assert outcomes == [False, False, True]
    requests = await http_receiver.wait_for(3)
    assert {r.headers["idempotency-key"] for r in requests} == {"run_7"}


async def test_timeouts_and_refused_connections_are_retryable(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    http_receiver.respond([HANG])
    with pytest.raises(SendFailed) as slow:
        await post_webhook(
            client, http_receiver.url, b"{}", secret=None, idempotency_key="k", timeout_seconds=0.5
        )
    assert slow.value.retryable and "timed out" in slow.value.answer
    with pytest.raises(SendFailed) as refused:
        await post_webhook(
            client,
            f"http://127.0.0.1:{free_port()}/secret",
            b"{}",
            secret=None,
            idempotency_key="k",
            timeout_seconds=5,
        )
    assert refused.value.retryable
    assert "secret" not in refused.value.answer and "127.0.0.1" in refused.value.answer


async def test_a_slack_message_is_posted_unsigned(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    await post_slack(
        client, http_receiver.url + "/services/T/B/X", b'{"text":"hi"}', timeout_seconds=10
    )
    [request] = await http_receiver.wait_for(1)
    assert (
        request.body == b'{"text":"hi"}' and request.headers["content-type"] == "application/json"
    )
    assert "x-tilegraph-signature" not in request.headers
    http_receiver.respond([(404, b"no_service")])
    with pytest.raises(SendFailed) as caught:
        await post_slack(client, http_receiver.url, b"{}", timeout_seconds=10)
    assert caught.value.answer == "HTTP 404: no_service" and not caught.value.retryable


# -- target checks --------------------------------------------------------------------------

NONE: frozenset[str] = frozenset()


async def test_loopback_http_is_a_target_in_dev_only(http_receiver: HttpReceiver) -> None:
    url = f"{http_receiver.url}/hook"
    with pytest.raises(TargetNotAllowed, match="https"):
        await check_target(url, allowed_hosts=NONE, dev=False)
    await check_target(url, allowed_hosts=NONE, dev=True)
    # Allow-listing the host does not make http acceptable outside dev.
    with pytest.raises(TargetNotAllowed):
        await check_target(url, allowed_hosts=frozenset({"127.0.0.1"}), dev=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://[fe80::1]/",
        "https://0.0.0.0/",
    ],
)
async def test_link_local_is_never_a_target(url: str) -> None:
    allowed = frozenset({"169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "0.0.0.0"})
    for dev in (False, True):
        with pytest.raises(TargetNotAllowed) as caught:
            await check_target(url, allowed_hosts=allowed, dev=dev)
        assert "meta-data" not in str(caught.value)


async def test_a_name_resolving_to_loopback_is_refused_unless_allow_listed() -> None:
    url = "https://localhost:8443/hook/secret"
    with pytest.raises(TargetNotAllowed) as caught:
        await check_target(url, allowed_hosts=NONE, dev=False)
    assert "localhost" in str(caught.value) and "loopback" in str(caught.value)
    assert "secret" not in str(caught.value)
    await check_target(url, allowed_hosts=frozenset({"localhost"}), dev=False)
    await check_target(url, allowed_hosts=NONE, dev=True)  # dev: loopback is allowed


async def test_private_literals_and_numeric_forms_are_refused() -> None:
    for url in ("https://10.0.0.1/", "https://192.168.0.10/", "https://2130706433/"):
        with pytest.raises(TargetNotAllowed):
            await check_target(url, allowed_hosts=NONE, dev=False)
    await check_target("https://10.0.0.1/", allowed_hosts=frozenset({"10.0.0.1"}), dev=False)


async def test_a_name_that_does_not_resolve_is_a_retryable_failure() -> None:
    with pytest.raises(SendFailed) as caught:
        await check_target("https://nothing.invalid/x", allowed_hosts=NONE, dev=False)
    assert caught.value.retryable and "nothing.invalid" in caught.value.answer


async def test_bad_urls_are_not_targets() -> None:
    for url in (
        "ftp://example.com/",
        "https:///x",
        "https://u:p@example.com/",
        "https://e.com:0x/",
    ):
        with pytest.raises(TargetNotAllowed):
            await check_target(url, allowed_hosts=NONE, dev=True)


# -- pinned addresses -----------------------------------------------------------------------


async def test_the_post_goes_to_the_checked_address_not_a_new_dns_answer(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    # hooks.invalid resolves to nothing: the request can only arrive through the pin.
    url = f"http://hooks.invalid:{http_receiver.port}/hook"
    await post_webhook(
        client,
        url,
        b"{}",
        secret=None,
        idempotency_key="k",
        timeout_seconds=10,
        connect_to=[ipaddress.ip_address("127.0.0.1")],
    )
    [request] = await http_receiver.wait_for(1)
    assert request.path == "/hook"
    assert request.headers["host"] == f"hooks.invalid:{http_receiver.port}"


async def test_an_address_that_takes_no_connection_is_followed_by_the_next(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    url = f"http://localhost:{http_receiver.port}/hook"
    target = await check_target(url, allowed_hosts=NONE, dev=True)
    assert ipaddress.ip_address("127.0.0.1") in target.addresses
    # The receiver listens on 127.0.0.1 only: 127.0.0.2 refuses, then 127.0.0.1 takes it.
    addresses = [ipaddress.ip_address("127.0.0.2"), *target.addresses]
    await post_slack(client, url, b"{}", timeout_seconds=10, connect_to=addresses)
    assert len(await http_receiver.wait_for(1)) == 1
    with pytest.raises(SendFailed) as caught:
        await post_slack(
            client, url, b"{}", timeout_seconds=10, connect_to=[ipaddress.ip_address("127.0.0.2")]
        )
    assert caught.value.retryable and "connection refused" in caught.value.answer


async def test_a_pinned_https_post_still_checks_the_certificate_against_the_host(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path, "hooks.test")
    receiver = HttpReceiver(tls=(cert, key)).start()
    trusted = ssl.create_default_context(cafile=str(cert))
    loopback = [ipaddress.ip_address("127.0.0.1")]
    try:
        async with new_client(verify=trusted) as client:
            await post_webhook(
                client,
                f"https://hooks.test:{receiver.port}/h",
                b"{}",
                secret=SECRET,
                idempotency_key="k",
                timeout_seconds=10,
                connect_to=loopback,
            )
            [request] = await receiver.wait_for(1)
            assert request.headers["host"] == f"hooks.test:{receiver.port}"
            # The same address under another name: its certificate does not match.
            with pytest.raises(SendFailed) as caught:
                await post_webhook(
                    client,
                    f"https://other.test:{receiver.port}/h",
                    b"{}",
                    secret=SECRET,
                    idempotency_key="k",
                    timeout_seconds=10,
                    connect_to=loopback,
                )
            assert "other.test" in caught.value.answer
            assert len(receiver.requests) == 1
    finally:
        receiver.stop()


async def test_smtp_auth_and_a_required_starttls_the_server_lacks() -> None:
    server = SmtpServer(credentials=("bi", "pw-123")).start()
    try:
        mail = MailSettings(server.host, server.port, "bi", "pw-123", "bi@bi.example", False)
        await send_email(mail, ["ann@example.com"], _message(), timeout_seconds=10)
        await server.wait_for(1)
        assert server.logins == ["bi"]
        wrong = MailSettings(server.host, server.port, "bi", "nope", "bi@bi.example", False)
        with pytest.raises(SendFailed) as caught:
            await send_email(wrong, ["ann@example.com"], _message(), timeout_seconds=10)
        assert caught.value.answer.startswith("SMTP 535") and not caught.value.retryable
        anonymous = MailSettings(server.host, server.port, "", "", "bi@bi.example", False)
        with pytest.raises(SendFailed) as refused:
            await send_email(anonymous, ["ann@example.com"], _message(), timeout_seconds=10)
        assert refused.value.answer.startswith("SMTP 530") and not refused.value.retryable
        tls = MailSettings(server.host, server.port, "bi", "pw-123", "bi@bi.example", True)
        with pytest.raises(SendFailed) as no_tls:
            await send_email(tls, ["ann@example.com"], _message(), timeout_seconds=10)
        assert "STARTTLS" in no_tls.value.answer and not no_tls.value.retryable
        assert len(server.messages) == 1
    finally:
        server.stop()


# -- deliver: one attempt, checked -----------------------------------------------------------


def _settings(**changes: object) -> Settings:
    values: dict[str, object] = {"env": "dev", "delivery_send_timeout_seconds": 10.0}
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


async def test_deliver_sends_each_channel(
    smtp_server: SmtpServer, http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    message = _message()
    settings = _settings(smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    await deliver("EMAIL", ["ann@example.com"], message, settings=settings, client=client)
    [mail] = await smtp_server.wait_for(1)
    assert "Sales EMEA" in mail["Subject"]

    hook = f"http://localhost:{http_receiver.port}/hooks/abc"
    await deliver("WEBHOOK", [hook], message, settings=settings, client=client, secret=SECRET)
    await deliver("SLACK", [hook], message, settings=settings, client=client)
    webhook, slack = await http_receiver.wait_for(2)
    assert webhook.body == webhook_body(message)
    assert webhook.headers["idempotency-key"] == message.run_id
    expected = hmac.new(SECRET.encode(), webhook.body, hashlib.sha256).hexdigest()
    assert webhook.headers["x-tilegraph-signature"] == f"sha256={expected}"
    assert "blocks" in orjson.loads(slack.body) and "x-tilegraph-signature" not in slack.headers


async def test_deliver_checks_the_target_before_every_post(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    hook = f"{http_receiver.url}/hooks/abc"
    production = _settings(env="production")
    with pytest.raises(TargetNotAllowed):
        await deliver("WEBHOOK", [hook], _message(), settings=production, client=client)
    metadata = _settings(delivery_allowed_hosts=frozenset({"169.254.169.254"}))
    with pytest.raises(TargetNotAllowed):
        await deliver(
            "SLACK", ["http://169.254.169.254/x"], _message(), settings=metadata, client=client
        )
    assert http_receiver.requests == []
    with pytest.raises(SendFailed) as unset:
        await deliver("EMAIL", ["ann@example.com"], _message(), settings=_settings(), client=client)
    assert unset.value.answer == NO_SERVER
