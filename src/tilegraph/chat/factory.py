"""Choosing the chat provider from configuration.

`ChatSettings` is this package's own small view of the configuration; the application maps
its TILEGRAPH_* settings onto it, so `chat/` never reads the environment itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

import httpx

from tilegraph.chat.providers.base import ChatProvider
from tilegraph.chat.providers.builtin import BuiltinProvider
from tilegraph.chat.providers.openai import AuthStyle, OpenAIProvider
from tilegraph.chat.providers.vertex import VertexProvider, sdk_available

log = logging.getLogger(__name__)

PROVIDERS = ("builtin", "openai", "vertex")


class ChatConfigError(ValueError):
    """The chat configuration cannot work; the message says which setting to fix."""


@dataclass(frozen=True)
class ChatSettings:
    """Which provider answers, and how to reach it. The API key is kept out of repr()."""

    provider: str = "builtin"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_auth_style: str = "auto"  # "auto" | "bearer" | "api-key" (Azure)
    openai_timeout_seconds: float = 120.0
    openai_connect_timeout_seconds: float = 10.0
    openai_read_timeout_seconds: float = 60.0
    vertex_project: str | None = None
    vertex_location: str = "us-central1"
    vertex_model: str = "gemini-2.5-flash"
    vertex_timeout_seconds: float = 120.0


def check_settings(settings: ChatSettings) -> str:
    """The provider's name, when the settings could work; ChatConfigError otherwise. Builds
    nothing, so start-up can refuse bad settings before any client exists."""
    name = (settings.provider or "builtin").strip().lower()
    if name == "openai":
        _check_openai(settings)
    elif name not in ("builtin", "vertex"):
        raise ChatConfigError(
            f"unknown chat provider {settings.provider!r}: choose one of {', '.join(PROVIDERS)}"
        )
    return name


def make_provider(settings: ChatSettings) -> ChatProvider:
    """The configured provider; `builtin` when none is named. Raises ChatConfigError early
    (at start-up) for settings that could never work, rather than failing every answer."""
    name = check_settings(settings)
    if name == "builtin":
        return BuiltinProvider()
    if name == "openai":
        return OpenAIProvider(
            base_url=settings.openai_base_url,
            model=cast(str, settings.openai_model),  # check_settings refused None
            api_key=settings.openai_api_key or None,
            auth_style=cast(AuthStyle, settings.openai_auth_style),
            total_timeout=settings.openai_timeout_seconds,
            connect_timeout=settings.openai_connect_timeout_seconds,
            read_timeout=settings.openai_read_timeout_seconds,
        )
    if not sdk_available():
        log.warning(
            "chat provider 'vertex' is configured but google-genai is not installed;"
            " answers will fail until `pip install 'tilegraph[vertex]'`"
        )
    return VertexProvider(
        project=settings.vertex_project,
        location=settings.vertex_location,
        model=settings.vertex_model,
        total_timeout=settings.vertex_timeout_seconds,
    )


def _check_openai(settings: ChatSettings) -> None:
    if not settings.openai_model:
        raise ChatConfigError("the openai chat provider needs a model name (openai_model)")
    try:
        url = httpx.URL(settings.openai_base_url)
    except httpx.InvalidURL:
        raise ChatConfigError("the openai chat provider's base URL is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ChatConfigError(
            "the openai chat provider's base URL must be an http(s) URL such as"
            " https://api.openai.com/v1 or http://localhost:11434/v1"
        )
    if settings.openai_auth_style not in ("auto", "bearer", "api-key"):
        raise ChatConfigError("openai_auth_style must be auto, bearer or api-key")
    for value in (
        settings.openai_timeout_seconds,
        settings.openai_connect_timeout_seconds,
        settings.openai_read_timeout_seconds,
    ):
        if value <= 0:
            raise ChatConfigError("chat provider timeouts must be positive")
