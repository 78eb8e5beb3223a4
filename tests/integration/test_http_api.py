"""HTTP-level behaviour: limits, error masking, request ids, health and metrics."""

from __future__ import annotations

import httpx

from tests.support.client import Api
from tests.support.inprocess import InProcess
from tests.support.stack import Stack


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
    metrics = await api.http.get("/metrics")
    assert (
        'tilegraph_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    )
    graphiql = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()


async def test_readiness_fails_when_a_dependency_is_down(inprocess: InProcess) -> None:
    broken = await inprocess.start_api({"TILEGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"})
    async with httpx.AsyncClient(base_url=broken.url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("unavailable")
