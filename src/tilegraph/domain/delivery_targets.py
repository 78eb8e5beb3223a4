"""Where a delivery may be sent: recipient checks at create/update, the address rules the
send-time check applies to every resolved address, masking and signing.

Link-local (cloud metadata at 169.254.169.254), unspecified and multicast addresses are never
a target, whatever the allow-list or environment says; private, loopback and other non-public
addresses only for hosts an operator listed (or loopback in dev, so a local receiver works)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Sequence
from email.utils import parseaddr
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tilegraph.domain.errors import BadUserInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CHANNELS = ("EMAIL", "WEBHOOK", "SLACK")
MAX_RECIPIENTS = 50
MAX_EMAIL_LENGTH = 254
MAX_URL_LENGTH = 2048
_FIELD = "recipients"

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A dot-atom local part and a DNS name with at least one dot; no quoted strings, comments,
# display names, IP literals or spaces (all legal in RFC 5322, all mistakes in a form).
_EMAIL = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")
# What inet_aton reads as IPv4 besides dotted quads ("2130706433", "0x7f.1", "127.1"), the
# forms getaddrinfo would connect to without asking DNS.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)

# IPv6 ranges that carry an IPv4 address a gateway would reach (NAT64, 6to4).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


def _bad(message: str) -> BadUserInput:
    return BadUserInput(message, field=_FIELD)


def check_recipients(
    channel: str,
    recipients: Sequence[str],
    *,
    allow_http: bool = False,
    allowed_hosts: frozenset[str] | None = None,
) -> list[str]:
    """The recipients normalised (emails stripped, domain lowercased, duplicates dropped), or
    BAD_USER_INPUT on `recipients` naming the first problem.

    `allow_http` (TILEGRAPH_ENV=dev) accepts http:// URLs. A URL whose host is a literal IP
    that is never allowed is refused here; with `allowed_hosts` given, a literal IP is judged
    by every rule of `address_refusal` (loopback allowed when `allow_http`). Hostnames are
    judged when they are resolved, by the caller's send-time check."""
    if channel not in CHANNELS:
        raise BadUserInput(f"Unknown channel {channel!r}", field="channel")
    if not recipients:
        raise _bad("At least one recipient is required")
    if len(recipients) > MAX_RECIPIENTS:
        raise _bad(f"At most {MAX_RECIPIENTS} recipients are allowed")
    if channel == "EMAIL":
        seen: dict[str, str] = {}
        for raw in recipients:
            address = normalise_email(raw)
            seen.setdefault(address.lower(), address)
        return list(seen.values())
    if len(recipients) != 1:
        raise _bad(f"A {channel} delivery has exactly one URL")
    return [
        normalise_url(
            recipients[0],
            allow_http=allow_http,
            allowed_hosts=allowed_hosts,
        )
    ]


def normalise_email(raw: str) -> str:
    """`raw` stripped with its domain lowercased, if it is a plain address."""
    text = raw.strip()
    shown = _shorten(text)
    if not text:
        raise _bad("A recipient is empty")
    if len(text) > MAX_EMAIL_LENGTH:
        raise _bad(f"{shown} is longer than {MAX_EMAIL_LENGTH} characters")
    match = _EMAIL.fullmatch(text)
    # parseaddr agreeing rules out anything the mail library would read differently.
    if match is None or parseaddr(text) != ("", text):
        raise _bad(f"{shown} is not an email address (name@example.com)")
    local, domain = match.group("local"), match.group("domain")
    if len(local) > 64:
        raise _bad(f"{shown}: the part before @ is longer than 64 characters")
    return f"{local}@{domain.lower()}"


def normalise_url(
    raw: str, *, allow_http: bool = False, allowed_hosts: frozenset[str] | None = None
) -> str:
    """A webhook URL with its scheme and host lowercased, if it may be a target."""
    text = raw.strip()
    if not text:
        raise _bad("The URL is empty")
    if len(text) > MAX_URL_LENGTH:
        raise _bad(f"The URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise _bad("The URL contains spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"The URL does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    schemes = ("https", "http") if allow_http else ("https",)
    if scheme not in schemes:
        raise _bad("The URL must start with https://")
    if "@" in parts.netloc:
        raise _bad("The URL must not contain a user name or password")
    host = parts.hostname
    if not host:
        raise _bad("The URL has no host")
    ip = literal_ip(host)
    if ip is not None:
        refusal = (
            always_refused(ip)
            if allowed_hosts is None
            else address_refusal(ip, host_allowed=host in allowed_hosts, dev=allow_http)
        )
        if refusal is not None:
            raise _bad(f"The URL's host {host} is {refusal}, which is not allowed")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit(SplitResult(scheme, netloc, parts.path, parts.query, parts.fragment))


def literal_ip(host: str) -> IPAddress | None:
    """The address `host` names without DNS: an IP literal or a numeric IPv4 form."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated) but not :: or ::1.
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def always_refused(ip: IPAddress) -> str | None:
    """Why `ip` is never a target (cloud metadata and the like), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (link-local) address"
        inner = _embedded_ipv4(ip)
        if inner is not None and (reason := always_refused(inner)) is not None:
            return reason
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    return None


def _not_public(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "a loopback address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def address_refusal(ip: IPAddress, *, host_allowed: bool, dev: bool) -> str | None:
    """Why a delivery may not connect to `ip` ("a private address"), or None.

    Link-local, unspecified and multicast addresses are refused always; other non-public ones
    unless the host is allow-listed, or in dev when the address is loopback."""
    reason = always_refused(ip)
    if reason is not None or host_allowed:
        return reason
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_refusal(inner, host_allowed=host_allowed, dev=dev)
    if dev and ip.is_loopback:
        return None
    return _not_public(ip)


def mask_url(url: str) -> str:
    """`https://hooks.example.com/…`: the scheme and host only, as a webhook URL is shown
    after creation (its path and query hold the secret)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "…"
    if not parts.scheme or not host:
        return "…"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme.lower()}://{netloc}/…"


def sign_body(secret: str, body: bytes) -> str:
    """The X-Tilegraph-Signature of `body`: "sha256=" and the hex HMAC-SHA256 with `secret`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _shorten(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
