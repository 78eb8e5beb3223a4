"""A demo workspace created through the public API, so a first start shows a working
dashboard: a demo user, a generated sales dataset, three plotly cards on a dashboard with
a region and a date filter, a shared filter view, and a daily transform by month. The
dashboard is shared with the admin who created the demo (EDITOR), so the person who
signs in as that admin finds it among their dashboards."""

from __future__ import annotations

import asyncio
import io
import json
import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

DEMO_EMAIL = "demo@tilegraph.local"
DEMO_DASHBOARD_NAME = "Sales overview"
REGIONS = ["North", "South", "East", "West"]
PRODUCTS = {"Widget": 12.0, "Gadget": 25.0, "Gizmo": 40.0, "Doohickey": 8.5}

# The cards load no plotly.js themselves: the platform adds one <script src> to the API's copy.
BAR_CARD = """def render(dataset, filters, params):
    totals = dataset.groupby("region", as_index=False)["amount"].sum()
    fig = px.bar(totals, x="region", y="amount", title="Sales by region")
    return HTMLResult(html=fig.to_html(include_plotlyjs=False),
                      used_columns=["region", "amount"], filter_applicable=["region", "date"])
"""
LINE_CARD = """def render(dataset, filters, params):
    monthly = dataset.assign(month=pd.to_datetime(dataset["date"]).dt.to_period("M").astype(str))
    totals = monthly.groupby("month", as_index=False)["amount"].sum()
    fig = px.line(totals, x="month", y="amount", markers=True, title="Sales over time")
    return HTMLResult(html=fig.to_html(include_plotlyjs=False),
                      used_columns=["date", "amount"], filter_applicable=["region", "date"])
"""
KPI_CARD = """def render(dataset, filters, params):
    fig = go.Figure(go.Indicator(mode="number", value=float(dataset["amount"].sum()),
                                 title={"text": "Total sales"}, number={"prefix": "$"}))
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10))  # a small tile: keep the number big
    return HTMLResult(html=fig.to_html(include_plotlyjs=False),
                      used_columns=["amount"], filter_applicable=["region", "date"])
"""
MONTHLY_TRANSFORM = """import pandas as pd

sales = df_0.assign(month=pd.to_datetime(df_0["date"]).dt.to_period("M").astype(str))
result = sales.groupby(["month", "region"], as_index=False)["amount"].sum()
"""


class DemoError(RuntimeError):
    """Why the demo could not be created, worded for the person running it."""


@dataclass
class DemoResult:
    created: bool
    email: str
    password: str | None
    dashboard_id: str | None
    dashboard_name: str = DEMO_DASHBOARD_NAME


def sales_csv(rows: int = 3000, seed: int = 7) -> bytes:
    """A few thousand plausible sales: region, product, date, quantity, amount."""
    rng = random.Random(seed)
    start = date(2024, 1, 1)
    out = io.StringIO()
    out.write("region,product,date,quantity,amount\n")
    for _ in range(rows):
        product = rng.choice(list(PRODUCTS))
        quantity = rng.randint(1, 20)
        day = start + timedelta(days=rng.randint(0, 364))
        amount = round(quantity * PRODUCTS[product] * rng.uniform(0.9, 1.1), 2)
        out.write(f"{rng.choice(REGIONS)},{product},{day.isoformat()},{quantity},{amount}\n")
    return out.getvalue().encode()


class _Client:
    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.server, timeout=60)
        self.token: str | None = None

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body = response.json()
        if body.get("errors"):
            raise DemoError(body["errors"][0]["message"])
        data: dict[str, Any] = body["data"]
        return data

    async def login(self, email: str, password: str) -> tuple[str, str]:
        """The token and the user id."""
        data = await self.gql(
            "mutation($i: LoginInput!) { login(input: $i) { token user { id } } }",
            {"i": {"email": email, "password": password}},
        )
        return str(data["login"]["token"]), str(data["login"]["user"]["id"])

    async def upload(self, name: str, content: bytes) -> tuple[str, str]:
        query = (
            "mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) "
            "{ dataset { id } import { id } } }"
        )
        response = await self.http.post(
            "/graphql",
            data={
                "operations": json.dumps(
                    {
                        "query": query,
                        "variables": {
                            "input": {
                                "name": name,
                                "file": None,
                                "description": "Generated sales, one row per order",
                            }
                        },
                    }
                ),
                "map": json.dumps({"0": ["variables.input.file"]}),
            },
            files={"0": ("sales.csv", content, "text/csv")},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise DemoError(body["errors"][0]["message"])
        payload = body["data"]["uploadDataset"]
        return str(payload["dataset"]["id"]), str(payload["import"]["id"])

    async def follow(
        self, subscription: str, variables: dict[str, Any], field: str
    ) -> dict[str, Any]:
        url = self.server.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
        async with websockets.connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"authorization": f"Bearer {self.token}"},
                    }
                )
            )
            if json.loads(await ws.recv()).get("type") != "connection_ack":
                raise DemoError("the server refused the WebSocket connection")
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": subscription, "variables": variables},
                    }
                )
            )
            state: dict[str, Any] = {}
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise DemoError(payload["errors"][0]["message"])
                    state = payload["data"][field]
                elif message.get("type") in ("complete", "error"):
                    break
            return state

    async def close(self) -> None:
        await self.http.aclose()


async def _demo_exists(client: _Client, admin_token: str) -> bool:
    data = await client.gql(
        "query($q: String!) { users(query: $q, limit: 5) { email } }",
        {"q": DEMO_EMAIL},
        token=admin_token,
    )
    return any(u["email"] == DEMO_EMAIL for u in data["users"])


async def create_demo(server: str, admin_email: str, admin_password: str) -> DemoResult:
    """Creates the demo workspace once; a second call finds the demo user and stops."""
    client = _Client(server)
    try:
        admin_token, admin_id = await client.login(admin_email, admin_password)
        if await _demo_exists(client, admin_token):
            return DemoResult(False, DEMO_EMAIL, None, None)
        password = secrets.token_urlsafe(9) + "-Demo1"
        await client.gql(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
            {"i": {"email": DEMO_EMAIL, "name": "Demo", "password": password}},
            token=admin_token,
        )
        client.token, _ = await client.login(DEMO_EMAIL, password)
        dataset_id, import_id = await client.upload("Sales (demo)", sales_csv())
        final = await client.follow(
            "subscription($id: ID!) { datasetImport(id: $id) { status error { message } } }",
            {"id": import_id},
            "datasetImport",
        )
        if final.get("status") != "SUCCEEDED":
            raise DemoError(f"the demo dataset did not import: {final}")
        card_ids = []
        for name, description, code in (
            ("Sales by region", "Total amount per region", BAR_CARD),
            ("Sales over time", "Monthly total amount", LINE_CARD),
            ("Total sales", "Sum of all amounts", KPI_CARD),
        ):
            data = await client.gql(
                "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }",
                {
                    "i": {
                        "name": name,
                        "description": description,
                        "code": code,
                        "datasetIds": [dataset_id],
                    }
                },
            )
            card_ids.append(data["createCard"]["card"]["id"])
        layout = {
            "columns": 12,
            "rowHeight": 100,
            "items": [
                {"cardId": card_ids[2], "x": 0, "y": 0, "w": 4, "h": 2},
                {"cardId": card_ids[0], "x": 4, "y": 0, "w": 8, "h": 4},
                {"cardId": card_ids[1], "x": 0, "y": 4, "w": 12, "h": 4},
            ],
        }
        filters = [
            {
                "id": "region",
                "type": "CATEGORY",
                "column": "region",
                "label": "Region",
                "multiSelect": True,
                "options": REGIONS,
            },
            {"id": "period", "type": "DATE_RANGE", "column": "date", "label": "Period"},
        ]
        data = await client.gql(
            "mutation($i: CreateDashboardInput!) { createDashboard(input: $i) "
            "{ dashboard { id } } }",
            {
                "i": {
                    "name": DEMO_DASHBOARD_NAME,
                    "description": "The demo dashboard",
                    "layout": layout,
                    "filters": filters,
                }
            },
        )
        dashboard_id = data["createDashboard"]["dashboard"]["id"]
        await client.gql(
            "mutation($i: ShareDashboardInput!) { shareDashboard(input: $i) { share { id } } }",
            {
                "i": {
                    "dashboardId": dashboard_id,
                    "targetType": "USER",
                    "targetId": admin_id,
                    "permission": "EDITOR",
                }
            },
        )
        await client.gql(
            "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) "
            "{ filterView { id } } }",
            {
                "i": {
                    "dashboardId": dashboard_id,
                    "name": "North and South, first half",
                    "filterState": {
                        "region": ["North", "South"],
                        "period": {"start": "2024-01-01", "end": "2024-06-30"},
                    },
                    "isShared": True,
                }
            },
        )
        await client.gql(
            "mutation($i: CreateTransformInput!) { createTransform(input: $i) "
            "{ transform { id } } }",
            {
                "i": {
                    "name": "Monthly sales by region",
                    "inputDatasetIds": [dataset_id],
                    "code": MONTHLY_TRANSFORM,
                    "scheduleCron": "0 3 * * *",
                    "scheduleEnabled": True,
                }
            },
        )
        return DemoResult(True, DEMO_EMAIL, password, dashboard_id)
    except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
        raise DemoError(f"could not reach {server}: {exc}") from exc
    finally:
        await client.close()


def dashboard_directions(
    dashboard_id: str, dashboard_name: str, server: str, admin_email: str
) -> str:
    """Where the demo dashboard is and how to open it, for the terminal."""
    return (
        f'Demo dashboard: "{dashboard_name}" (id {dashboard_id}), shared with {admin_email} '
        f"as EDITOR.\n  Open {server.rstrip('/')}/ and sign in as {admin_email}, or in GraphiQL "
        f'ask {{ dashboard(id: "{dashboard_id}") {{ name cards {{ name }} }} }}'
    )


def run_demo(server: str, admin_email: str, admin_password: str) -> DemoResult:
    return asyncio.run(create_demo(server, admin_email, admin_password))
