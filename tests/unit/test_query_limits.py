from __future__ import annotations

from graphql import build_schema, parse

from tilegraph.auth.budget import RequestBudget
from tilegraph.schema.admission import Scan, scan
from tilegraph.schema.limits import (
    CostModel,
    Measure,
    QueryLimits,
    limit_violation,
    measure_document,
)

SCHEMA = build_schema("""
type Query { items(first: Int = 50): Conn  me: User  nodes(ids: [ID!]!): [User]! }
type Conn { edges: [Edge] }
type Edge { node: User }
type User { id: ID friends(first: Int = 10): Conn }
""")


def test_depth_aliases_directives_and_cost() -> None:
    doc = parse("{ a: me { id } b: me { id @include(if: true) } }")
    measure = measure_document(SCHEMA, doc)
    assert measure == Measure(depth=2, aliases=2, directives=1, cost=4)


def test_connections_multiply_their_children_by_first_or_its_default() -> None:
    explicit = measure_document(SCHEMA, parse("{ items(first: 10) { edges { node { id } } } }"))
    assert explicit.cost == 1 + 10 * 3
    default = measure_document(SCHEMA, parse("{ items { edges { node { id } } } }"))
    assert default.cost == 1 + 50 * 3
    variable = measure_document(
        SCHEMA, parse("query($n: Int) { items(first: $n) { edges { node { id } } } }"), {"n": 7}
    )
    assert variable.cost == 1 + 7 * 3
    nested = measure_document(
        SCHEMA,
        parse(
            "{ items(first: 100) { edges { node { friends(first: 100) { edges { node { id } } } } } } }"
        ),
    )
    assert nested.cost > 100 * 100


def test_a_list_of_ids_multiplies_its_children_by_its_length() -> None:
    literal = measure_document(SCHEMA, parse('{ nodes(ids: ["a", "b", "c"]) { id } }'))
    assert literal.cost == 1 + 3 * 1
    variable = measure_document(
        SCHEMA, parse("query($i: [ID!]!) { nodes(ids: $i) { id } }"), {"i": ["x"] * 40}
    )
    assert variable.cost == 1 + 40 * 1


def test_fragments_are_measured_once_and_cycles_do_not_hang() -> None:
    parts = ["fragment F0 on User { id }"] + [
        f"fragment F{n} on User {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 60)
    ]
    bomb = measure_document(SCHEMA, parse("{ me { ...F59 } } " + " ".join(parts)))
    assert bomb.cost > 2**50
    cyclic = parse("{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }")
    assert measure_document(SCHEMA, cyclic).depth == 1


def test_violations_are_described() -> None:
    limits = QueryLimits(max_depth=3, max_aliases=2, max_directives=1, max_cost=10)
    assert limit_violation(Measure(depth=3, aliases=2, directives=1, cost=10), limits) is None
    assert "nested 4 levels" in (limit_violation(Measure(depth=4), limits) or "")
    assert "3 aliases" in (limit_violation(Measure(aliases=3), limits) or "")
    assert "2 directives" in (limit_violation(Measure(directives=2), limits) or "")
    assert "cost is 11" in (limit_violation(Measure(cost=11), limits) or "")


BOARDS = build_schema("""
type Query { dashboard(id: ID!): Dashboard  datasets(first: Int = 50): DatasetConnection }
type Dashboard { id: ID cards: [Card!]! shares: [Share!]! }
type Card { id: ID name: String datasets: [Dataset!]! }
type Dataset { id: ID preview(limit: Int = 100): Preview columns: [String!]! }
type Preview { rows: [String] }
type Share { id: ID }
type DatasetConnection { edges: [DatasetEdge] nodes: [Dataset] }
type DatasetEdge { node: Dataset }
""")
COSTS = CostModel(
    list_bounds={"Dashboard.cards": 200, "Card.datasets": 10},
    list_default=20,
    weights={"Dataset.preview": 100},
)


def test_plain_lists_count_their_bound_and_reads_their_weight() -> None:
    cards = measure_document(
        BOARDS, parse("{ dashboard(id: 1) { cards { id name } } }"), costs=COSTS
    )
    assert cards.cost == 1 + 1 + 200 * 2
    unbounded = measure_document(
        BOARDS, parse("{ dashboard(id: 1) { shares { id } } }"), costs=COSTS
    )
    assert unbounded.cost == 1 + 1 + 20 * 1
    scalars = measure_document(
        BOARDS, parse("{ dashboard(id: 1) { cards { datasets { columns } } } }"), costs=COSTS
    )
    assert scalars.cost == 1 + 1 + 200 * (1 + 10 * 1)  # a list of scalars has no children
    previews = measure_document(
        BOARDS,
        parse("{ dashboard(id: 1) { cards { datasets { preview(limit: 1) { rows } } } } }"),
        costs=COSTS,
    )
    assert previews.cost == 1 + 1 + 200 * (1 + 10 * (100 + 1 * 1))
    # The shape of issue 12: ten aliases of a full dashboard, a preview under every card.
    aliases = " ".join(
        f"d{i}: dashboard(id: 1) {{ cards {{ datasets {{ preview(limit: 100) {{ rows }} }} }} }}"
        for i in range(10)
    )
    attack = measure_document(BOARDS, parse("{ " + aliases + " }"), costs=COSTS)
    assert attack.cost > 10 * 200 * 10 * 100
    # Without the model (the old estimate) the same query looked cheap.
    assert measure_document(BOARDS, parse("{ " + aliases + " }")).cost < 10_000


def test_a_connections_page_is_counted_once_by_first() -> None:
    page = measure_document(
        BOARDS, parse("{ datasets(first: 10) { edges { node { id } } nodes { id } } }"), costs=COSTS
    )
    assert page.cost == 1 + 10 * ((1 + 2) + (1 + 1))  # edges and nodes are not lists of 20


def test_the_lexer_counts_tokens_and_selections_without_parsing() -> None:
    assert scan("{ a: me { id } b: me { id @include(if: true) } }", 100) == Scan(21, 4)
    text = """query Q($a: Int = 3) { users(query: "x {", limit: $a) { id ... on User { name } ...F } }
    fragment F on User { email role { x } }  # a comment { is no token"""
    assert scan(text, 100) == Scan(44, 8)
    assert scan("{ " + "me{id} " * 1250 + "}", 10_000).selections == 2500
    assert scan("{ " + "a " * 50 + "}", 10).tokens == 11  # stops just past the limit


def test_the_request_budget_refills_over_time() -> None:
    now = [0.0]
    budget = RequestBudget(60, max_keys=2, clock=lambda: now[0])
    assert all(budget.take("a") is None for _ in range(60))
    wait = budget.take("a")
    assert wait is not None and 0.9 < wait <= 1.0
    now[0] += 1.0
    assert budget.take("a") is None and budget.take("a") is not None
    assert budget.take("b") is None  # another address has its own budget
    budget.take("c")  # the least recently seen address is forgotten past max_keys
    assert len(budget._buckets) == 2
    assert RequestBudget(0).take("a") is None  # 0 turns it off
