"""The run plan: everything a card run needs, decided once when the API admits the run.

The worker executes a plan as given and never re-derives any of it: which code, which
dataset versions, the filters already made concrete for each dataset's column types, the
column projection, the cache key and the limits. The job carries the plan and the execution
record stores it, so a run re-enqueued after a Redis loss executes the same plan."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.filters import (
    ColumnFilter,
    FilterKind,
    ResolvedFilter,
    resolve_filters,
)
from tilegraph.domain.policies import EffectiveAccess, RowCondition

Bound = float | date | datetime | str | None


def code_fingerprint(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def card_cache_key(
    code: str,
    params: dict[str, Any] | None,
    filters: list[dict[str, Any]],
    datasets: list[tuple[str, int]],
    access: list[tuple[str, str]] | None = None,
) -> str:
    """hash(code, params, filters, dataset ids + versions): a re-import changes a version,
    hence the key, and nothing else needs invalidating. `access` holds (dataset id, access
    fingerprint) for each dataset the reader sees only part of: readers who see different
    data never share a result, and full-access keys stay what they always were."""
    content: dict[str, Any] = {
        "code": code,
        "params": params,
        "filters": filters,
        "datasets": datasets,
    }
    if access:
        content["access"] = access
    material = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(material).hexdigest()


def _bound_to_item(value: Bound) -> dict[str, Any] | None:
    """A filter bound with its type, so a date stays a date through JSON and DynamoDB."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, float | int):
        return {"number": float(value)}
    return {"text": str(value)}


def _bound_from_item(item: dict[str, Any] | None) -> Bound:
    if not item:
        return None
    ((kind, value),) = item.items()
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "number":
        return float(value)
    return str(value)


def resolved_to_item(flt: ResolvedFilter) -> dict[str, Any]:
    return {
        "column": flt.column,
        "kind": flt.kind.value,
        "include_null": flt.include_null,
        "values": list(flt.values),
        "lower": _bound_to_item(flt.lower),
        "upper": _bound_to_item(flt.upper),
        "upper_exclusive": flt.upper_exclusive,
    }


def resolved_from_item(item: dict[str, Any]) -> ResolvedFilter:
    return ResolvedFilter(
        column=str(item["column"]),
        kind=FilterKind(item["kind"]),
        include_null=bool(item.get("include_null", False)),
        values=tuple(str(v) for v in item.get("values") or ()),
        lower=_bound_from_item(item.get("lower")),
        upper=_bound_from_item(item.get("upper")),
        upper_exclusive=bool(item.get("upper_exclusive", False)),
    )


@dataclass(frozen=True)
class RunLimits:
    timeout_seconds: float
    memory_bytes: int
    output_max_bytes: int
    # The card's table (HTMLResult.table) as an Arrow stream; plans made before tables
    # existed get the default.
    table_max_bytes: int = 16 << 20

    def to_item(self) -> dict[str, Any]:
        return {
            "timeout_seconds": float(self.timeout_seconds),
            "memory_bytes": self.memory_bytes,
            "output_max_bytes": self.output_max_bytes,
            "table_max_bytes": self.table_max_bytes,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RunLimits:
        return cls(
            timeout_seconds=float(item["timeout_seconds"]),
            memory_bytes=int(item["memory_bytes"]),
            output_max_bytes=int(item["output_max_bytes"]),
            table_max_bytes=int(item.get("table_max_bytes", 16 << 20)),
        )


def condition_to_item(condition: RowCondition | None) -> str | None:
    """A row condition as one JSON string: a policy may list a thousand values, and one
    string attribute costs the execution record and the job far less than nested lists."""
    if condition is None:
        return None
    return orjson.dumps(condition).decode()


def condition_from_item(item: str | None) -> RowCondition | None:
    if item is None:
        return None
    return tuple(
        tuple((str(column), tuple(str(v) for v in values)) for column, values in conjunct)
        for conjunct in orjson.loads(item)
    )


@dataclass(frozen=True)
class PlannedInput:
    """One dataset as the run reads it: a published version, its filters, its columns, and
    (when the reader is not its owner) the rows and columns their policies let them see,
    as resolved at admission."""

    dataset_id: str
    name: str
    version: int
    data_prefix: str
    filters: tuple[ResolvedFilter, ...]
    columns: tuple[str, ...] | None  # None: every column the reader may see
    row_condition: RowCondition | None = None  # None: every row; (): no rows
    hidden_columns: tuple[str, ...] = ()

    @property
    def policed(self) -> bool:
        """The reader sees less than all of the dataset."""
        return self.row_condition is not None or bool(self.hidden_columns)

    def to_item(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "name": self.name,
            "version": self.version,
            "data_prefix": self.data_prefix,
            "filters": [resolved_to_item(f) for f in self.filters],
            "columns": list(self.columns) if self.columns is not None else None,
            "row_condition": condition_to_item(self.row_condition),
            "hidden_columns": list(self.hidden_columns),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PlannedInput:
        columns = item.get("columns")
        return cls(
            dataset_id=str(item["dataset_id"]),
            name=str(item["name"]),
            version=int(item["version"]),
            data_prefix=str(item["data_prefix"]),
            filters=tuple(resolved_from_item(f) for f in item.get("filters") or ()),
            columns=tuple(columns) if columns is not None else None,
            row_condition=condition_from_item(item.get("row_condition")),
            hidden_columns=tuple(str(c) for c in item.get("hidden_columns") or ()),
        )


@dataclass(frozen=True)
class CardRunPlan:
    """One card run (or preview of draft code, when `card_id` is None), frozen."""

    code: str
    code_hash: str
    card_id: str | None
    params: dict[str, Any] | None
    # The filters as render() receives them, and those ignored for a missing column.
    filters: tuple[dict[str, Any], ...]
    ignored_filters: tuple[str, ...]
    inputs: tuple[PlannedInput, ...]
    cache_key: str
    use_cache: bool
    limits: RunLimits

    @property
    def cacheable(self) -> bool:
        """Only runs over published data have a stable key."""
        return self.use_cache and all(i.version > 0 for i in self.inputs)

    @property
    def policed(self) -> bool:
        """Some input is limited by the reader's policies."""
        return any(i.policed for i in self.inputs)

    @property
    def hidden_columns(self) -> tuple[str, ...]:
        return tuple(sorted({c for i in self.inputs for c in i.hidden_columns}))

    def to_item(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "code_hash": self.code_hash,
            "card_id": self.card_id,
            "params": self.params,
            "filters": [dict(f) for f in self.filters],
            "ignored_filters": list(self.ignored_filters),
            "inputs": [i.to_item() for i in self.inputs],
            "cache_key": self.cache_key,
            "use_cache": self.use_cache,
            "limits": self.limits.to_item(),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CardRunPlan:
        return cls(
            code=str(item["code"]),
            code_hash=str(item["code_hash"]),
            card_id=item.get("card_id"),
            params=item.get("params"),
            filters=tuple(dict(f) for f in item.get("filters") or ()),
            ignored_filters=tuple(item.get("ignored_filters") or ()),
            inputs=tuple(PlannedInput.from_item(i) for i in item.get("inputs") or ()),
            cache_key=str(item["cache_key"]),
            use_cache=bool(item.get("use_cache", True)),
            limits=RunLimits.from_item(item["limits"]),
        )


@dataclass(frozen=True)
class Learned:
    """What a card's last successful run used, and the code it was learned from."""

    used_columns: tuple[str, ...]
    learned_from: str | None
    unprojected_for: str | None = None


def _projection(
    learned: Learned | None, code_hash: str, dataset: DatasetRecord, hidden: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The columns the card's last run of this very code used, when the dataset still has
    them all; otherwise every column. `used_columns` are hints: code that once failed when
    projected to them (it reads a column it did not list) is never projected again. Columns
    hidden from the reader are never read."""
    if learned is None or not learned.used_columns or learned.learned_from != code_hash:
        return None
    if learned.unprojected_for == code_hash:
        return None
    names = {c.name for c in dataset.columns}
    if not set(learned.used_columns) <= names:
        return None
    return tuple(c for c in learned.used_columns if c not in hidden)


def plan_card_run(
    *,
    card_id: str | None,
    learned: Learned | None,
    code: str,
    datasets: list[DatasetRecord],
    filters: list[ColumnFilter],
    params: dict[str, Any] | None,
    use_cache: bool,
    limits: RunLimits,
    access: Mapping[str, EffectiveAccess] | None = None,
) -> CardRunPlan:
    """Resolve everything a run needs. `access` holds what the reader sees of each dataset
    they do not own (absent: all of it); a filter on a column hidden from the reader is
    ignored, as for a column the dataset lacks. Raises FilterError for a bound that cannot
    be read for its column's type."""
    code_hash = code_fingerprint(code)
    inputs = []
    known: set[str] = set()
    fingerprints = []
    for index, dataset in enumerate(datasets):
        seen = (access or {}).get(dataset.id)
        hidden = seen.hidden_columns if seen is not None else ()
        types = {c.name: c.type.value for c in dataset.columns if c.name not in hidden}
        known.update(types)
        resolved, _ = resolve_filters(filters, types)
        if seen is not None and not seen.full:
            fingerprints.append((dataset.id, seen.fingerprint()))
        inputs.append(
            PlannedInput(
                dataset_id=dataset.id,
                name=dataset.name,
                version=dataset.version,
                data_prefix=dataset.data_prefix(),
                filters=tuple(resolved),
                columns=_projection(learned, code_hash, dataset, hidden) if index == 0 else None,
                row_condition=seen.row_condition if seen is not None else None,
                hidden_columns=hidden,
            )
        )
    wire = tuple(f.to_item() for f in filters)
    return CardRunPlan(
        code=code,
        code_hash=code_hash,
        card_id=card_id,
        params=params,
        filters=wire,
        ignored_filters=tuple(f.column for f in filters if f.column not in known),
        inputs=tuple(inputs),
        cache_key=card_cache_key(
            code,
            params,
            [dict(f) for f in wire],
            [(d.id, d.version) for d in datasets],
            fingerprints,
        ),
        use_cache=use_cache,
        limits=limits,
    )
