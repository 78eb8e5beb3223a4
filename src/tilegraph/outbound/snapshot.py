"""The HTML_SNAPSHOT attachment: a dashboard's cards as one file that draws offline.

Card HTML loads plotly.js from our server (executor/plotly_asset.py points it there); a file
opened from a mail client cannot reach it, so those tags go and the bundle is inlined once in
<head>. Every other script or stylesheet from elsewhere goes too, and a Content-Security-
Policy keeps anything left from loading or sending anything (a snapshot never phones home)."""

from __future__ import annotations

import html
import re

# Inline scripts and styles run; nothing is fetched from anywhere (data: images excepted).
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)

_FLAGS = re.IGNORECASE | re.DOTALL
_SCRIPT_SRC = re.compile(r"<script\b(?=[^>]*(?<![\w-])src\s*=)[^>]*>.*?</script\s*>", _FLAGS)
_LINK = re.compile(r"<link\b[^>]*>", _FLAGS)
_BASE = re.compile(r"<base\b[^>]*>", _FLAGS)
_META_REFRESH = re.compile(r"<meta\b[^>]*http-equiv\s*=\s*[\"']?refresh[^>]*>", _FLAGS)
# src/srcset/poster/data attributes loading from another host ("http://…", "//…").
_REMOTE_ATTR = re.compile(
    r"""((?<![\w-])(?:src|srcset|poster|data)\s*=\s*)(["']?)\s*(?:https?:)?//[^"'\s>]*\2""",
    _FLAGS,
)
_CSS_IMPORT = re.compile(r"@import\s+[^;]+;", _FLAGS)
_BODY = re.compile(r"<body\b[^>]*>(.*?)(?:</body\s*>|</html\s*>|\Z)", _FLAGS)
_HEAD = re.compile(r"<head\b[^>]*>(.*?)</head\s*>", _FLAGS)
_HEAD_KEEP = re.compile(r"<style\b[^>]*>.*?</style\s*>|<script\b[^>]*>.*?</script\s*>", _FLAGS)
_DOCUMENT = re.compile(r"<html\b|<body\b|<!doctype\b", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</(script)", re.IGNORECASE)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem;
       color: #1f2328; }
header { margin-bottom: 1.5rem; }
header p { color: #59636e; margin: 0.25rem 0; }
section.card { margin: 0 0 2rem; padding: 1rem; border: 1px solid #d1d9e0; border-radius: 6px; }
section.card > h2 { font-size: 1.1rem; margin: 0 0 0.75rem; }
"""


def _offline(fragment: str) -> str:
    """`fragment` with every reference to another resource taken out."""
    fragment = _SCRIPT_SRC.sub("", fragment)
    fragment = _LINK.sub("", fragment)
    fragment = _BASE.sub("", fragment)
    fragment = _META_REFRESH.sub("", fragment)
    fragment = _CSS_IMPORT.sub("", fragment)
    return _REMOTE_ATTR.sub(lambda m: f'{m.group(1)}""', fragment)


def card_fragment(card_html: str) -> str:
    """What a card contributes: its body (and its head's inline styles and scripts) when it
    is a whole document, else itself; offline either way."""
    if _DOCUMENT.search(card_html):
        head = _HEAD.search(card_html)
        kept = "".join(_HEAD_KEEP.findall(head.group(1))) if head else ""
        body = _BODY.search(card_html)
        if body is not None:
            inner = body.group(1)
        else:
            inner = _HEAD.sub("", card_html)
            inner = re.sub(r"</?(?:html|body)\b[^>]*>|<!doctype[^>]*>", "", inner, flags=_FLAGS)
        card_html = kept + inner
    return _offline(card_html)


def build_snapshot(
    title: str,
    cards: list[tuple[str, str]],
    *,
    plotly_js: str,
    subtitle: str | None = None,
) -> str:
    """One self-contained HTML document: `title`, then each (card title, card HTML) in a
    section; `plotly_js` (the bundle, read by the caller from plotly_asset.bundle_path())
    inlined once in <head>, before any card's script runs."""
    bundle = _SCRIPT_CLOSE.sub(r"<\\/\1", plotly_js)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f'<script charset="utf-8">{bundle}</script>',
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p>{html.escape(subtitle)}</p>")
    parts.append("</header>")
    for card_title, card_html in cards:
        parts += [
            '<section class="card">',
            f"<h2>{html.escape(card_title)}</h2>",
            f'<div class="card-body">{card_fragment(card_html)}</div>',
            "</section>",
        ]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
