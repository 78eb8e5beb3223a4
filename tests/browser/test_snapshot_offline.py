"""The HTML_SNAPSHOT attachment opened as a file in the system's headless Chromium with every
network request refused: each chart draws, and the page asks for nothing."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go
import pytest
from playwright.async_api import Browser, Request, Route, async_playwright

from tilegraph.executor.plotly_asset import asset_path, bundle_path, point_plotly_at
from tilegraph.outbound import build_snapshot

SRC = "http://bi.example:8000" + asset_path()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/ensure-system-deps")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=binary)
        try:
            yield browser
        finally:
            await browser.close()


def _cards() -> list[tuple[str, str]]:
    """Chart cards as the sandbox returns them: every include_plotlyjs mode, whole documents
    and fragments, all pointed at our server's plotly.js."""
    bar = go.Figure(go.Bar(x=["a", "b", "c"], y=[3, 1, 2]))
    scatter = px.scatter(x=[1, 2, 3, 4], y=[4, 1, 3, 2], title="Scatter")
    line = go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2], mode="lines"))
    return [
        ("Bar (inline bundle)", point_plotly_at(bar.to_html(include_plotlyjs=True), SRC)),
        ("Scatter (cdn)", point_plotly_at(scatter.to_html(include_plotlyjs="cdn"), SRC)),
        (
            "Line (fragment)",
            point_plotly_at(line.to_html(include_plotlyjs=False, full_html=False), SRC),
        ),
        ("Text", "<p id=plain>Total: <b>42</b></p>"),
    ]


async def test_every_chart_of_a_snapshot_draws_with_the_network_refused(
    chromium: Browser, tmp_path: Path
) -> None:
    page_html = build_snapshot(
        "Sales", _cards(), plotly_js=bundle_path().read_text(encoding="utf-8")
    )
    path = tmp_path / "sales.html"
    path.write_text(page_html, encoding="utf-8")
    asked: list[str] = []

    async def refuse(route: Route, request: Request) -> None:
        if request.url == path.as_uri():
            await route.continue_()
        else:
            asked.append(request.url)
            await route.abort()

    context = await chromium.new_context(offline=True)
    try:
        page = await context.new_page()
        await page.route("**/*", refuse)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(path.as_uri())
        await page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
            timeout=20_000,
        )
        drawn = await page.eval_on_selector_all(
            "section.card", "sections => sections.map(s => !!s.querySelector('.main-svg'))"
        )
        assert drawn == [True, True, True, False]
        assert await page.text_content("#plain") == "Total: 42"
        assert await page.title() == "Sales"
        assert errors == []
    finally:
        await context.close()
    assert asked == []
