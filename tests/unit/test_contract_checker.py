"""The contract checker itself must catch the mistakes it exists for."""

from graphql import build_schema

from tests.contract import compare

BASE = """
directive @requiresRole(role: Role!) on FIELD_DEFINITION
enum Role { ADMIN USER }
type Query { groups(first: Int = 50, after: String): [String!]! @requiresRole(role: ADMIN) }
"""


def test_identical_schema_has_no_problems() -> None:
    assert compare(build_schema(BASE), build_schema(BASE)) == []


def test_nullability_default_and_directive_changes_are_caught() -> None:
    changed = """
    directive @requiresRole(role: Role!) on FIELD_DEFINITION
    enum Role { ADMIN USER }
    type Query { groups(first: Int! = 50, after: String = null): [String!]! }
    """
    problems = compare(build_schema(BASE), build_schema(changed))
    assert any("groups(first): type Int! != contract Int" in p for p in problems)
    assert any("groups(after): default null" in p for p in problems)
    assert any("directive @requiresRole(role: ADMIN) missing" in p for p in problems)


def test_additions_are_allowed() -> None:
    added = BASE.replace(
        "enum Role { ADMIN USER }", "enum Role { ADMIN USER GUEST }\ntype Extra { a: Int }"
    )
    assert compare(build_schema(BASE), build_schema(added)) == []


def test_an_adopted_addition_is_checked_like_the_base() -> None:
    """Additions extend the base contract; what they add is then required."""
    addition = """
    interface Node { id: ID! }
    type Item implements Node { id: ID! }
    extend type Query { nodes(ids: [ID!]!): [Node]! }
    """
    have = BASE + "interface Node { id: ID! }\ntype Item implements Node { id: ID! }"
    problems = compare(build_schema(BASE + addition), build_schema(have))
    assert problems == ["Query.nodes missing"]
