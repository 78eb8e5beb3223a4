"""WEBHOOK and SLACK deliveries: one POST, with no redirect followed (a redirect could lead
past the target check) and the receiver's answer kept short for the run's error."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tilegraph.domain.delivery_targets import mask_url, sign_body

from .errors import SendFailed

USER_AGENT = "Tilegraph-Delivery/1"
EXCERPT_CHARS = 200
# The most of a receiver's answer read (its excerpt is all the run keeps).
_READ_LIMIT = 4096


def new_client(*, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """A client for delivery POSTs: no proxy from the environment (it would reach hosts the
    target check never saw), no redirects, no connection kept between sends (each send is
    checked again). `verify`: the certificates trusted (the system's by default)."""
    return httpx.AsyncClient(
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def pinned_request(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`url` with its host replaced by `address`, the Host header naming the host, and (for
    https) the host as the TLS server name, so the certificate is still checked against it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    port = f":{parts.port}" if parts.port is not None else ""
    shown_host = f"[{host}]" if ":" in host else host
    pinned = urlunsplit(parts._replace(netloc=f"{literal}{port}"))
    extensions: dict[str, Any] = {}
    if parts.scheme.lower() == "https":
        extensions["sni_hostname"] = host
    return pinned, {"Host": f"{shown_host}{port}"}, extensions


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def _connect_reason(exc: BaseException) -> str:
    """Why no connection was made ("connection refused", the OS's or TLS's words), from
    under httpx's generic message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {getattr(seen, 'verify_message', None) or seen.reason or seen}"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or "connection failed"


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:EXCERPT_CHARS]


class _ConnectFailed(SendFailed):
    """No connection was made, so nothing was sent: another address may be tried."""


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    connect_to: Sequence[IPAddress],
) -> None:
    """POST to `url`, at each address of `connect_to` in turn while connecting fails (at the
    host's own DNS answer when it is empty)."""
    for index, address in enumerate(connect_to):
        target, host_header, extensions = pinned_request(url, address)
        try:
            await _post_once(
                client, url, target, body, headers | host_header, timeout_seconds, extensions
            )
            return
        except _ConnectFailed:
            if index == len(connect_to) - 1:
                raise  # nothing was sent to an address that took no connection: try the next
    if not connect_to:
        await _post_once(client, url, url, body, headers, timeout_seconds, {})


async def _post_once(
    client: httpx.AsyncClient,
    url: str,
    target: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    extensions: dict[str, Any],
) -> None:
    where = mask_url(url)
    try:
        async with client.stream(
            "POST",
            target,
            content=body,
            headers=headers,
            timeout=timeout_seconds,
            follow_redirects=False,
            extensions=extensions,
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= _READ_LIMIT:
                    break
    except httpx.ConnectTimeout:
        raise _ConnectFailed(f"{where}: connecting timed out", retryable=True) from None
    except httpx.TimeoutException:
        raise SendFailed(f"{where} timed out", retryable=True) from None
    except httpx.ConnectError as exc:
        raise _ConnectFailed(f"{where}: {_connect_reason(exc)}", retryable=True) from None
    except httpx.TransportError as exc:
        raise SendFailed(f"{where}: {type(exc).__name__}: {exc}"[:300], retryable=True) from None
    if 300 <= status < 400:
        location = response.headers.get("location")
        to = f" to {mask_url(location)}" if location else ""
        raise SendFailed(f"HTTP {status}: redirects{to} are not followed", retryable=False)
    answer = f"HTTP {status}"
    excerpt = _excerpt(data)
    raise SendFailed(f"{answer}: {excerpt}" if excerpt else answer, retryable=_retryable(status))


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str | None,
    idempotency_key: str,
    timeout_seconds: float,
    connect_to: Sequence[IPAddress] = (),
) -> None:
    """POST the JSON `body`, signed with `secret` (X-Tilegraph-Signature: sha256=<hmac>) and
    with `idempotency_key` (the run id, the same on every retry). A 2xx answer is success;
    anything else is SendFailed "HTTP <code>: <first 200 characters>".

    `connect_to`: the addresses check_target checked (Target.addresses); the POST goes to
    them, not to a fresh DNS answer (DNS rebinding)."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": USER_AGENT,
    }
    if secret:
        headers["X-Tilegraph-Signature"] = sign_body(secret, body)
    await _post(client, url, body, headers, timeout_seconds, connect_to)


async def post_slack(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    timeout_seconds: float,
    connect_to: Sequence[IPAddress] = (),
) -> None:
    """POST a Slack incoming-webhook message (slack_body); errors and `connect_to` as for
    post_webhook."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    await _post(client, url, body, headers, timeout_seconds, connect_to)
