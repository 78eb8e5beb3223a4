"""Number and language helpers shared by the prompt and the built-in provider, so that the
figures a model reads and the figures the built-in assistant says are written the same way."""

from __future__ import annotations

import json
import math
import re

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def format_number(value: int | float) -> str:
    """Thousands separators; floats to at most four decimals (four significant digits below 1)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1:
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
        return text
    return f"{value:.4g}"


def is_japanese(text: str) -> bool:
    """Whether the text contains kana or kanji (the answer is then given in Japanese)."""
    return _JAPANESE.search(text) is not None


def quote(text: str, limit: int = 120) -> str:
    """A value on one line, quoted and shortened, so user data cannot restructure the prompt."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return json.dumps(flat, ensure_ascii=False)
