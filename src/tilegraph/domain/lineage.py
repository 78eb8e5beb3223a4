"""Lineage: how datasets, transforms, cards and dashboards feed each other, walked hop by
hop; which card placements a layout change adds and removes; and which code a re-import's
schema changes would break. Pure: the caller loads each hop's data and feeds it in."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.schema_diff import SchemaChange, SchemaChangeType

MIN_DEPTH = 1
MAX_DEPTH = 10
DEFAULT_DEPTH = 5


class LineageRelation(StrEnum):
    """How two objects are linked, always pointing downstream (where the data flows)."""

    INPUT_OF = "INPUT_OF"  # dataset → transform
    PRODUCES = "PRODUCES"  # transform → dataset
    READ_BY = "READ_BY"  # dataset → card
    SHOWN_ON = "SHOWN_ON"  # card → dashboard


class LineageDirection(StrEnum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    BOTH = "BOTH"


#: The two ways a walk can go from one object; BOTH is the union of the two.
UP = LineageDirection.UPSTREAM
DOWN = LineageDirection.DOWNSTREAM


@dataclass(frozen=True)
class LineageEdge:
    from_id: str
    to_id: str
    relation: LineageRelation

    def far_end(self, near_id: str) -> str:
        return self.to_id if near_id == self.from_id else self.from_id


def check_depth(depth: int) -> int:
    if not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise BadUserInput(f"The depth must be {MIN_DEPTH} to {MAX_DEPTH}", field="depth")
    return depth


#: One step still to take: an object reached and the way to go on from it.
Step = tuple[str, LineageDirection]


@dataclass
class LineageWalk:
    """A breadth-first walk from `root_id`, `depth` hops at most. BOTH walks upstream and
    downstream separately from the root (the union of the two graphs: it never turns back,
    so a dataset's upstream never lists its sibling cards). Each hop, the caller loads the
    edges leaving the `frontier` and says which far ends the caller may see (`advance`):
    those are listed and walked on; the others are only counted (`hidden`) and never
    walked through, so nothing behind an object the caller may not see is revealed."""

    root_id: str
    direction: LineageDirection
    depth: int
    hops: int = 0
    # Listed objects in the order they were reached (the root first).
    visible: dict[str, None] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    edges: dict[LineageEdge, None] = field(default_factory=dict)
    frontier: list[Step] = field(default_factory=list)
    _walked: set[Step] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.visible[self.root_id] = None
        ways = [UP, DOWN] if self.direction is LineageDirection.BOTH else [self.direction]
        self.frontier = [(self.root_id, way) for way in ways]
        self._walked.update(self.frontier)

    @property
    def done(self) -> bool:
        return not self.frontier or self.hops >= self.depth

    def advance(self, found: Sequence[tuple[Step, LineageEdge]], shown: Collection[str]) -> None:
        """One hop: `found` pairs each frontier step with an edge it leads along (an edge
        whose far end does not exist is left out by the caller); `shown` holds the far ends
        the caller may see. An object hidden one way and shown another is listed."""
        next_frontier: list[Step] = []
        for (near_id, way), edge in found:
            far_id = edge.far_end(near_id)
            if far_id not in shown:
                if far_id not in self.visible:
                    self.hidden.add(far_id)
                continue
            self.hidden.discard(far_id)
            self.visible.setdefault(far_id, None)
            self.edges.setdefault(edge, None)
            step = (far_id, way)
            if step not in self._walked:
                self._walked.add(step)
                next_frontier.append(step)
        self.frontier = next_frontier
        self.hops += 1

    @property
    def node_ids(self) -> list[str]:
        """Every listed object, the root included, in the order reached."""
        return list(self.visible)

    @property
    def hidden_count(self) -> int:
        return len(self.hidden - self.visible.keys())


def walk_loaded(
    root_id: str,
    direction: LineageDirection,
    depth: int,
    neighbours: Callable[[Step], Iterable[LineageEdge]],
    may_see: Callable[[str, LineageEdge], bool],
) -> LineageWalk:
    """The walk over data already at hand: `neighbours` gives the edges leaving an object
    the given way, `may_see` whether the caller may see an edge's far end reached along it."""
    walk = LineageWalk(root_id, direction, check_depth(depth))
    while not walk.done:
        found = [(step, edge) for step in walk.frontier for edge in neighbours(step)]
        shown = {
            edge.far_end(step[0]) for step, edge in found if may_see(edge.far_end(step[0]), edge)
        }
        walk.advance(found, shown)
    return walk


# ---------------------------------------------------------------- placements


@dataclass(frozen=True)
class PlacementChanges:
    """The (card, dashboard) index entries to write and delete for one layout change."""

    added: tuple[str, ...]
    removed: tuple[str, ...]


def placement_changes(before: Sequence[str], after: Sequence[str]) -> PlacementChanges:
    """Card ids that enter and leave a dashboard's layout (before → after), each once; a
    created dashboard has no `before`, a deleted one no `after`."""
    old, new = dict.fromkeys(before), dict.fromkeys(after)
    return PlacementChanges(
        added=tuple(c for c in new if c not in old),
        removed=tuple(c for c in old if c not in new),
    )


# ---------------------------------------------------------------- re-import impact


def broken_columns(changes: Iterable[SchemaChange]) -> set[str]:
    """The columns a re-import removes or retypes: code that reads them may break."""
    return {
        c.column_name
        for c in changes
        if c.change_type in {SchemaChangeType.REMOVED, SchemaChangeType.TYPE_CHANGED}
    }


def code_mentions(code: str, columns: Collection[str]) -> bool:
    """True when the code names one of the columns as a string literal ('col' or "col"),
    the way pandas code reads a column (df["col"], usecols=['col'] …)."""
    if not columns:
        return False
    literals = "|".join(re.escape(c) for c in sorted(columns))
    return re.search(rf"""(['"])(?:{literals})\1""", code) is not None


def reads_broken(code: str, used_columns: Collection[str], columns: Collection[str]) -> bool:
    """Whether a card (its learned used columns and its code) or a transform (its code;
    no used columns) reads a removed or retyped column."""
    return bool(set(used_columns) & set(columns)) or code_mentions(code, columns)
