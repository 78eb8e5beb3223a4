"""The dashboard viewer at `/`, driven in the system's headless Chromium (Debian `chromium`,
installed by scripts/ensure-system-deps) through Playwright: sign in, open the demo
dashboard, see every card draw its chart, filter it and pick a saved view, ask the chatbot;
nothing the page does may reach another origin."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Request, Route, async_playwright, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.cards import create_card
from tests.support.client import Api
from tests.support.dashboards import create_dashboard
from tests.support.inprocess import InProcess, InProcessApi
from tests.support.stack import Stack
from tilegraph.executor.plotly_asset import asset_path

DEMO_EMAIL = "demo@tilegraph.local"
CARDS = 3  # the demo dashboard's
FAILING_CARD = """def render(dataset, filters, params):
    rows = len(dataset)
    raise ValueError(f"no chart for {rows} rows")
"""
# Wait long enough for a card run on a loaded two-core machine, not for ever.
RUN_TIMEOUT_MS = 30_000


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


@pytest.fixture
async def demo_api(stack: Stack, inprocess: InProcess) -> AsyncIterator[tuple[InProcessApi, str]]:
    """An API and a worker on a store and queue of their own (so the demo workspace is
    created here, whatever other tests did), the worker pointing card HTML at this API's
    plotly.js; and the demo user's password."""
    tag = secrets.token_hex(3)
    own = {
        "TILEGRAPH_TABLE_PREFIX": f"v{tag}_",
        "TILEGRAPH_BUCKET": f"tilegraph-viewer-{tag}",
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:viewer:{tag}",
    }
    api = await inprocess.start_api(own)
    await inprocess.start_worker({**own, "TILEGRAPH_PUBLIC_URL": api.url})
    await api.services.users.ensure_admin(ADMIN_EMAIL, "Administrator", ADMIN_PASSWORD)
    demo = await asyncio.to_thread(
        stack.run_cli,
        "demo",
        "--server",
        api.url,
        "--admin-email",
        ADMIN_EMAIL,
        env={**own, "TILEGRAPH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        timeout=120,
    )
    assert demo.returncode == 0 and "Demo workspace created" in demo.stdout, demo.stderr
    signed = re.search(r"Sign in as \S+ / (\S+)", demo.stdout)
    assert signed, demo.stdout
    yield api, signed.group(1)


async def _watch_origin(page: Page, origin: str) -> list[str]:
    """Every request the page (or a frame in it) makes to anywhere but `origin`: refused,
    and listed."""
    elsewhere: list[str] = []

    def foreign(url: str) -> bool:
        return not (url == origin or url.startswith(origin + "/") or url.startswith("data:"))

    async def screen(route: Route, request: Request) -> None:
        if foreign(request.url):
            elsewhere.append(request.url)
            await route.abort()
        else:
            await route.continue_()

    await page.context.route("**/*", screen)
    page.on("request", lambda r: foreign(r.url) and elsewhere.append(r.url))
    socket_origin = "ws" + origin.removeprefix("http")
    page.on(
        "websocket",
        lambda ws: ws.url.startswith(socket_origin + "/") or elsewhere.append(ws.url),
    )
    return elsewhere


async def _card_runs(page: Page) -> list[str]:
    """The id of the run each card shows, in layout order."""
    runs: list[str] = await page.locator("article.card").evaluate_all(
        "cards => cards.map(card => card.dataset.execution || '')"
    )
    return runs


async def _all_drawn(page: Page, before: list[str]) -> None:
    """Waits until every card's frame holds the chart of a run newer than `before`."""
    await page.wait_for_function(
        """before => {
          const cards = [...document.querySelectorAll('article.card')];
          return cards.length > 0 && cards.every(card =>
            card.dataset.status === 'succeeded' && card.dataset.loaded === card.dataset.execution
            && !before.includes(card.dataset.loaded));
        }""",
        arg=before,
        timeout=RUN_TIMEOUT_MS,
    )
    for index in range(CARDS):
        frame = page.frame_locator("[data-testid=card-frame]").nth(index)
        await expect(frame.locator("svg.main-svg").first).to_be_attached(timeout=RUN_TIMEOUT_MS)


async def _regions_on_the_bar_chart(page: Page) -> list[str]:
    bars = page.frame_locator("[data-testid=card-frame]").nth(1)  # "Sales by region"
    return sorted(await bars.locator("g.xtick text").all_text_contents())


async def _frames_cannot_reach_the_page(page: Page) -> None:
    """A card's code runs in an opaque origin: not the page's DOM, storage or token."""
    frames = page.main_frame.child_frames
    assert len(frames) == CARDS
    for frame in frames:
        reach = await frame.evaluate(
            """() => [() => window.parent.document.title, () => sessionStorage.length,
                      () => document.cookie].map(attempt => {
                try { attempt(); return 'reached'; } catch (error) { return 'blocked'; }
              })"""
        )
        assert reach == ["blocked"] * 3, (frame.url, reach)


async def _failing_dashboard(api: InProcessApi, password: str) -> None:
    """The demo user's second dashboard, whose one card raises on its third line."""
    client = Api(api.url, api.ws_url, api.transport)
    try:
        token = await client.login(DEMO_EMAIL, password)
        data = await client.ok("{ datasets { nodes { id } } }", token=token)
        dataset_id = data["datasets"]["nodes"][0]["id"]
        card_id = await create_card(client, token, FAILING_CARD, [dataset_id], name="Broken")
        await create_dashboard(client, token, name="Broken numbers", card_ids=[card_id])
    finally:
        await client.close()


async def test_the_viewer_shows_the_demo_dashboard_live(
    demo_api: tuple[InProcessApi, str], chromium: Browser, tmp_path: Path
) -> None:
    api, password = demo_api
    context = await chromium.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    elsewhere = await _watch_origin(page, api.url)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))

    started = time.monotonic()
    await page.goto(api.url + "/")
    await page.get_by_test_id("login-email").fill(DEMO_EMAIL)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    # From the list's heading, the keyboard reaches the dashboard's link, visibly.
    link = page.get_by_test_id("dashboard-link").filter(has_text="Sales overview")
    await expect(link).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(link).to_be_focused()
    assert await link.evaluate("a => getComputedStyle(a).outlineStyle") == "solid"
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("card-frame")).to_have_count(CARDS)
    await _all_drawn(page, [])
    print(f"\nsign-in to every demo chart drawn: {time.monotonic() - started:.1f} s")
    sizes = await page.get_by_test_id("card-frame").evaluate_all(
        "frames => frames.map(frame => frame.srcdoc.length)"
    )
    print(f"demo card HTML, characters: {sizes}")
    assert all(size < 300_000 for size in sizes), sizes
    # Each loads plotly.js with one absolute URL to this server (the frames have no origin).
    sources = await page.get_by_test_id("card-frame").evaluate_all(
        """frames => frames.map(frame => [...new DOMParser()
            .parseFromString(frame.srcdoc, 'text/html').querySelectorAll('script[src]')]
            .map(script => script.getAttribute('src')))"""
    )
    assert sources == [[api.url + asset_path()]] * CARDS, sources
    assert "#/dashboards/" in page.url and password not in page.url
    await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    await _frames_cannot_reach_the_page(page)
    all_regions = await _regions_on_the_bar_chart(page)
    assert len(all_regions) > 1, all_regions

    # A filter re-runs every card, and the charts show only what it lets through.
    before = await _card_runs(page)
    await page.get_by_test_id("filter-region").select_option(["North"])
    await _all_drawn(page, before)
    assert await _regions_on_the_bar_chart(page) == ["North"]

    # A saved view sets the filters to its own and runs the cards again.
    before = await _card_runs(page)
    await page.get_by_label("Saved view").select_option(
        label="North and South, first half (shared)"
    )
    await _all_drawn(page, before)
    assert await _regions_on_the_bar_chart(page) == ["North", "South"]
    selected = await page.get_by_test_id("filter-region").evaluate(
        "select => [...select.selectedOptions].map(o => o.value).sort()"
    )
    assert selected == ["North", "South"]
    await page.screenshot(path=tmp_path / "filtered.png")

    # The chatbot's answer arrives a token at a time.
    answer = page.get_by_test_id("chat-answer")
    await page.evaluate(
        """() => {
          window.answerLengths = [];
          new MutationObserver(() => {
            const answer = document.querySelector('[data-testid=chat-answer]');
            if (answer) window.answerLengths.push(answer.textContent.length);
          }).observe(document.querySelector('.chat-log'),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )
    await page.get_by_test_id("chat-input").fill("Which region has the highest amount?")
    await page.get_by_test_id("chat-input").press("Enter")
    await expect(page.locator(".chat-log")).to_have_attribute(
        "aria-busy", "false", timeout=RUN_TIMEOUT_MS
    )
    lengths: list[int] = await page.evaluate("window.answerLengths")
    text = await answer.text_content() or ""
    assert text.strip() and len(set(lengths)) > 2, (text, lengths)
    assert lengths == sorted(lengths)
    await page.screenshot(path=tmp_path / "chat.png", full_page=True)

    # A card that fails says why, and on which line of its code.
    await _failing_dashboard(api, password)
    await page.get_by_role("link", name="All dashboards").click()
    await page.get_by_test_id("dashboard-link").filter(has_text="Broken numbers").click()
    failed = page.locator("article.card[data-status=failed]")
    await expect(failed).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(failed.get_by_role("alert")).to_contain_text("Line 3")
    await expect(failed.get_by_role("alert")).to_contain_text("no chart for")
    await page.screenshot(path=tmp_path / "failed.png")
    print(f"screenshots: {tmp_path}")

    # Signing out forgets the token: a reload asks to sign in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_test_id("login-email")).to_be_visible()
    await page.reload()
    await expect(page.get_by_test_id("login-email")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    assert elsewhere == []
    assert problems == []
    await context.close()


async def test_graphiql_loads_from_our_server_and_keeps_queries_out_of_the_url(
    inprocess: InProcess, chromium: Browser
) -> None:
    """GraphiQL draws with every asset from this server; a login mutation typed into it (a
    password) never reaches the page's URL, so it cannot end up in the browser's history."""
    api = await inprocess.start_api({"TILEGRAPH_GRAPHIQL": "1"})
    page = await chromium.new_page()
    elsewhere = await _watch_origin(page, api.url)
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    await page.goto(api.url + "/graphql")
    editor = page.locator(".graphiql-query-editor .CodeMirror").first
    await expect(editor).to_be_visible(timeout=15_000)
    await expect(page.locator("#graphiql")).not_to_contain_text("Loading…")
    entries = await page.evaluate("() => window.history.length")
    await editor.click()
    await page.keyboard.press("Control+A")
    secret = "Hunter2-" + secrets.token_hex(4)
    await page.keyboard.type(f'mutation {{ login(input: {{email: "a@b.c", password: "{secret}"}}) ')
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".graphiql-response")).to_contain_text("errors", timeout=15_000)
    assert secret not in page.url and "?" not in page.url, page.url
    assert await page.evaluate("() => window.history.length") == entries
    assert await page.evaluate("() => Object.keys(window.localStorage).length") == 0
    assert elsewhere == [] and failed == [], (elsewhere, failed)
