"""The send-time check of a webhook or Slack URL: every address its host resolves to now must
be one a delivery may reach, so a name that resolved to a public address when the delivery
was created cannot be pointed at the metadata service or the internal network later."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tilegraph.domain.delivery_targets import address_refusal, literal_ip

from .errors import SendFailed


class TargetNotAllowed(Exception):
    """The URL may not be sent to; the message names the host and why, never the path (it
    holds the webhook's secret)."""


@dataclass(frozen=True)
class Target:
    """A URL that passed the check, with the addresses it was checked at. Pass `addresses`
    to post_webhook/post_slack as `connect_to`, so the POST goes to an address that was
    checked rather than to whatever a second DNS answer says."""

    url: str
    host: str
    addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]


async def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (a literal IP without asking DNS); SendFailed
    (retryable) when it does not resolve now."""
    literal = literal_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SendFailed(f"{host} does not resolve: {exc}", retryable=True) from None
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise SendFailed(f"{host} resolves to no address", retryable=True)
    return addresses


async def check_target(url: str, *, allowed_hosts: frozenset[str], dev: bool) -> Target:
    """Raise TargetNotAllowed unless `url` may be sent to right now; the checked addresses.

    https only, except http:// in dev when every address is loopback (a local receiver).
    Hosts in `allowed_hosts` (TILEGRAPH_DELIVERY_ALLOWED_HOSTS) skip the private/loopback
    rule but never the link-local one."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise TargetNotAllowed("The URL does not parse") from None
    if not host:
        raise TargetNotAllowed("The URL has no host")
    if "@" in parts.netloc:
        raise TargetNotAllowed(f"The URL for {host} carries a user name or password")
    if scheme not in ("https", "http"):
        raise TargetNotAllowed(f"The URL for {host} is not https")
    if scheme == "http" and not dev:
        raise TargetNotAllowed(f"The URL for {host} is http; only https is allowed")
    host_allowed = host.rstrip(".") in allowed_hosts
    addresses = await resolve(host, port)
    for ip in addresses:
        refusal = address_refusal(ip, host_allowed=host_allowed, dev=dev)
        if refusal is not None:
            raise TargetNotAllowed(f"{host} resolves to {refusal}, which is not allowed")
    if scheme == "http" and not all(ip.is_loopback for ip in addresses):
        raise TargetNotAllowed(
            f"The URL for {host} is http; in dev only loopback http:// targets are allowed"
        )
    return Target(url, host, tuple(addresses))
