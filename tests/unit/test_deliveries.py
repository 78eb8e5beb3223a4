"""The pure rules of deliveries: alert conditions, which cards a run runs and sends, a filter
view as column filters, the retry waits, and input checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tilegraph.domain.dashboards import FilterDefinition
from tilegraph.domain.deliveries import (
    AlertCondition,
    ComparisonOperator,
    DeliveryChannel,
    DeliveryContent,
    DeliveryRecord,
    attachment_names,
    check_condition,
    check_contents,
    check_delivery_cards,
    delivery_failed,
    file_stem,
    retry_delay,
    view_filters,
)
from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.executions import ExecutionErrorCode
from tilegraph.domain.filters import ColumnFilter, FilterType

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("operator", "value", "holds"),
    [
        ("GT", 11, True),
        ("GT", 10, False),
        ("GTE", 10, True),
        ("GTE", 9.99, False),
        ("LT", 9, True),
        ("LT", 10, False),
        ("LTE", 10, True),
        ("LTE", 10.01, False),
        ("EQ", 10, True),
        ("EQ", 10.5, False),
        ("NE", 10.5, True),
        ("NE", 10, False),
    ],
)
def test_a_condition_compares_the_metric_with_the_threshold(
    operator: str, value: float, holds: bool
) -> None:
    condition = AlertCondition("card_1", "total", ComparisonOperator(operator), 10.0)
    assert condition.holds(value) is holds
    assert AlertCondition.from_item(condition.to_item()) == condition


def delivery(card_ids: tuple[str, ...] = (), condition_card: str | None = None) -> DeliveryRecord:
    condition = (
        AlertCondition(condition_card, "m", ComparisonOperator.GT, 0) if condition_card else None
    )
    return DeliveryRecord(
        id="dl_1",
        owner_id="usr_1",
        dashboard_id="dash_1",
        name="d",
        card_ids=card_ids,
        schedule_cron="* * * * *",
        enabled=True,
        channel=DeliveryChannel.EMAIL,
        recipients=("a@example.com",),
        contents=(DeliveryContent.SUMMARY,),
        created_at=NOW,
        updated_at=NOW,
        condition=condition,
    )


def test_a_run_runs_the_chosen_cards_and_the_conditions_in_dashboard_order() -> None:
    on_dashboard = ["c1", "c2", "c3"]
    assert delivery().cards_to_run(on_dashboard) == ["c1", "c2", "c3"]
    chosen = delivery(("c3", "c1"))
    assert chosen.cards_to_run(on_dashboard) == ["c1", "c3"]
    alert = delivery(("c1",), condition_card="c2")
    assert alert.cards_to_run(on_dashboard) == ["c1", "c2"]
    assert alert.sends_card("c1") and not alert.sends_card("c2")  # run for the check only
    assert delivery(condition_card="c2").sends_card("c2")  # all cards: it is sent too
    assert delivery(("gone",)).cards_to_run(on_dashboard) == []


def test_a_filter_view_becomes_the_runs_column_filters() -> None:
    definitions = [
        FilterDefinition("f1", FilterType.CATEGORY, "region", "Region"),
        FilterDefinition("f2", FilterType.NUMBER_RANGE, "amount", "Amount"),
        FilterDefinition("f3", FilterType.DATE_RANGE, "day", "Day"),
        FilterDefinition("f4", FilterType.CATEGORY, "kind", "Kind"),
    ]
    state = {"f1": ["a", "b"], "f2": {"start": "1", "end": None}, "f3": {}, "f4": "x"}
    assert view_filters(definitions, state) == [
        ColumnFilter("region", values=("a", "b")),
        ColumnFilter("amount", start="1", end=None),
        ColumnFilter("kind", values=("x",)),
    ]
    assert view_filters(definitions, {"f1": [], "f4": ""}) == []


def test_retries_wait_twice_as_long_each_time() -> None:
    assert [retry_delay(n, 2.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    error = delivery_failed(3, "HTTP 503: busy")
    assert error.code is ExecutionErrorCode.DELIVERY_FAILED
    assert "3 tries" in error.message and "HTTP 503: busy" in error.message


def test_inputs_are_checked() -> None:
    assert check_contents([DeliveryContent.CSV, DeliveryContent.CSV]) == (DeliveryContent.CSV,)
    with pytest.raises(BadUserInput) as empty:
        check_contents([])
    assert empty.value.field == "contents"
    assert check_delivery_cards(["c2", "c2"], ["c1", "c2"]) == ("c2",)
    with pytest.raises(BadUserInput) as elsewhere:
        check_delivery_cards(["c9"], ["c1"])
    assert elsewhere.value.field == "cardIds"
    condition = AlertCondition("c1", " total ", ComparisonOperator.GT, 1.0)
    assert check_condition(condition, ["c1"]).metric == "total"
    for bad, field in [
        (AlertCondition("c9", "total", ComparisonOperator.GT, 1.0), "condition.cardId"),
        (AlertCondition("c1", " ", ComparisonOperator.GT, 1.0), "condition.metric"),
        (AlertCondition("c1", "t", ComparisonOperator.GT, float("nan")), "condition.threshold"),
    ]:
        with pytest.raises(BadUserInput) as refused:
            check_condition(bad, ["c1"])
        assert refused.value.field == field


def test_attachment_names_are_safe_and_never_twice() -> None:
    names = ["Sales", "sales", "Sales", "Costs / EU", "", "Sales-2"]
    assert attachment_names(names, "csv") == [
        "Sales.csv",
        "sales-2.csv",
        "Sales-3.csv",
        "Costs-EU.csv",
        "card.csv",
        "Sales-2-2.csv",
    ]
    assert file_stem("../../etc/passwd") == "etc-passwd"
    assert len(file_stem("x" * 200)) == 80
