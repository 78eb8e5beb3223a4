"""What the command-line clients (`tilegraph import`, `export`, `apply`) share: signing in
(a token, or an email and a password asked at the terminal) and GraphQL calls over HTTP."""

from __future__ import annotations

import getpass
import os
from typing import Any

import httpx

LOGIN = "mutation($i: LoginInput!) { login(input: $i) { token } }"


class ApiError(RuntimeError):
    """A GraphQL error (or an unreadable answer), worded for the person at the terminal."""

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def sign_in(server: str, token: str | None, email: str | None) -> str:
    """The token to call `server` with: the one given, else one from signing in as `email`
    with TILEGRAPH_PASSWORD or a password asked at the terminal."""
    if token:
        return token
    if not email:
        raise ApiError("Give --token (or TILEGRAPH_TOKEN), or --email to sign in")
    password = os.environ.get("TILEGRAPH_PASSWORD") or getpass.getpass(f"Password for {email}: ")
    with GraphQLClient(server, None) as client:
        data = client.call(LOGIN, {"i": {"email": email, "password": password}})
    return str(data["login"]["token"])


class GraphQLClient:
    """Sends GraphQL requests to `server`/graphql with the bearer token; `call` returns
    `data` or raises the first error as ApiError."""

    def __init__(self, server: str, token: str | None, timeout: float = 60) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> GraphQLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(f"The server answered {response.status_code}") from exc
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0]
            extensions = first.get("extensions") or {}
            raise ApiError(
                first.get("message", "error"), extensions.get("code"), extensions.get("field")
            )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(f"The server answered {response.status_code} without data")
        return data
