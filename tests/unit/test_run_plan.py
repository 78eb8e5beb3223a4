"""The run plan's pure rules: filters resolved per dataset, projection only for the code it
was learned from, and a plan that survives its trip through the job and the record."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest

from tilegraph.domain.datasets import ColumnSpec, ColumnType, DatasetRecord, DatasetSourceType
from tilegraph.domain.filters import ColumnFilter, FilterError, FilterKind
from tilegraph.domain.policies import FULL_ACCESS, EffectiveAccess
from tilegraph.domain.runs import CardRunPlan, Learned, RunLimits, code_fingerprint, plan_card_run

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = RunLimits(10.0, 1 << 30, 1 << 20)
CODE = "def render(dataset, filters, params):\n    return 'x'"


def dataset(dataset_id: str, version: int, **columns: ColumnType) -> DatasetRecord:
    return DatasetRecord(
        id=dataset_id,
        owner_id="usr_a",
        name=dataset_id,
        description=None,
        source_type=DatasetSourceType.CSV,
        source_config=None,
        version=version,
        row_count=1,
        columns=tuple(ColumnSpec(n, t, True) for n, t in columns.items()),
        created_at=NOW,
        updated_at=NOW,
    )


SALES = dataset("ds_sales", 3, day=ColumnType.DATE, amount=ColumnType.INT64, note=ColumnType.STRING)
EVENTS = dataset("ds_events", 1, day=ColumnType.DATETIME)


def plan(learned: Learned | None = None, **options: object) -> CardRunPlan:
    arguments: dict[str, object] = {
        "card_id": "card_1",
        "learned": learned,
        "code": CODE,
        "datasets": [SALES, EVENTS],
        "filters": [ColumnFilter("day", start="2024-01-01", end="2024-01-31")],
        "params": {"n": 1},
        "use_cache": True,
        "limits": LIMITS,
    }
    arguments.update(options)
    return plan_card_run(**arguments)  # type: ignore[arg-type]


def test_filters_are_resolved_for_each_datasets_own_column_types() -> None:
    made = plan()
    on_sales, on_events = (i.filters[0] for i in made.inputs)
    assert on_sales.kind is FilterKind.DATE_RANGE and on_sales.upper == date(2024, 1, 31)
    assert on_events.upper == datetime(2024, 2, 1) and on_events.upper_exclusive
    assert made.inputs[0].data_prefix == SALES.data_prefix()
    assert [i.version for i in made.inputs] == [3, 1]


def test_filters_on_missing_columns_are_ignored_and_named() -> None:
    made = plan(filters=[ColumnFilter("region", values=("north",))])
    assert made.ignored_filters == ("region",)
    assert all(i.filters == () for i in made.inputs)


def test_an_unreadable_bound_is_refused_when_planning() -> None:
    with pytest.raises(FilterError):
        plan(filters=[ColumnFilter("amount", start="lots")])


@pytest.mark.parametrize(
    ("learned", "columns"),
    [
        (None, None),
        (Learned(("amount",), code_fingerprint(CODE)), ("amount",)),
        (Learned(("amount",), code_fingerprint("other code")), None),
        (Learned(("amount", "gone"), code_fingerprint(CODE)), None),
    ],
    ids=["nothing learned", "learned from this code", "other code", "column gone"],
)
def test_projection_only_for_the_code_it_was_learned_from(
    learned: Learned | None, columns: tuple[str, ...] | None
) -> None:
    made = plan(learned)
    assert made.inputs[0].columns == columns
    assert made.inputs[1].columns is None  # only the first dataset is projected


def test_the_cache_key_changes_with_what_the_result_depends_on() -> None:
    base = plan().cache_key
    assert plan().cache_key == base
    assert plan(params={"n": 2}).cache_key != base
    assert plan(filters=[]).cache_key != base
    assert plan(datasets=[SALES]).cache_key != base
    assert plan(code=CODE + "\n").cache_key != base
    assert not plan(datasets=[dataset("ds_new", 0, a=ColumnType.INT64)]).cacheable
    assert not plan(use_cache=False).cacheable


def test_a_plan_survives_json_as_the_job_and_the_record_carry_it() -> None:
    made = plan(learned=Learned(("amount",), code_fingerprint(CODE)))
    assert CardRunPlan.from_item(orjson.loads(orjson.dumps(made.to_item()))) == made


def access(condition: object, hidden: tuple[str, ...] = ()) -> EffectiveAccess:
    return EffectiveAccess(
        policies=(),
        row_condition=condition,  # type: ignore[arg-type]
        hidden_columns=hidden,
        readable_condition=None,
    )


WEST_ONLY = access(((("note", ("west",)),),), ("amount",))


def test_a_readers_access_is_frozen_into_the_plan_and_survives_json() -> None:
    made = plan(access={SALES.id: WEST_ONLY})
    sales, events = made.inputs
    assert sales.row_condition == WEST_ONLY.row_condition
    assert sales.hidden_columns == ("amount",) and sales.policed
    assert not events.policed and made.policed
    assert CardRunPlan.from_item(orjson.loads(orjson.dumps(made.to_item()))) == made
    no_rows = plan(access={SALES.id: access(())})
    assert CardRunPlan.from_item(orjson.loads(orjson.dumps(no_rows.to_item()))) == no_rows


def test_hidden_columns_are_never_projected_nor_filtered() -> None:
    learned = Learned(("amount", "note"), code_fingerprint(CODE))
    made = plan(
        learned,
        access={SALES.id: WEST_ONLY},
        filters=[ColumnFilter("amount", start="1"), ColumnFilter("note", values=("x",))],
    )
    assert made.inputs[0].columns == ("note",)
    assert [f.column for f in made.inputs[0].filters] == ["note"]
    assert made.ignored_filters == ("amount",)  # hidden on the only dataset that has it


def test_the_cache_key_holds_the_access_only_when_it_is_partial() -> None:
    base = plan().cache_key
    assert plan(access={SALES.id: FULL_ACCESS}).cache_key == base
    west = plan(access={SALES.id: WEST_ONLY}).cache_key
    assert west != base
    assert plan(access={SALES.id: access(WEST_ONLY.row_condition, ("amount",))}).cache_key == west
    assert plan(access={SALES.id: access(WEST_ONLY.row_condition)}).cache_key not in {base, west}
    assert plan(access={SALES.id: access(())}).cache_key not in {base, west}
