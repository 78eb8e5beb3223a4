"""WEBHOOK and SLACK deliveries: one POST, with no redirect followed (a redirect could lead
past the target check) and the receiver's answer kept short for the run's error."""

from __future__ import annotations

import httpx

from tilegraph.domain.delivery_targets import mask_url, sign_body

from .errors import SendFailed

USER_AGENT = "Tilegraph-Delivery/1"
EXCERPT_CHARS = 200
# The most of a receiver's answer read (its excerpt is all the run keeps).
_READ_LIMIT = 4096


def new_client() -> httpx.AsyncClient:
    """A client for delivery POSTs: no proxy from the environment (it would reach hosts the
    target check never saw), no redirects, no cookies kept between receivers."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:EXCERPT_CHARS]


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
) -> None:
    where = mask_url(url)
    try:
        async with client.stream(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=timeout_seconds,
            follow_redirects=False,
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= _READ_LIMIT:
                    break
    except httpx.TimeoutException:
        raise SendFailed(f"{where} timed out", retryable=True) from None
    except httpx.ConnectError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc)
        raise SendFailed(f"{where}: {reason or 'connection failed'}", retryable=True) from None
    except httpx.TransportError as exc:
        raise SendFailed(f"{where}: {type(exc).__name__}: {exc}"[:300], retryable=True) from None
    if 300 <= status < 400:
        location = response.headers.get("location")
        target = f" to {mask_url(location)}" if location else ""
        raise SendFailed(f"HTTP {status}: redirects{target} are not followed", retryable=False)
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
) -> None:
    """POST the JSON `body`, signed with `secret` (X-Tilegraph-Signature: sha256=<hmac>) and
    with `idempotency_key` (the run id, the same on every retry). A 2xx answer is success;
    anything else is SendFailed "HTTP <code>: <first 200 characters>"."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": USER_AGENT,
    }
    if secret:
        headers["X-Tilegraph-Signature"] = sign_body(secret, body)
    await _post(client, url, body, headers, timeout_seconds)


async def post_slack(
    client: httpx.AsyncClient, url: str, body: bytes, *, timeout_seconds: float
) -> None:
    """POST a Slack incoming-webhook message (slack_body); errors as for post_webhook."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    await _post(client, url, body, headers, timeout_seconds)
