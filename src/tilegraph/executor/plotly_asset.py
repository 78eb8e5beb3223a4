"""The plotly.js bundle the API serves, and card HTML pointed at it.

A default `fig.to_html()` embeds all of plotly.js (about 4.8 MB) and its "cdn" mode
loads it from another host, which an offline install cannot reach. Card HTML is rewritten in
the sandbox, before its size is checked, to load the bundle from our own server instead: one
`<script src>` per card, whatever the card chose."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

ASSET_PREFIX = "/assets/"
_HEADER = re.compile(rb"plotly\.js v(\d+\.\d+\.\d+)")
# An inline bundle starts with plotly.js's licence header.
_INLINE = re.compile(r"<script\b[^>]*>\s*/\*\*?\s*\*?\s*plotly\.js v\d[\w.-]*")
# A script loading plotly.js from another host (any URL with a host, whatever its path).
_REMOTE = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["'](?:https?:)?//[^"']*/plotly(?:[-.][\w.-]*)?\.js"""
    r"""(?:\?[^"']*)?["'][^>]*>\s*</script>""",
    re.IGNORECASE,
)
_CALLS_PLOTLY = re.compile(r"\bPlotly\.(?:newPlot|react|plot)\s*\(")
_CLOSE = "</script>"
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


@cache
def bundle_path() -> Path:
    """plotly.min.js as the installed plotly package ships it (the one `to_html` inlines)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@cache
def bundle_version() -> str:
    with bundle_path().open("rb") as handle:
        found = _HEADER.search(handle.read(512))
    return found.group(1).decode() if found else "unknown"


def asset_path() -> str:
    """Versioned, so it can be cached for good: a new plotly is a new URL."""
    return f"{ASSET_PREFIX}plotly-{bundle_version()}.min.js"


def point_plotly_at(html: str, src: str) -> str:
    """`html` with every inline or remote plotly.js replaced by one `<script src=src>`; HTML
    that draws with Plotly but loads no plotly.js gets that script in front."""
    tag = f'<script charset="utf-8" src="{src}"></script>'
    spans: list[tuple[int, int]] = []
    for match in _INLINE.finditer(html):
        end = html.find(_CLOSE, match.end())
        spans.append((match.start(), len(html) if end < 0 else end + len(_CLOSE)))
    spans.extend(m.span() for m in _REMOTE.finditer(html))
    if not spans:
        if src in html or not _CALLS_PLOTLY.search(html):
            return html
        head = _HEAD.search(html)  # a whole document keeps its doctype first
        at = head.end() if head else 0
        return html[:at] + tag + html[at:]
    spans.sort()
    parts: list[str] = []
    at = 0
    for start, end in spans:
        if start < at:
            continue  # inside a bundle already taken out
        parts.extend((html[at:start], tag if not parts else ""))
        at = end
    parts.append(html[at:])
    return "".join(parts)
