from __future__ import annotations

from graphql import build_schema, parse

from tilegraph.schema.limits import Measure, QueryLimits, limit_violation, measure_document

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
