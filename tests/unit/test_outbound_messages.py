"""What a delivery sends: the plain-text summary, the webhook JSON, the Slack blocks, the
offline HTML snapshot, the delivery settings, and how a POST is pinned to a checked address."""

from __future__ import annotations

import base64
import ipaddress
import re

import orjson
import plotly.graph_objects as go
import pytest

from tilegraph.executor.plotly_asset import asset_path, bundle_path, point_plotly_at
from tilegraph.outbound.http_post import pinned_request
from tilegraph.outbound.messages import (
    Attachment,
    CardSummary,
    DeliveryMessage,
    format_number,
    slack_body,
    summary_text,
    webhook_body,
)
from tilegraph.outbound.snapshot import build_snapshot, card_fragment
from tilegraph.settings import Settings, SettingsError

# What card HTML carries after the sandbox's rewrite: plotly.js from our server.
SRC = "http://bi.example:8000" + asset_path()


def _message(**changes: object) -> DeliveryMessage:
    values: dict[str, object] = {
        "delivery_id": "dlv_1",
        "delivery_name": "Morning numbers",
        "dashboard_id": "dsh_1",
        "dashboard_name": "Sales <EMEA> & co",
        "dashboard_url": "https://bi.example/dashboards/dsh_1",
        "run_id": "run_1",
        "triggered_by": "SCHEDULE",
        "due_at": "2026-12-02T08:00:00Z",
        "cards": [
            CardSummary("crd_1", "Revenue", {"total": 1234567.0, "growth": 0.04567}),
            CardSummary("crd_2", "Map", None),
        ],
        "attachments": [Attachment("revenue.csv", "text/csv", b"a,b\n1,2\n")],
        "condition": None,
    }
    values.update(changes)
    return DeliveryMessage(**values)  # type: ignore[arg-type]


def test_numbers_read_well() -> None:
    assert format_number(1234567.0) == "1,234,567"
    assert format_number(0.04567) == "0.04567"
    assert format_number(-3) == "-3"
    assert format_number(1.5e20) == "1.5e+20"
    assert format_number(float("nan")) == "nan"


def test_summary_text_names_the_dashboard_each_metric_and_the_link() -> None:
    text = summary_text(_message())
    assert text.startswith("Sales <EMEA> & co\n")
    assert "Revenue\n  total: 1,234,567\n  growth: 0.04567" in text
    assert "Map\n  (no metrics)" in text
    assert "Attached: revenue.csv" in text
    assert text.rstrip().endswith("Open the dashboard: https://bi.example/dashboards/dsh_1")


def test_summary_text_states_a_condition_that_held() -> None:
    condition = {"metric": "total", "operator": "GT", "threshold": 1000, "value": 1234567.0}
    assert "Alert: total is 1,234,567 (alert: > 1,000)" in summary_text(
        _message(condition=condition)
    )


def test_webhook_body_is_the_documented_json() -> None:
    condition = {"metric": "total", "operator": "GTE", "threshold": 1.0, "value": 2.0}
    body = orjson.loads(webhook_body(_message(condition=condition)))
    assert body["delivery"] == {"id": "dlv_1", "name": "Morning numbers"}
    assert body["dashboard"] == {
        "id": "dsh_1",
        "name": "Sales <EMEA> & co",
        "url": "https://bi.example/dashboards/dsh_1",
    }
    assert body["run"] == {
        "id": "run_1",
        "triggeredBy": "SCHEDULE",
        "dueAt": "2026-12-02T08:00:00Z",
    }
    assert body["cards"] == [
        {"id": "crd_1", "title": "Revenue", "metrics": {"total": 1234567.0, "growth": 0.04567}},
        {"id": "crd_2", "title": "Map", "metrics": None},
    ]
    assert body["condition"] == condition
    [attachment] = body["attachments"]
    assert attachment["filename"] == "revenue.csv"
    assert attachment["contentType"] == "text/csv"
    assert base64.b64decode(attachment["contentBase64"]) == b"a,b\n1,2\n"


def test_webhook_body_has_no_nan() -> None:
    body = webhook_body(_message(cards=[CardSummary("c", "t", {"x": float("nan")})]))
    assert orjson.loads(body)["cards"][0]["metrics"] == {"x": None}


def test_slack_body_is_blocks_with_a_fallback_and_names_files_it_does_not_send() -> None:
    body = orjson.loads(slack_body(_message()))
    blocks = body["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Sales <EMEA> & co"},
    }
    revenue = blocks[1]["text"]
    assert revenue["type"] == "mrkdwn"
    assert "*Revenue*" in revenue["text"] and "total: *1,234,567*" in revenue["text"]
    context = " ".join(e["text"] for e in blocks[-1]["elements"])
    assert "<https://bi.example/dashboards/dsh_1|Open the dashboard>" in context
    assert "revenue.csv" in context
    # Text is escaped for mrkdwn; the fallback names the dashboard and its metrics.
    assert "Sales &lt;EMEA&gt; &amp; co" in body["text"]
    assert "total: 1,234,567" in body["text"]
    assert "contentBase64" not in orjson.dumps(body).decode()


def test_slack_body_stays_within_slacks_block_limit() -> None:
    cards = [CardSummary(f"c{i}", f"Card {i}", {"n": i}) for i in range(120)]
    blocks = orjson.loads(slack_body(_message(cards=cards)))["blocks"]
    assert len(blocks) <= 50
    assert "and 75 more cards" in orjson.dumps(blocks).decode()


# -- snapshot -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plotly_js() -> str:
    return bundle_path().read_text(encoding="utf-8")


def _card(mode: object, full_html: bool = True) -> str:
    """A chart card's HTML as the sandbox hands it back (plotly.js pointed at our server)."""
    figure = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    return point_plotly_at(figure.to_html(include_plotlyjs=mode, full_html=full_html), SRC)


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|//cdn""", re.IGNORECASE)


def test_the_snapshot_inlines_plotly_once_and_loads_nothing(plotly_js: str) -> None:
    cards = [
        ("Whole <doc>", _card(True)),
        ("CDN card", _card("cdn")),
        ("Fragment", _card(True, full_html=False)),
        (
            "Extras",
            '<link rel="stylesheet" href="https://fonts.example/x.css">'
            '<img src="https://tracker.example/p.gif"><img src="data:image/png;base64,AA==">'
            "<style>@import url(https://x.example/a.css); .k{color:red}</style>"
            "<script src='//cdn.example/lib.js'></script><p class=k>Total: 3</p>",
        ),
    ]
    page = build_snapshot("Sales & <Co>", cards, plotly_js=plotly_js)
    assert page.count(plotly_js) == 1
    assert page.index(plotly_js) < page.index("</head>") < page.index("Plotly.newPlot")
    rest = page.replace(plotly_js, "")
    assert not REMOTE.search(rest), REMOTE.search(rest)
    assert SRC not in rest and "<script src" not in rest.lower()
    for host in ("fonts.example", "tracker.example", "x.example", "cdn.example", "cdn.plot.ly"):
        assert host not in rest
    assert rest.count("Plotly.newPlot") == 3
    assert "<title>Sales &amp; &lt;Co&gt;</title>" in page
    assert "<h2>Whole &lt;doc&gt;</h2>" in page
    assert "<p class=k>Total: 3</p>" in page and 'src="data:image/png;base64,AA=="' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # One document: the cards' own <html>/<body> are gone.
    assert page.lower().count("<body") == 1 and page.lower().count("<html") == 1


def test_a_whole_document_contributes_its_body_and_head_styles() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>x</title><style>.a{b:c}</style>"
        '<script src="https://cdn.example/x.js"></script></head>'
        "<body class=z><div>chart</div></body></html>"
    )
    assert card_fragment(html) == "<style>.a{b:c}</style><div>chart</div>"


def test_a_closing_script_tag_in_the_bundle_cannot_end_its_script() -> None:
    page = build_snapshot("t", [], plotly_js="var s = '</script><b>';")
    assert "var s = '<\\/script><b>';" in page


# -- settings -------------------------------------------------------------------------------


def test_delivery_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "TILEGRAPH_ENV": "dev",
            "TILEGRAPH_SMTP_HOST": "mail.example",
            "TILEGRAPH_SMTP_PORT": "587",
            "TILEGRAPH_SMTP_USERNAME": "bi",
            "TILEGRAPH_SMTP_PASSWORD": "pw",
            "TILEGRAPH_SMTP_FROM": "bi@example.com",
            "TILEGRAPH_SMTP_STARTTLS": "true",
            "TILEGRAPH_DELIVERY_ALLOWED_HOSTS": "Hooks.Internal.example, relay.local.",
            "TILEGRAPH_DELIVERY_RETRY_BASE_SECONDS": "0.5",
            "TILEGRAPH_DELIVERY_SEND_TIMEOUT_SECONDS": "3",
        }
    )
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mail.example",
        587,
        True,
    )
    assert settings.smtp_from == "bi@example.com"
    assert settings.delivery_allowed_hosts == frozenset({"hooks.internal.example", "relay.local"})
    assert settings.delivery_retry_base_seconds == 0.5
    assert settings.delivery_send_timeout_seconds == 3.0
    defaults = Settings.from_env({"TILEGRAPH_ENV": "dev"})
    assert defaults.smtp_host == "" and defaults.smtp_port == 25 and not defaults.smtp_starttls
    assert defaults.delivery_allowed_hosts == frozenset()
    for name, value in [
        ("TILEGRAPH_SMTP_PORT", "0"),
        ("TILEGRAPH_SMTP_PORT", "x"),
        ("TILEGRAPH_SMTP_FROM", "nobody"),
        ("TILEGRAPH_SMTP_STARTTLS", "maybe"),
        ("TILEGRAPH_DELIVERY_RETRY_BASE_SECONDS", "0"),
        ("TILEGRAPH_DELIVERY_SEND_TIMEOUT_SECONDS", "-1"),
    ]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({"TILEGRAPH_ENV": "dev", name: value})


# -- pinned requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address", "pinned", "host", "sni"),
    [
        (
            "https://hooks.example.com/p/secret?q=1",
            "93.184.216.34",
            "https://93.184.216.34/p/secret?q=1",
            "hooks.example.com",
            "hooks.example.com",
        ),
        (
            "https://hooks.example.com:8443/p",
            "2606:4700::1111",
            "https://[2606:4700::1111]:8443/p",
            "hooks.example.com:8443",
            "hooks.example.com",
        ),
        ("http://localhost:9000/h", "::1", "http://[::1]:9000/h", "localhost:9000", None),
    ],
)
def test_a_pinned_request_keeps_the_host_for_the_header_and_tls(
    url: str, address: str, pinned: str, host: str, sni: str | None
) -> None:
    target, headers, extensions = pinned_request(url, ipaddress.ip_address(address))
    assert target == pinned
    assert headers == {"Host": host}
    assert extensions.get("sni_hostname") == sni
