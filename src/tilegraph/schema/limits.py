"""Depth, alias, directive and cost limits, checked on the parsed document before
validation or execution (schema/admission.py runs them). Fragments are measured once each,
so a "fragment bomb" costs linear time to reject.

The cost estimate counts every field once, times what its list may hold: a connection
its `first`, a `limit` argument its value, `ids` their number, and a plain list the bound
its rules give it (a dashboard holds at most so many cards) or, for lists without one, a
configured default. Fields that read stored data (a preview) weigh more than one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_list_type,
)

MULTIPLIER_ARGS = ("first", "limit")
LIST_MULTIPLIER_ARG = "ids"  # a list of ids asks for that many objects


@dataclass(frozen=True)
class CostModel:
    # "Type.field" -> the most items that plain list can hold.
    list_bounds: Mapping[str, int] = field(default_factory=dict)
    # What a plain list without a bound counts as.
    list_default: int = 1
    # "Type.field" -> the cost of resolving that field once (1 when absent).
    weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int
    max_aliases: int
    max_directives: int
    max_cost: int
    costs: CostModel = field(default_factory=CostModel)


@dataclass(frozen=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    directives: int = 0
    cost: int = 0

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.directives + other.directives,
            self.cost + other.cost,
        )


class _Analyzer:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        costs: CostModel,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.costs = costs
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, Measure] = {}
        self.in_progress: set[str] = set()

    def operation(self, op: OperationDefinitionNode) -> Measure:
        root = {
            "query": self.schema.query_type,
            "mutation": self.schema.mutation_type,
            "subscription": self.schema.subscription_type,
        }[op.operation.value]
        return self.selection_set(op.selection_set, root) + Measure(
            directives=len(op.directives or ())
        )

    def selection_set(self, selection_set: SelectionSetNode | None, parent: Any) -> Measure:
        total = Measure()
        if selection_set is None:
            return total
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total = total + self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                type_ = parent
                if selection.type_condition is not None:
                    type_ = self.schema.get_type(selection.type_condition.name.value) or parent
                total = (
                    total
                    + self.selection_set(selection.selection_set, type_)
                    + Measure(directives=len(selection.directives or ()))
                )
            elif isinstance(selection, FragmentSpreadNode):
                total = (
                    total
                    + self.fragment(selection.name.value)
                    + Measure(directives=len(selection.directives or ()))
                )
        return total

    def fragment(self, name: str) -> Measure:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return Measure()  # unknown or cyclic: validation reports it
        self.in_progress.add(name)
        type_ = self.schema.get_type(definition.type_condition.name.value)
        measure = self.selection_set(definition.selection_set, type_) + Measure(
            directives=len(definition.directives or ())
        )
        self.in_progress.discard(name)
        self.memo[name] = measure
        return measure

    def field(self, node: FieldNode, parent: Any) -> Measure:
        name = node.name.value
        own = Measure(aliases=1 if node.alias else 0, directives=len(node.directives or ()))
        if name.startswith("__"):
            return own  # introspection is governed by its own setting
        field_def = None
        key = ""
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            field_def = parent.fields.get(name)
            key = f"{parent.name}.{name}"
        child_type = get_named_type(field_def.type) if field_def is not None else None
        children = self.selection_set(node.selection_set, child_type)
        multiplier = self.multiplier(node, field_def)
        if multiplier is None:
            multiplier = self.list_bound(key, field_def)
        return own + Measure(
            depth=children.depth + 1,
            aliases=children.aliases,
            directives=children.directives,
            cost=self.costs.weights.get(key, 1) + multiplier * children.cost,
        )

    def list_bound(self, key: str, field_def: Any) -> int:
        """How many items a plain list field counts for (1 for anything else)."""
        if field_def is None:
            return 1
        type_ = field_def.type
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if not is_list_type(type_):
            return 1
        type_name, _, field_name = key.partition(".")
        if type_name.endswith("Connection") and field_name in ("edges", "nodes"):
            return 1  # a page, already counted by the connection's `first`
        return self.costs.list_bounds.get(key, self.costs.list_default)

    def multiplier(self, node: FieldNode, field_def: Any) -> int | None:
        """What a `first`/`limit`/`ids` argument asks for; None when the field has none."""
        for arg_name in MULTIPLIER_ARGS:
            if field_def is None or arg_name not in field_def.args:
                continue
            value: Any = _default_int(field_def.args[arg_name])
            for arg in node.arguments or ():
                if arg.name.value != arg_name:
                    continue
                if isinstance(arg.value, IntValueNode):
                    value = int(arg.value.value)
                elif isinstance(arg.value, VariableNode):
                    given = self.variables.get(arg.value.name.value)
                    value = value if given is None else given
            if isinstance(value, int):
                return max(value, 1)
        return self.list_length(node, LIST_MULTIPLIER_ARG)

    def list_length(self, node: FieldNode, arg_name: str) -> int | None:
        """How many objects a list argument (`nodes(ids:)`) asks for."""
        for arg in node.arguments or ():
            if arg.name.value != arg_name:
                continue
            if isinstance(arg.value, ListValueNode):
                return len(arg.value.values)
            if isinstance(arg.value, VariableNode):
                value = self.variables.get(arg.value.name.value)
                return len(value) if isinstance(value, list) else None
        return None


def _default_int(argument: Any) -> int | None:
    """An argument's default, whether set in code or only as an SDL literal."""
    value = argument.default_value
    if isinstance(value, int):
        return value
    default = getattr(argument, "default", None)
    literal = getattr(default, "literal", None)
    if isinstance(literal, IntValueNode):
        return int(literal.value)
    return None


def measure_document(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    costs: CostModel | None = None,
) -> Measure:
    """The worst operation's measure (a document may hold several)."""
    analyzer = _Analyzer(schema, document, variables or {}, costs or CostModel())
    worst = Measure()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            m = analyzer.operation(definition)
            worst = Measure(
                max(worst.depth, m.depth),
                max(worst.aliases, m.aliases),
                max(worst.directives, m.directives),
                max(worst.cost, m.cost),
            )
    return worst


def limit_violation(measure: Measure, limits: QueryLimits) -> str | None:
    if measure.depth > limits.max_depth:
        return f"The query is nested {measure.depth} levels deep; the limit is {limits.max_depth}"
    if measure.aliases > limits.max_aliases:
        return f"The query uses {measure.aliases} aliases; the limit is {limits.max_aliases}"
    if measure.directives > limits.max_directives:
        return (
            f"The query uses {measure.directives} directives; the limit is {limits.max_directives}"
        )
    if measure.cost > limits.max_cost:
        return f"The query's estimated cost is {measure.cost}; the limit is {limits.max_cost}"
    return None
