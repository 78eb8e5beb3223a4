"""Dataset policies (row filters and hidden columns per user or group) and the one rule that
turns a reader's policies into what they see of a dataset.

The result's `row_condition` is canonical: attributes resolved to literal values, every
list sorted and deduplicated, policies combined as an OR of ANDs. Two readers with the same
access get equal (and equally hashed) conditions, so the condition can key caches and be
pushed down into a Parquet read unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import DatasetAccessDefault
from tilegraph.domain.errors import BadUserInput

MAX_ROW_FILTERS = 50
MAX_FILTER_VALUES = 1000
MAX_VALUE_CHARS = 1000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME_CHARS = 100
MAX_ATTRIBUTE_VALUES = 100

#: A user's attributes: name → one string or a list of strings.
Attributes = Mapping[str, "str | Sequence[str]"]


@dataclass(frozen=True)
class PolicyRowFilter:
    """One condition on one column: its value is one of `values`, or equals the reader's
    attribute `user_attribute`. Exactly one of the two is set (check_row_filters)."""

    column: str
    values: tuple[str, ...] | None = None
    user_attribute: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"column": self.column}
        if self.values is not None:
            item["values"] = list(self.values)
        if self.user_attribute is not None:
            item["user_attribute"] = self.user_attribute
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> PolicyRowFilter:
        values = item.get("values")
        return cls(
            column=str(item["column"]),
            values=tuple(str(v) for v in values) if values is not None else None,
            user_attribute=item.get("user_attribute"),
        )

    def readable(self) -> str:
        if self.user_attribute is not None:
            return f"{self.column} = user.{self.user_attribute}"
        return f"{self.column} in ({', '.join(sorted(set(self.values or ())))})"


@dataclass(frozen=True)
class DatasetPolicyRecord:
    """What one user or group (the target) sees of one dataset; one per (dataset, target)."""

    id: str
    dataset_id: str
    target_type: ShareTargetType
    target_id: str
    row_filters: tuple[PolicyRowFilter, ...]
    hidden_columns: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 1

    def readable_condition(self) -> str | None:
        """The policy's row filters in words; None when it shows every row."""
        if not self.row_filters:
            return None
        return " AND ".join(f.readable() for f in self.row_filters)


# A conjunction: (column, allowed values) pairs, sorted by column; () holds for every row.
Conjunct = tuple[tuple[str, tuple[str, ...]], ...]
#: A disjunction of conjunctions, sorted; () holds for no row.
RowCondition = tuple[Conjunct, ...]


@dataclass(frozen=True)
class EffectiveAccess:
    """What one reader sees of one dataset. `row_condition` None: every row."""

    policies: tuple[DatasetPolicyRecord, ...]
    row_condition: RowCondition | None
    hidden_columns: tuple[str, ...]
    readable_condition: str | None

    @property
    def full(self) -> bool:
        return self.row_condition is None and not self.hidden_columns

    @property
    def any_rows(self) -> bool:
        return self.row_condition is None or bool(self.row_condition)

    def canonical(self) -> tuple[RowCondition | None, tuple[str, ...]]:
        """The concrete access, hashable: equal for readers who see the same, whatever
        policies got them there."""
        return (self.row_condition, self.hidden_columns)

    def fingerprint(self) -> str:
        """A short stable digest of `canonical()`, for cache and summary keys."""
        encoded = json.dumps(self.canonical(), separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()[:32]


FULL_ACCESS = EffectiveAccess(
    policies=(), row_condition=None, hidden_columns=(), readable_condition=None
)
NO_ROWS = "no rows"


def _attribute_values(attributes: Attributes, name: str) -> tuple[str, ...] | None:
    value = attributes.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _conjunct(policy: DatasetPolicyRecord, attributes: Attributes) -> Conjunct | None:
    """The policy's filters as one conjunction with attributes substituted; None when it
    can match no row (a missing attribute, or no value left for some column)."""
    allowed: dict[str, set[str]] = {}
    for row_filter in policy.row_filters:
        if row_filter.user_attribute is not None:
            values = _attribute_values(attributes, row_filter.user_attribute)
            if values is None:
                return None  # fail closed
        else:
            values = row_filter.values or ()
        found = set(values)
        allowed[row_filter.column] = (
            allowed[row_filter.column] & found if row_filter.column in allowed else found
        )
        if not allowed[row_filter.column]:
            return None
    return tuple((column, tuple(sorted(allowed[column]))) for column in sorted(allowed))


def _combined_condition(
    policies: Sequence[DatasetPolicyRecord], attributes: Attributes
) -> RowCondition | None:
    """A row is visible when any policy shows it."""
    conjuncts: set[Conjunct] = set()
    for policy in policies:
        conjunct = _conjunct(policy, attributes)
        if conjunct == ():
            return None  # this policy shows every row, so the union does too
        if conjunct is not None:
            conjuncts.add(conjunct)
    return tuple(sorted(conjuncts))


def _readable(
    policies: Sequence[DatasetPolicyRecord], condition: RowCondition | None
) -> str | None:
    if condition is None:
        return None
    parts = [p.readable_condition() for p in policies]
    words = [p for p in parts if p is not None]
    if not words:
        return NO_ROWS
    if len(words) == 1:
        return words[0]
    return " OR ".join(f"({w})" for w in words)


def _from_policies(
    policies: Sequence[DatasetPolicyRecord], attributes: Attributes
) -> EffectiveAccess:
    ordered = tuple(sorted(policies, key=lambda p: (p.target_type.value, p.target_id)))
    condition = _combined_condition(ordered, attributes)
    hidden = set(ordered[0].hidden_columns)
    for policy in ordered[1:]:
        hidden &= set(policy.hidden_columns)  # hidden only when every policy hides it
    return EffectiveAccess(
        policies=ordered,
        row_condition=condition,
        hidden_columns=tuple(sorted(hidden)),
        readable_condition=_readable(ordered, condition),
    )


def resolve_access(
    *,
    owner_id: str,
    default_access: DatasetAccessDefault,
    policies: Sequence[DatasetPolicyRecord],
    reader_id: str,
    reader_group_ids: Collection[str],
    reader_attributes: Attributes,
) -> EffectiveAccess:
    """The owner sees everything; a reader with a USER policy gets that policy alone;
    otherwise the reader's GROUP policies combine; with none, the dataset's default."""
    if reader_id == owner_id:
        return FULL_ACCESS
    for policy in policies:
        if policy.target_type is ShareTargetType.USER and policy.target_id == reader_id:
            return _from_policies([policy], reader_attributes)
    groups = set(reader_group_ids)
    matching = [
        p for p in policies if p.target_type is ShareTargetType.GROUP and p.target_id in groups
    ]
    if matching:
        return _from_policies(matching, reader_attributes)
    if default_access is DatasetAccessDefault.NONE:
        return EffectiveAccess(
            policies=(), row_condition=(), hidden_columns=(), readable_condition=NO_ROWS
        )
    return FULL_ACCESS


# ---------------------------------------------------------------- input rules


def check_row_filters(
    filters: Sequence[PolicyRowFilter], columns: Collection[str], *, field: str = "rowFilters"
) -> tuple[PolicyRowFilter, ...]:
    """Each filter names a column of the dataset and exactly one of values/userAttribute."""
    if len(filters) > MAX_ROW_FILTERS:
        raise BadUserInput(f"At most {MAX_ROW_FILTERS} row filters are allowed", field=field)
    checked = []
    for index, row_filter in enumerate(filters):
        where = f"{field}[{index}]"
        if row_filter.column not in columns:
            raise BadUserInput(
                f"The dataset has no column {row_filter.column!r}", field=f"{where}.column"
            )
        if (row_filter.values is None) == (row_filter.user_attribute is None):
            raise BadUserInput("Give exactly one of `values` and `userAttribute`", field=where)
        if row_filter.values is not None:
            if len(row_filter.values) > MAX_FILTER_VALUES:
                raise BadUserInput(
                    f"At most {MAX_FILTER_VALUES} values are allowed", field=f"{where}.values"
                )
            if any(len(v) > MAX_VALUE_CHARS for v in row_filter.values):
                raise BadUserInput(
                    f"Values must be at most {MAX_VALUE_CHARS} characters",
                    field=f"{where}.values",
                )
        if row_filter.user_attribute is not None:
            _check_attribute_name(row_filter.user_attribute, field=f"{where}.userAttribute")
        checked.append(row_filter)
    return tuple(checked)


def check_hidden_columns(
    hidden: Sequence[str], columns: Collection[str], *, field: str = "hiddenColumns"
) -> tuple[str, ...]:
    for index, column in enumerate(hidden):
        if column not in columns:
            raise BadUserInput(f"The dataset has no column {column!r}", field=f"{field}[{index}]")
    return tuple(dict.fromkeys(hidden))


def _check_attribute_name(name: str, *, field: str) -> None:
    if not name or len(name) > MAX_ATTRIBUTE_NAME_CHARS:
        raise BadUserInput(
            f"An attribute name has 1 to {MAX_ATTRIBUTE_NAME_CHARS} characters", field=field
        )


def check_attributes(value: Any, *, field: str = "attributes") -> dict[str, str | list[str]]:
    """A JSON object of at most 50 names, each a string or a list of at most 100 strings."""
    if not isinstance(value, dict):
        raise BadUserInput("`attributes` must be a JSON object", field=field)
    if len(value) > MAX_ATTRIBUTES:
        raise BadUserInput(f"At most {MAX_ATTRIBUTES} attributes are allowed", field=field)
    checked: dict[str, str | list[str]] = {}
    for name, item in value.items():
        where = f"{field}.{name}"
        _check_attribute_name(name, field=where)
        if isinstance(item, str):
            values = [item]
        elif isinstance(item, list) and all(isinstance(v, str) for v in item):
            values = item
            if len(values) > MAX_ATTRIBUTE_VALUES:
                raise BadUserInput(
                    f"An attribute has at most {MAX_ATTRIBUTE_VALUES} values", field=where
                )
        else:
            raise BadUserInput("An attribute is a string or a list of strings", field=where)
        if any(len(v) > MAX_VALUE_CHARS for v in values):
            raise BadUserInput(
                f"Attribute values must be at most {MAX_VALUE_CHARS} characters", field=where
            )
        checked[name] = item if isinstance(item, str) else list(item)
    return checked
