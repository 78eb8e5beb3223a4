"""HTTP-level behaviour: limits, error masking, request ids, health and metrics, and the
production defaults (no GraphiQL, no public metrics, security headers)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Users
from tests.support.cards import create_card, render
from tests.support.client import Api, UnderAttack, fresh_ip, health_under_attack
from tests.support.dashboards import create_dashboard
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import Stack

# /healthz while four threads attack (2 cores): a refusal made on the event loop (150 ms
# each for the repeated fields) would hold most probes behind it. p95, not p99: on this
# machine one probe in a hundred waits on the scheduler alone, whatever the loop does.
HEALTH_P95_SECONDS = 0.05


def _report(name: str, seen: UnderAttack) -> None:
    """Figures for the record (shown with `pytest -s`)."""
    refusals = sorted(seen.attack_seconds)
    print(
        f"\n{name}: /healthz p50 {seen.health_percentile(0.5) * 1000:.1f} ms, "
        f"p95 {seen.health_percentile(0.95) * 1000:.1f} ms, "
        f"p99 {seen.health_percentile(0.99) * 1000:.1f} ms, "
        f"max {max(seen.health_seconds) * 1000:.1f} ms over {len(seen.health_seconds)} probes; "
        f"{len(refusals)} attack requests, median {refusals[len(refusals) // 2] * 1000:.1f} ms, "
        f"{seen.attacks_during_probe} of them during the probe"
    )


async def test_query_nested_past_the_depth_limit_is_too_complex(api: Api, admin_token: str) -> None:
    seven_deep = "{ groups { edges { node { members { edges { node { id } } } } } } }"
    assert "errors" not in (await api.post(seven_deep, token=admin_token)).body
    # Limits are checked before validation: a deep document is refused whatever it names.
    chain = "id"
    for level in range(13):
        chain = f"f{level} {{ {chain} }}"
    response = await api.post("{ " + chain + " }", token=admin_token)
    assert response.code == "QUERY_TOO_COMPLEX", response.body
    assert "nested 14 levels" in response.error["message"]


async def test_fragment_bomb_is_rejected(api: Api, admin_token: str) -> None:
    fragments = ["fragment F0 on User { id }"]
    for n in range(1, 40):
        fragments.append(f"fragment F{n} on User {{ ...F{n - 1} ...F{n - 1} }}")
    query = "{ me { ...F39 } } " + " ".join(fragments)
    response = await api.post(query, token=admin_token)
    assert response.code == "QUERY_TOO_COMPLEX"
    assert "cost" in response.error["message"]


async def test_one_hundred_aliases_are_too_complex(api: Api, admin_token: str) -> None:
    fields = " ".join(f"a{i}: me {{ id }}" for i in range(100))
    response = await api.post("{ " + fields + " }", token=admin_token)
    assert response.code == "QUERY_TOO_COMPLEX"
    assert "aliases" in response.error["message"]


async def test_token_and_cost_limits(api: Api, admin_token: str) -> None:
    huge = "{ " + " ".join("me { id email name role createdAt }" for _ in range(2000)) + " }"
    tokens = await api.post(huge, token=admin_token)
    assert tokens.code == "QUERY_TOO_COMPLEX"
    costly = "{ groups(first: 100) { edges { node { members(first: 100) { edges { node { id email } } } } } } }"
    cost = await api.post(costly, token=admin_token)
    assert cost.code == "QUERY_TOO_COMPLEX" and "cost" in cost.error["message"]


async def test_batching_get_mutations_and_bad_requests(api: Api, admin_token: str) -> None:
    batch = await api.http.post(
        "/graphql",
        json=[{"query": "{ me { id } }"}] * 2,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert batch.status_code == 400
    assert batch.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    get_mutation = await api.http.get(
        "/graphql",
        params={"query": "mutation { logout { ok } }"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert get_mutation.status_code in (400, 405)
    assert get_mutation.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await api.ok("{ me { id } }", token=admin_token))["me"]["id"]  # token not revoked
    get_query = await api.http.get(
        "/graphql",
        params={"query": "{ me { id } }"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert get_query.status_code == 200 and get_query.json()["data"]["me"]["id"]
    syntax = await api.post("{ me { id ", token=admin_token)
    assert syntax.code == "BAD_USER_INPUT"
    unknown_field = await api.post("{ mee { id } }", token=admin_token)
    assert unknown_field.code == "BAD_USER_INPUT"
    assert "Did you mean" not in unknown_field.error["message"]


async def test_request_body_over_the_cap_is_refused_before_parsing(api: Api) -> None:
    body = b'{"query": "{ me { id } }", "pad": "' + b"x" * (2 << 20) + b'"}'
    response = await api.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    async def chunks():  # no Content-Length: counted while streaming
        yield b'{"query": "{ me { id } }", "pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    streamed = await api.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_introspection_is_off_outside_dev(api: Api, admin_token: str) -> None:
    response = await api.post("{ __schema { types { name } } }", token=admin_token)
    assert response.errors and response.code == "BAD_USER_INPUT"


async def test_unexpected_errors_are_masked_with_the_request_id(
    stack: Stack, admin_token: str
) -> None:
    # An API whose tables do not exist: the store fails in a way no resolver expects.
    broken = stack.start_api(
        "api-broken", {"TILEGRAPH_TABLE_PREFIX": "missing_", "TILEGRAPH_INIT_STORE": "0"}
    )
    async with httpx.AsyncClient(base_url=broken.url) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ me { id } }"},
            headers={"Authorization": f"Bearer {admin_token}", "X-Request-ID": "req-mask-123456"},
        )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == "req-mask-123456"
    assert response.headers["x-request-id"] == "req-mask-123456"
    assert "req-mask-123456" in error["message"]
    assert "ResourceNotFound" not in response.text and "Traceback" not in response.text
    log = broken.log.read_text()
    assert "unhandled_error" in log and "req-mask-123456" in log and "ResourceNotFound" in log


async def test_health_readiness_metrics_and_request_ids(api: Api) -> None:
    health = await api.http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert len(health.headers["x-request-id"]) >= 8
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"dynamodb": "ok", "s3": "ok", "redis": "ok"}


async def test_readiness_fails_when_a_dependency_is_down(inprocess: InProcess) -> None:
    broken = await inprocess.start_api({"TILEGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"})
    async with httpx.AsyncClient(base_url=broken.url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("unavailable")


async def test_production_serves_no_graphiql(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "graphiql" not in page.text.lower()
    assert (await api.http.get("/graphiql/graphiql.min.js")).status_code == 404


def _policy(response: httpx.Response) -> dict[str, str]:
    return dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )


async def test_graphiql_when_enabled_loads_nothing_from_another_host(
    inprocess: InProcess,
) -> None:
    server = await inprocess.start_api({"TILEGRAPH_GRAPHIQL": "1"})
    async with httpx.AsyncClient(base_url=server.url, transport=server.transport) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "GraphiQL" in page.text
        policy = _policy(page)
        assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert "'unsafe-eval'" not in page.headers["content-security-policy"]
        # No inline script (the policy would block it), and every asset is ours.
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []
        assets = re.findall(r'(?:src|href)="([^"]+)"[^>]*?integrity="sha384-([^"]+)"', page.text)
        assert len(assets) == 8, assets  # 3 stylesheets, 5 scripts
        assert "://" not in page.text and "//" not in re.sub(r"<!--.*?-->", "", page.text)
        for url, integrity in assets:
            asset = await client.get("/" + url)
            assert asset.status_code == 200, url
            assert base64.b64encode(hashlib.sha384(asset.content).digest()).decode() == integrity
            assert asset.headers["x-content-type-options"] == "nosniff"
        script = next(url for url, _ in assets if url.split("?")[0].endswith("graphiql.min.js"))
        assert "javascript" in (await client.get("/" + script)).headers["content-type"]


async def test_the_viewer_at_the_root_loads_only_our_own_files(api: Api) -> None:
    page = await api.http.get("/")
    assert page.status_code == 200 and "<title>Tilegraph</title>" in page.text
    policy = _policy(page)
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'none'"  # a sign-in form never submits to a URL
    sources = policy["script-src"].split()
    assert sources[0] == "'self'" and len(sources) == 2 and sources[1].startswith("'nonce-")
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in str(policy)
    assert policy["connect-src"].split()[0] == "'self'"
    assert all(
        source.startswith(("ws://", "wss://")) for source in policy["connect-src"].split()[1:]
    )
    # A nonce is for one response only.
    assert _policy(await api.http.get("/"))["script-src"] != policy["script-src"]
    assert page.headers["cache-control"] == "no-store"

    # No inline script, nothing from another host, every file pinned to its content.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []
    assert "//" not in page.text
    pinned = re.findall(r'(?:src|href)="([^"]+)"[^>]*?integrity="sha384-([^"]+)"', page.text)
    assert len(pinned) == 2, pinned  # the stylesheet and the entry module
    modules: set[str] = set()
    for url, integrity in pinned:
        asset = await api.http.get("/" + url)
        assert asset.status_code == 200, url
        assert base64.b64encode(hashlib.sha384(asset.content).digest()).decode() == integrity
        modules |= set(re.findall(r'from "\./([a-z]+\.js)"', asset.text))
    assert modules, "the entry module imports the others"
    for name in modules:
        module = await api.http.get(f"/viewer/{name}")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        assert "://" not in module.text, name
        assert module.headers["x-content-type-options"] == "nosniff"


async def test_every_response_is_nosniff_and_html_has_a_policy(api: Api) -> None:
    responses = [
        await api.http.post("/graphql", json={"query": "{ me { id } }"}),
        await api.http.get("/healthz"),
        await api.http.get("/no-such-page"),
        await api.http.get("/"),
        await api.http.get("/graphql", headers={"Accept": "text/html"}),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_metrics_only_for_the_bearer_of_the_metrics_token(
    api: Api, inprocess: InProcess
) -> None:
    # Without a configured token there is no /metrics at all.
    assert (await api.http.get("/metrics")).status_code == 404
    assert (
        await api.http.get("/metrics", headers={"Authorization": "Bearer anything-at-all-1234"})
    ).status_code == 404

    token = secrets.token_urlsafe(24)
    # One character changed: the last one swapped for one it is not.
    near_miss = token[:-1] + ("y" if token.endswith("x") else "x")
    server = await inprocess.start_api({"TILEGRAPH_METRICS_TOKEN": token})
    async with httpx.AsyncClient(base_url=server.url, transport=server.transport) as client:
        assert (await client.get("/healthz")).status_code == 200
        for headers in (
            {},
            {"Authorization": f"Bearer {near_miss}"},
            {"Authorization": f"Bearer {token}{token}"},
            {"Authorization": f"Basic {token}"},
            {"Authorization": "Bearer "},
        ):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert "tilegraph_http_requests_total" not in refused.text
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert metrics.status_code == 200
    assert (
        'tilegraph_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    )


@pytest.fixture(scope="module")
def attack_api(stack: Stack) -> str:
    """An API process of its own: the probe measures its event loop, not the tests'."""
    return stack.start_api("api-under-attack").url


def _repeated_fields_query() -> str:
    """~9 KB, 1,250 repeated selections, a new text every time (no cache helps)."""
    return "{" + " ".join(random.choice(("me{id}", "me{name}")) for _ in range(1250)) + "}"


async def test_a_query_of_repeated_fields_is_refused_before_validation_off_the_loop(
    attack_api: str,
) -> None:
    def attack(client: httpx.Client) -> None:
        response = client.post(
            "/graphql",
            json={"query": _repeated_fields_query()},
            headers={"X-Forwarded-For": fresh_ip()},  # not stopped by the anonymous budget
        )
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
        assert "fields" in error["message"]

    seen = await asyncio.to_thread(health_under_attack, attack_api, attack)
    _report("1,250 repeated fields", seen)
    assert seen.attacks_during_probe >= 4, "the attack stopped before the probe did"
    assert seen.health_percentile(0.95) < HEALTH_P95_SECONDS


async def test_requests_without_a_valid_token_have_a_budget_per_address(
    inprocess: InProcess, admin_token: str
) -> None:
    deployment = await inprocess.start_api({"TILEGRAPH_ANONYMOUS_REQUESTS_PER_MINUTE": "5"})
    api = Api(deployment.url, deployment.ws_url, deployment.transport)
    try:
        address = fresh_ip()
        for _ in range(5):
            assert (await api.post("{ __typename }", ip=address)).status == 200
        refused = await api.post("{ __typename }", ip=address)
        assert refused.status == 429 and refused.code == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        forged = await api.post("{ __typename }", ip=address, headers={"Authorization": "Bearer x"})
        assert forged.status == 429  # a token that does not verify is no way around it
        signed_in = await api.post("{ me { id } }", ip=address, token=admin_token)
        assert signed_in.status == 200 and signed_in.data["me"]["id"]
        assert (await api.post("{ __typename }", ip=fresh_ip())).status == 200
    finally:
        await api.close()


@pytest.fixture(scope="module")
async def full_dashboard(api: Api, users: Users, worker: Any) -> dict[str, Any]:
    """An owner's dashboard of the largest size, every card on the owner's own dataset."""
    owner = await users.create("big-board-owner")
    rows = [["region", "amount"]] + [[f"r{i}", i] for i in range(150)]
    uploaded, final = await import_and_wait(api, owner["token"], csv_bytes(rows), name="rows")
    assert final["status"] == "SUCCEEDED"
    dataset_id = uploaded["dataset"]["id"]
    code = render("return str(len(dataset))")
    card_ids: list[str] = []
    for start in range(0, 200, 20):
        card_ids += await asyncio.gather(
            *(
                create_card(api, owner["token"], code, [dataset_id], name=f"c{n}")
                for n in range(start, start + 20)
            )
        )
    dashboard = await create_dashboard(api, owner["token"], name="Largest", card_ids=card_ids)
    return {"owner": owner, "id": dashboard["id"]}


async def test_one_request_reads_stored_data_only_so_many_times(
    inprocess: InProcess, full_dashboard: dict[str, Any]
) -> None:
    """Lists whose length the estimate cannot know (a dashboard's datasets) still cannot turn
    one request into an unbounded number of previews."""
    deployment = await inprocess.start_api({"TILEGRAPH_MAX_DATA_READS_PER_REQUEST": "3"})
    api = Api(deployment.url, deployment.ws_url, deployment.transport)
    token = full_dashboard["owner"]["token"]
    try:
        board = await api.ok(
            "query($id: ID!) { dashboard(id: $id) { referencedDatasets { dataset { id } } } }",
            {"id": full_dashboard["id"]},
            token=token,
        )
        dataset_id = board["dashboard"]["referencedDatasets"][0]["dataset"]["id"]

        def reads(n: int) -> str:
            fields = " ".join(
                f"r{i}: dataset(id: $id) {{ preview(limit: 1) {{ totalRows }} }}" for i in range(n)
            )
            return f"query($id: ID!) {{ {fields} }}"

        assert (await api.ok(reads(3), {"id": dataset_id}, token=token))["r2"]["preview"]
        refused = await api.post(reads(4), {"id": dataset_id}, token=token)
        assert refused.code == "QUERY_TOO_COMPLEX" and "at most 3" in refused.error["message"]
    finally:
        await api.close()


async def test_previews_under_every_card_of_a_full_dashboard_are_refused_by_the_cost_estimate(
    api: Api, attack_api: str, full_dashboard: dict[str, Any]
) -> None:
    token = full_dashboard["owner"]["token"]
    aliases = " ".join(
        f"d{i}: dashboard(id: $id) {{ cards {{ datasets {{ preview(limit: 100) {{ rows }} }} }} }}"
        for i in range(10)
    )
    attack_query = f"query($id: ID!) {{ {aliases} }}"
    variables = {"id": full_dashboard["id"]}
    refused = await api.post(attack_query, variables, token=token)
    assert refused.code == "QUERY_TOO_COMPLEX" and "cost" in refused.error["message"]
    # One preview per card of the page is refused as well: 200 reads of stored data.
    one = "query($id: ID!) { dashboard(id: $id) { cards { datasets { preview(limit: 1) { rows } } } } }"
    assert (await api.post(one, variables, token=token)).code == "QUERY_TOO_COMPLEX"

    # What the estimate lets through on the largest dashboard answers within a second.
    page = """query($id: ID!) { dashboard(id: $id) { name cardCount
      layout { columns items { x y w h card { id name type } } }
      cards { id name } referencedDatasets { dataset { id name } usedByCards { id } } } }"""
    started = time.perf_counter()
    answered = await api.ok(page, variables, token=token)
    elapsed = time.perf_counter() - started
    print(f"\nlargest dashboard page: {elapsed * 1000:.0f} ms")
    assert len(answered["dashboard"]["layout"]["items"]) == 200
    assert elapsed < 1.0

    def attack(client: httpx.Client) -> None:
        response = client.post(
            "/graphql",
            json={"query": attack_query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"

    seen = await asyncio.to_thread(health_under_attack, attack_api, attack)
    _report("10 aliases x 200 cards x preview", seen)
    assert seen.attacks_during_probe >= 4
    assert seen.health_percentile(0.95) < HEALTH_P95_SECONDS
