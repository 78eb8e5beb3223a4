"""The per-request Context: who is calling, the process services, and fresh loaders; and
`Info`, the type every resolver's `info` has, so `info.context` is typed end to end."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from tilegraph.domain.errors import QueryTooComplex, Unauthenticated
from tilegraph.domain.users import Principal
from tilegraph.loaders.registry import Loaders
from tilegraph.services.access import DashboardAccess
from tilegraph.services.registry import Services
from tilegraph.settings import Settings

NOT_SIGNED_IN = "Sign in first: send `Authorization: Bearer <token>`"


class Context:
    """One per HTTP request, or one per WebSocket connection (loaders renewed per event)."""

    def __init__(
        self,
        services: Services,
        *,
        request: Request | WebSocket,
        response: Response | WebSocket,
        request_id: str,
        client_ip: str,
        authorization: str | None,
    ) -> None:
        self.services = services
        self.request = request
        self.response = response
        self.request_id = request_id
        self.client_ip = client_ip
        self.authorization = authorization
        # Set by the WebSocket handshake (graphql-transport-ws connection_init payload).
        self.connection_params: dict[str, Any] | None = None
        self._principal: Principal | None = None
        self._refusal: Unauthenticated | None = None
        self._authenticated = False
        self.loaders = Loaders(services.repos)
        self.access = DashboardAccess(self.loaders)
        self._data_reads = 0

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def renew_loaders(self) -> Loaders:
        """Forget memoised records, so each subscription event sees current data."""
        self.loaders = Loaders(self.services.repos)
        self.access = DashboardAccess(self.loaders)
        self._data_reads = 0
        return self.loaders

    def spend_data_read(self) -> None:
        """Previews and value lists read stored data: one request (or socket operation) may
        make only ``max_data_reads_per_request`` of them, however many datasets its lists
        turn out to hold, so no query the cost estimate let through can run for long."""
        self._data_reads += 1
        limit = self.settings.max_data_reads_per_request
        if self._data_reads > limit:
            raise QueryTooComplex(
                f"A request may read stored rows or values (preview, columnValues, values) "
                f"at most {limit} times; ask for fewer at once"
            )

    async def authenticate(self) -> Principal | None:
        """The caller, from the token checked once per request (on a WebSocket, at every
        operation); None when there is none or it is not valid (`principal` then says why).
        Root fields call it before they resolve (tilegraph.schema.authentication)."""
        if self.connection_params is not None:
            # A socket lives long: every operation asks again who the caller is now (the
            # answer is shared for a moment by the process's sockets with the same token).
            self._data_reads = 0
            try:
                self._principal = await self.services.rechecks.principal(self.authorization)
                self._refusal = None
            except Unauthenticated as refusal:
                self._principal, self._refusal = None, refusal
            return self._principal
        if not self._authenticated:
            try:
                identified = await self.services.auth.identify(self.authorization)
            except Unauthenticated as refusal:
                identified, self._refusal = None, refusal
            if identified is not None:
                self._principal, user = identified
                self.loaders.users.prime(user.id, user)  # `me` and owners need no second read
            self._authenticated = True
        return self._principal

    @property
    def principal(self) -> Principal:
        """The signed-in caller; UNAUTHENTICATED when nobody is."""
        if self._principal is None:
            refusal = self._refusal
            if refusal is None:
                raise Unauthenticated(NOT_SIGNED_IN)
            raise Unauthenticated(refusal.message, field=refusal.field, **refusal.extensions)
        return self._principal

    def forget_principal(self) -> None:
        self._authenticated = False
        self._principal = None
        self._refusal = None


# What every resolver and field that takes `info` declares it as.
Info = strawberry.Info[Context, None]
