"""Every rule of where a delivery may go: recipients at create/update, the address rules at
send time, masking and signing."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from tilegraph.domain.delivery_targets import (
    MAX_RECIPIENTS,
    address_refusal,
    check_recipients,
    mask_url,
    sign_body,
)
from tilegraph.domain.errors import BadUserInput


def _refused(channel: str, recipients: list[str], **kwargs: object) -> BadUserInput:
    with pytest.raises(BadUserInput) as caught:
        check_recipients(channel, recipients, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "recipients"
    assert caught.value.as_extensions()["code"] == "BAD_USER_INPUT"
    return caught.value


# -- emails ---------------------------------------------------------------------------------


def test_emails_are_stripped_their_domains_lowercased_and_duplicates_dropped() -> None:
    out = check_recipients(
        "EMAIL", ["  Ann.Lee+bi@Example.COM ", "bob@mail.example.org", "ann.lee+bi@example.com"]
    )
    assert out == ["Ann.Lee+bi@example.com", "bob@mail.example.org"]


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "ann@localhost",  # no dot in the domain
        "ann@",
        "@example.com",
        "ann lee@example.com",
        "Ann <ann@example.com>",
        '"ann"@example.com',
        "ann@@example.com",
        "ann@exa mple.com",
        "ann..lee@example.com",
        ".ann@example.com",
        "ann@-example.com",
        "ann@example.com\nBcc: eve@example.com",
        "ann@[127.0.0.1]",
        "a" * 65 + "@example.com",
        "ann@" + "a" * 250 + ".com",
        "",
        "   ",
    ],
)
def test_malformed_emails_are_refused(address: str) -> None:
    _refused("EMAIL", ["ok@example.com", address])


def test_the_recipient_count_is_bounded() -> None:
    assert "At least one" in _refused("EMAIL", []).message
    many = [f"u{i}@example.com" for i in range(MAX_RECIPIENTS + 1)]
    assert str(MAX_RECIPIENTS) in _refused("EMAIL", many).message
    assert len(check_recipients("EMAIL", many[:MAX_RECIPIENTS])) == MAX_RECIPIENTS


def test_an_unknown_channel_is_refused_on_its_own_field() -> None:
    with pytest.raises(BadUserInput) as caught:
        check_recipients("PIGEON", ["ann@example.com"])
    assert caught.value.field == "channel"


# -- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["WEBHOOK", "SLACK"])
def test_a_url_channel_takes_exactly_one_https_url(channel: str) -> None:
    url = "https://Hooks.Example.com:8443/services/T0/B0/secret?x=1"
    assert check_recipients(channel, [f" {url} "]) == [
        "https://hooks.example.com:8443/services/T0/B0/secret?x=1"
    ]
    assert "exactly one" in _refused(channel, [url, url]).message
    assert "At least one" in _refused(channel, []).message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("hooks.example.com/x", "https"),
        ("https:///x", "no host"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://token@hooks.example.com/x", "user name"),
        ("https://hooks.example.com:99999/x", "does not parse"),
        ("https://[::1/x", "does not parse"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com/\x00", "control"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://2852039166/", "link-local"),  # 169.254.169.254 as one number
        ("https://0.0.0.0/", "unspecified"),
        ("https://0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://example.com/" + "a" * 2100, "longer"),
    ],
)
def test_bad_urls_are_refused(url: str, why: str) -> None:
    error = _refused("WEBHOOK", [url])
    assert why in error.message
    assert "meta-data" not in error.message and "secret" not in error.message


def test_http_is_accepted_only_when_allowed() -> None:
    assert check_recipients("WEBHOOK", ["http://127.0.0.1:9000/hook"], allow_http=True) == [
        "http://127.0.0.1:9000/hook"
    ]
    _refused("WEBHOOK", ["http://127.0.0.1:9000/hook"])


def test_link_local_literals_are_refused_even_in_dev() -> None:
    _refused("SLACK", ["http://169.254.169.254/"], allow_http=True)
    _refused(
        "SLACK",
        ["https://169.254.169.254/"],
        allow_http=True,
        allowed_hosts=frozenset({"169.254.169.254"}),
    )


def test_private_literals_are_left_to_the_send_time_check_unless_the_caller_knows_the_hosts() -> (
    None
):
    # Without the allow-list the caller cannot judge a private literal yet: accepted here.
    assert check_recipients("WEBHOOK", ["https://10.1.2.3/h"]) == ["https://10.1.2.3/h"]
    assert (
        "private" in _refused("WEBHOOK", ["https://10.1.2.3/h"], allowed_hosts=frozenset()).message
    )
    assert check_recipients(
        "WEBHOOK", ["https://10.1.2.3/h"], allowed_hosts=frozenset({"10.1.2.3"})
    ) == ["https://10.1.2.3/h"]
    assert check_recipients(
        "WEBHOOK", ["http://[::1]:8080/h"], allow_http=True, allowed_hosts=frozenset()
    ) == ["http://[::1]:8080/h"]


# -- addresses ------------------------------------------------------------------------------

ALWAYS = [
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "febf::1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "0.0.0.0",
    "::",
    "224.0.0.251",
    "239.255.255.250",
    "ff02::1",
]
UNLESS_ALLOWED = [
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fec0::1", "site-local"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "address"),  # documentation
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("text", ALWAYS)
@pytest.mark.parametrize(("host_allowed", "dev"), [(False, False), (True, False), (True, True)])
def test_link_local_unspecified_and_multicast_are_always_refused(
    text: str, host_allowed: bool, dev: bool
) -> None:
    reason = address_refusal(ipaddress.ip_address(text), host_allowed=host_allowed, dev=dev)
    assert reason is not None
    assert any(word in reason for word in ("link-local", "unspecified", "multicast"))


@pytest.mark.parametrize(("text", "kind"), UNLESS_ALLOWED)
def test_non_public_addresses_are_refused_unless_the_host_is_allowed(text: str, kind: str) -> None:
    ip = ipaddress.ip_address(text)
    reason = address_refusal(ip, host_allowed=False, dev=False)
    assert reason is not None and kind in reason
    assert address_refusal(ip, host_allowed=True, dev=False) is None


@pytest.mark.parametrize(("text", "kind"), UNLESS_ALLOWED)
def test_dev_allows_loopback_only(text: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(text), host_allowed=False, dev=True)
    if kind == "loopback":
        assert reason is None
    else:
        assert reason is not None and kind in reason


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text), host_allowed=False, dev=False) is None


# -- masking and signing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/T0/B0/XyZsecret", "https://hooks.slack.com/…"),
        ("https://Hooks.Example.com:8443/p?token=abc#f", "https://hooks.example.com:8443/…"),
        ("http://[::1]:9000/hook", "http://[::1]:9000/…"),
        ("https://user:pw@h.example.com/x", "https://h.example.com/…"),
        ("not a url", "…"),
        ("https://h.example.com:99999/x", "…"),
    ],
)
def test_mask_url_keeps_scheme_and_host_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_sign_body_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign_body("s3cret", body) == f"sha256={expected}"
    assert sign_body("other", body) != sign_body("s3cret", body)
    assert sign_body("s3cret", body + b" ") != sign_body("s3cret", body)
