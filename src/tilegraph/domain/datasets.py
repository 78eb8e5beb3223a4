"""Dataset columns and their types, as the API and the Parquet files agree on them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    """The column types a dataset can have (contract enum ColumnType)."""

    INT64 = "INT64"
    FLOAT64 = "FLOAT64"
    BOOL = "BOOL"
    DATE = "DATE"
    DATETIME = "DATETIME"
    STRING = "STRING"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a published dataset version."""

    name: str
    type: ColumnType
    nullable: bool
    description: str | None = None

    def to_item(self) -> dict[str, object]:
        item: dict[str, object] = {
            "name": self.name,
            "type": self.type.value,
            "nullable": self.nullable,
        }
        if self.description is not None:
            item["description"] = self.description
        return item

    @classmethod
    def from_item(cls, item: dict[str, object]) -> ColumnSpec:
        description = item.get("description")
        return cls(
            name=str(item["name"]),
            type=ColumnType(str(item["type"])),
            nullable=bool(item["nullable"]),
            description=str(description) if description is not None else None,
        )
