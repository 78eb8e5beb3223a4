"""Dataset columns and their types, as the API and the Parquet files agree on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


class DatasetAccessDefault(StrEnum):
    """What a reader matching no policy of a dataset sees (contract enum
    DatasetAccessDefault); FULL, the behaviour before policies existed, when unset."""

    FULL = "FULL"
    NONE = "NONE"


class DatasetSourceType(StrEnum):
    CSV = "CSV"
    S3_CSV = "S3_CSV"
    TRANSFORM = "TRANSFORM"


KEEP_VERSIONS = 3
# Columns a dataset may have: a file with more is refused while its header is read, before
# the expensive part (typing and writing 100,000 columns took minutes and then failed).
MAX_COLUMNS = 1000

#: Cell values read as null when an import names none: the empty cell and pandas' defaults,
#: so files written for pandas-based tools keep their numeric columns numeric.
DEFAULT_NULL_VALUES: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "NULL",
    "null",
    "None",
    "NaN",
    "nan",
    "#N/A",
    "n/a",
)
#: What an import stored before null tokens could be chosen was read with: only the empty
#: cell. Its re-imports keep that rule, so they never change the dataset's types unasked.
LEGACY_NULL_VALUES: tuple[str, ...] = ("",)
MAX_NULL_VALUES = 50
MAX_NULL_VALUE_CHARS = 64


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset's metadata. `version` is the published data version (0 before the first
    successful import); `revision` guards metadata edits with optimistic locking."""

    id: str
    owner_id: str
    name: str
    description: str | None
    source_type: DatasetSourceType
    source_config: dict[str, object] | None
    version: int
    row_count: int
    columns: tuple[ColumnSpec, ...]
    created_at: datetime
    updated_at: datetime
    last_import_at: datetime | None = None
    last_import_by: str | None = None
    latest_import_id: str | None = None
    published_versions: tuple[int, ...] = ()
    revision: int = 1
    default_access: DatasetAccessDefault = DatasetAccessDefault.FULL
    # Bumped in the same transaction as every change to the dataset's policies, so a
    # reader's run knows from the record it reads anyway whether the policies it holds are
    # current. 0: never had one. None: stored before this was counted (read them always).
    policy_version: int | None = 0

    def data_prefix(self, version: int | None = None) -> str:
        return data_prefix(self.id, self.version if version is None else version)


def data_prefix(dataset_id: str, version: int) -> str:
    """Where one published version's Parquet files live in the bucket."""
    return f"datasets/{dataset_id}/v{version}/"


def versions_to_delete(published: tuple[int, ...], keep: int = KEEP_VERSIONS) -> tuple[int, ...]:
    """The versions beyond the newest `keep`, oldest first."""
    ordered = sorted(set(published))
    return tuple(ordered[:-keep]) if len(ordered) > keep else ()
