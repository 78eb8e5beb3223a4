"""What a re-import would change in a dataset's schema, so it can be refused unless forced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tilegraph.domain.datasets import ColumnSpec


class SchemaChangeType(StrEnum):
    """Kinds of schema change (contract enum SchemaChangeType)."""

    ADDED = "ADDED"
    REMOVED = "REMOVED"
    TYPE_CHANGED = "TYPE_CHANGED"
    NULLABLE_CHANGED = "NULLABLE_CHANGED"


@dataclass(frozen=True)
class SchemaChange:
    """One column's change; values are column types ("INT64"…) or nullability ("true"/"false")."""

    column_name: str
    change_type: SchemaChangeType
    old_value: str | None
    new_value: str | None


def diff_schemas(old: Sequence[ColumnSpec], new: Sequence[ColumnSpec]) -> list[SchemaChange]:
    """The changes from ``old`` to ``new``, matching columns by exact name.

    Changes come in the new schema's column order, then removed columns in the old order. A
    nullability change is only reported when the type stayed the same: a type change already
    makes the re-import incompatible, and one change per column reads better.
    """
    before = {column.name: column for column in old}
    after = {column.name for column in new}
    changes: list[SchemaChange] = []
    for column in new:
        previous = before.get(column.name)
        if previous is None:
            changes.append(
                SchemaChange(column.name, SchemaChangeType.ADDED, None, column.type.value)
            )
        elif previous.type != column.type:
            changes.append(
                SchemaChange(
                    column.name,
                    SchemaChangeType.TYPE_CHANGED,
                    previous.type.value,
                    column.type.value,
                )
            )
        elif previous.nullable != column.nullable:
            changes.append(
                SchemaChange(
                    column.name,
                    SchemaChangeType.NULLABLE_CHANGED,
                    _flag(previous.nullable),
                    _flag(column.nullable),
                )
            )
    changes.extend(
        SchemaChange(column.name, SchemaChangeType.REMOVED, column.type.value, None)
        for column in old
        if column.name not in after
    )
    return changes


def _flag(value: bool) -> str:
    return "true" if value else "false"
