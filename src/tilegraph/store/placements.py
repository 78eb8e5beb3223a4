"""Which dashboards show a card: one `card_placements` item per (card, dashboard), written in
the same transaction as the dashboard's own write (create, layout change, restore, delete),
so the index a card's lineage reads never drifts from the layouts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tilegraph.domain.lineage import PlacementChanges
from tilegraph.store.dynamo import Dynamo, KeyCondition

PLACEMENTS = "card_placements"
# DynamoDB's limit on the steps of one TransactWriteItems.
MAX_TRANSACTION_STEPS = 100

T = TypeVar("T")


def placement_ops(dashboard_id: str, changes: PlacementChanges) -> list[dict[str, Any]]:
    """The transaction steps (Dynamo.transact_write shape) that add and remove one
    dashboard's placements."""
    puts: list[dict[str, Any]] = [
        {"put": PLACEMENTS, "item": {"card_id": card_id, "dashboard_id": dashboard_id}}
        for card_id in changes.added
    ]
    deletes: list[dict[str, Any]] = [
        {"delete": PLACEMENTS, "key": {"card_id": card_id, "dashboard_id": dashboard_id}}
        for card_id in changes.removed
    ]
    return puts + deletes


class PlacementRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def written_with(
        self,
        placements: Sequence[dict[str, Any]],
        steps: Sequence[dict[str, Any]],
        write: Callable[[list[dict[str, Any]]], Awaitable[T]],
    ) -> T:
        """`write(also)` is the dashboard's own write, made with the transaction steps it
        is given: its `steps` (its revision) and the placements, all in one transaction.
        A change too big for one (DynamoDB takes 100 steps, a layout 200 cards) puts the
        new placements just before and deletes the old ones just after the write: the
        index may then briefly name a dashboard that does not show the card (readers check
        the layout), never miss one that does."""
        if 1 + len(steps) + len(placements) <= MAX_TRANSACTION_STEPS:
            return await write([*steps, *placements])
        await self._batch([op for op in placements if "put" in op])
        written = await write(list(steps))
        await self._batch([op for op in placements if "delete" in op])
        return written

    async def _batch(self, ops: Sequence[dict[str, Any]]) -> None:
        puts = [op["item"] for op in ops if "put" in op]
        deletes = [op["key"] for op in ops if "delete" in op]
        await self.db.batch_write(PLACEMENTS, puts=puts, deletes=deletes)

    async def dashboards_showing(self, card_id: str) -> list[str]:
        """Ids of the dashboards whose layout holds the card (or held it a moment ago: see
        written_with), whoever owns them."""
        items = await self.db.query_all(PLACEMENTS, KeyCondition("card_id", card_id))
        return [str(i["dashboard_id"]) for i in items]
