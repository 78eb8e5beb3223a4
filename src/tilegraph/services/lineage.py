"""Lineage: the graph of datasets, transforms, cards and dashboards around one object, and
what a re-import's schema changes would break. Every hop reads through the request's
loaders, so it costs a constant number of round trips however wide the frontier is."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.datasets import DatasetRecord, DatasetSourceType
from tilegraph.domain.errors import NotFound
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.lineage import (
    DOWN,
    UP,
    LineageDirection,
    LineageEdge,
    LineageRelation,
    LineageWalk,
    Step,
    broken_columns,
    check_depth,
    reads_broken,
)
from tilegraph.domain.schema_diff import SchemaChange
from tilegraph.domain.transforms import TransformRecord
from tilegraph.domain.users import Principal
from tilegraph.services.access import DashboardAccess, Loads, RequestLoaders

LineageRecord = DatasetRecord | TransformRecord | CardRecord | DashboardRecord

NO_SUCH_OBJECT = "No dataset, transform, card or dashboard with this id, or you cannot see it"


class LineageLoaders(RequestLoaders, Protocol):
    """The request's loaders a walk reads (tilegraph.loaders.Loaders is one)."""

    @property
    def transforms(self) -> Loads[TransformRecord | None]: ...

    @property
    def cards_using_dataset(self) -> Loads[list[CardRecord]]: ...

    @property
    def transforms_using_dataset(self) -> Loads[list[TransformRecord]]: ...

    @property
    def dashboards_showing_card(self) -> Loads[list[str]]: ...


@dataclass(frozen=True)
class LineageResult:
    root: LineageRecord
    # Every listed object, the root first, then in the order the walk reached them.
    nodes: list[LineageRecord]
    edges: list[LineageEdge]
    hidden_count: int


@dataclass(frozen=True)
class ReimportImpactResult:
    cards: list[CardRecord]
    transforms: list[TransformRecord]
    dashboards: list[DashboardRecord]


def _producer_of(dataset: DatasetRecord) -> str | None:
    """The transform a dataset is the output of, as its source says."""
    if dataset.source_type is not DatasetSourceType.TRANSFORM or not dataset.source_config:
        return None
    transform_id = dataset.source_config.get("transformId")
    return str(transform_id) if transform_id else None


class LineageService:
    # ---------------------------------------------------------------- the graph

    async def graph(
        self,
        principal: Principal,
        access: DashboardAccess,
        loaders: LineageLoaders,
        root_id: str,
        direction: LineageDirection,
        depth: int,
    ) -> LineageResult:
        """NOT_FOUND (field `id`) when the root does not exist or the caller may not see
        it, by the rules `node(id:)` uses: datasets, transforms and cards are their
        owner's (a card lent by a dashboard is seen only when reached through it),
        dashboards whoever holds a level on them."""
        check_depth(depth)
        records: dict[str, LineageRecord] = {}
        await self._load(loaders, [root_id], records)
        root = records.get(root_id)
        if root is None or not await self._root_visible(principal, access, root):
            raise NotFound(NO_SUCH_OBJECT, field="id")
        walk = LineageWalk(root_id, direction, depth)
        while not walk.done:
            found = await self._edges(loaders, walk.frontier, records)
            shown = await self._shown(principal, access, found, records)
            walk.advance(found, shown)
        return LineageResult(
            root=root,
            nodes=[records[i] for i in walk.node_ids],
            edges=list(walk.edges),
            hidden_count=walk.hidden_count,
        )

    async def _root_visible(
        self, principal: Principal, access: DashboardAccess, record: LineageRecord
    ) -> bool:
        if isinstance(record, DashboardRecord):
            return await access.level_on(principal.user_id, record) is not None
        return record.owner_id == principal.user_id

    async def _load(
        self, loaders: LineageLoaders, ids: Sequence[str], records: dict[str, LineageRecord]
    ) -> None:
        """Reads the objects not read yet into `records`: one batch per table."""
        wanted: dict[str, list[str]] = {"ds": [], "tf": [], "card": [], "dash": []}
        for object_id in dict.fromkeys(ids):
            prefix = prefix_of(object_id)
            if object_id not in records and prefix in wanted:
                wanted[prefix].append(object_id)
        datasets, transforms, cards, dashboards = await asyncio.gather(
            loaders.datasets.load_many(wanted["ds"]),
            loaders.transforms.load_many(wanted["tf"]),
            loaders.cards.load_many(wanted["card"]),
            loaders.dashboards.load_many(wanted["dash"]),
        )
        batches: list[Sequence[LineageRecord | None]] = [datasets, transforms, cards, dashboards]
        for batch in batches:
            for record in batch:
                if record is not None:
                    records[record.id] = record

    async def _edges(
        self,
        loaders: LineageLoaders,
        frontier: Sequence[Step],
        records: dict[str, LineageRecord],
    ) -> list[tuple[Step, LineageEdge]]:
        """The edges leaving each frontier step its way, to objects that exist (read into
        `records`): the indexes of every step at once, then the far ends at once."""
        reading_datasets = [i for i, way in frontier if way is DOWN and prefix_of(i) == "ds"]
        showing_cards = [i for i, way in frontier if way is DOWN and prefix_of(i) == "card"]
        card_lists, transform_lists, dashboard_lists = await asyncio.gather(
            loaders.cards_using_dataset.load_many(reading_datasets),
            loaders.transforms_using_dataset.load_many(reading_datasets),
            loaders.dashboards_showing_card.load_many(showing_cards),
        )
        readers = dict(
            zip(reading_datasets, zip(card_lists, transform_lists, strict=True), strict=True)
        )
        shown_on = dict(zip(showing_cards, dashboard_lists, strict=True))
        for cards, transforms in readers.values():
            records.update((c.id, c) for c in cards)
            records.update((t.id, t) for t in transforms)

        found: list[tuple[Step, LineageEdge]] = []
        for step in frontier:
            object_id, way = step
            record = records[object_id]
            for edge in self._edges_of(record, way, readers, shown_on):
                found.append((step, edge))
        await self._load(loaders, [e.far_end(s[0]) for s, e in found], records)
        return [(s, e) for s, e in found if self._holds(e, records)]

    @staticmethod
    def _edges_of(
        record: LineageRecord,
        way: LineageDirection,
        readers: dict[str, tuple[list[CardRecord], list[TransformRecord]]],
        shown_on: dict[str, list[str]],
    ) -> list[LineageEdge]:
        if isinstance(record, DatasetRecord):
            if way is DOWN:
                cards, transforms = readers[record.id]
                return [
                    *(LineageEdge(record.id, t.id, LineageRelation.INPUT_OF) for t in transforms),
                    *(LineageEdge(record.id, c.id, LineageRelation.READ_BY) for c in cards),
                ]
            producer = _producer_of(record)
            return [LineageEdge(producer, record.id, LineageRelation.PRODUCES)] if producer else []
        if isinstance(record, TransformRecord):
            if way is DOWN:
                output = record.output_dataset_id
                return [LineageEdge(record.id, output, LineageRelation.PRODUCES)] if output else []
            return [
                LineageEdge(d, record.id, LineageRelation.INPUT_OF)
                for d in dict.fromkeys(record.input_dataset_ids)
            ]
        if isinstance(record, CardRecord):
            if way is DOWN:
                return [
                    LineageEdge(record.id, d, LineageRelation.SHOWN_ON) for d in shown_on[record.id]
                ]
            return [
                LineageEdge(d, record.id, LineageRelation.READ_BY)
                for d in dict.fromkeys(record.dataset_ids)
            ]
        if way is UP:
            return [
                LineageEdge(c, record.id, LineageRelation.SHOWN_ON) for c in record.layout.card_ids
            ]
        return []

    @staticmethod
    def _holds(edge: LineageEdge, records: dict[str, LineageRecord]) -> bool:
        """Both ends exist and still say so (a placement whose dashboard no longer shows
        the card, or a dataset its transform no longer writes, is no edge)."""
        source, target = records.get(edge.from_id), records.get(edge.to_id)
        if source is None or target is None:
            return False
        if isinstance(target, DashboardRecord):
            return edge.from_id in target.layout.card_ids
        if edge.relation is LineageRelation.PRODUCES and isinstance(source, TransformRecord):
            return _producer_of(target) == source.id if isinstance(target, DatasetRecord) else False
        return True

    async def _shown(
        self,
        principal: Principal,
        access: DashboardAccess,
        found: Sequence[tuple[Step, LineageEdge]],
        records: dict[str, LineageRecord],
    ) -> set[str]:
        """The far ends the caller may see, all checks at once (their reads batched)."""

        async def may_see(near_id: str, far: LineageRecord) -> bool:
            if far.owner_id == principal.user_id:
                return True
            if isinstance(far, DashboardRecord):
                return await access.level_on(principal.user_id, far) is not None
            near = records[near_id]
            if isinstance(far, CardRecord) and isinstance(near, DashboardRecord):
                return await access.card_on_dashboard(principal, far, near)
            return False

        pairs = [(step[0], records[edge.far_end(step[0])]) for step, edge in found]
        seen = await asyncio.gather(*(may_see(near, far) for near, far in pairs))
        return {far.id for (_, far), ok in zip(pairs, seen, strict=True) if ok}

    # ---------------------------------------------------------------- re-import impact

    async def reimport_impact(
        self,
        principal: Principal,
        access: DashboardAccess,
        loaders: LineageLoaders,
        dataset: DatasetRecord,
        changes: Sequence[SchemaChange],
    ) -> ReimportImpactResult:
        """What reads a column the re-import removes or retypes: the dataset's cards
        (used columns or code) and transforms (code), every card reading the output of an
        affected transform, and the dashboards the caller may see that show those cards."""
        columns = broken_columns(changes)
        if not columns:
            return ReimportImpactResult([], [], [])
        cards, transforms = await asyncio.gather(
            loaders.cards_using_dataset.load(dataset.id),
            loaders.transforms_using_dataset.load(dataset.id),
        )
        hit_transforms = [t for t in transforms if reads_broken(t.code, (), columns)]
        outputs = [t.output_dataset_id for t in hit_transforms if t.output_dataset_id]
        downstream = await loaders.cards_using_dataset.load_many(outputs)
        hit: dict[str, CardRecord] = {
            c.id: c for c in cards if reads_broken(c.code, c.used_columns, columns)
        }
        for output_cards in downstream:
            hit.update((c.id, c) for c in output_cards)
        hit_cards = list(hit.values())
        placements = await loaders.dashboards_showing_card.load_many([c.id for c in hit_cards])
        dashboard_ids = list(dict.fromkeys(d for ids in placements for d in ids))
        showing = [
            d
            for d in await loaders.dashboards.load_many(dashboard_ids)
            if d is not None and any(c in d.layout.card_ids for c in hit)
        ]
        levels = await asyncio.gather(*(access.level_on(principal.user_id, d) for d in showing))
        dashboards = [d for d, level in zip(showing, levels, strict=True) if level is not None]
        return ReimportImpactResult(hit_cards, hit_transforms, dashboards)
