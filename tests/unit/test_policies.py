"""How a reader's dataset policies resolve into what they see (domain rule, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import DatasetAccessDefault
from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.policies import (
    Attributes,
    DatasetPolicyRecord,
    EffectiveAccess,
    PolicyRowFilter,
    check_attributes,
    check_hidden_columns,
    check_row_filters,
    resolve_access,
)

OWNER, READER = "usr_owner", "usr_reader"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER, GROUP = ShareTargetType.USER, ShareTargetType.GROUP


def policy(
    target_type: ShareTargetType,
    target_id: str,
    filters: Sequence[PolicyRowFilter] = (),
    hidden: Sequence[str] = (),
) -> DatasetPolicyRecord:
    return DatasetPolicyRecord(
        id=f"pol_{target_id}",
        dataset_id="ds_1",
        target_type=target_type,
        target_id=target_id,
        row_filters=tuple(filters),
        hidden_columns=tuple(hidden),
        created_at=NOW,
        updated_at=NOW,
    )


def values(column: str, *allowed: str) -> PolicyRowFilter:
    return PolicyRowFilter(column, values=allowed)


def attribute(column: str, name: str) -> PolicyRowFilter:
    return PolicyRowFilter(column, user_attribute=name)


def resolve(
    policies: Sequence[DatasetPolicyRecord],
    *,
    reader: str = READER,
    groups: Sequence[str] = (),
    attributes: Attributes | None = None,
    default: DatasetAccessDefault = DatasetAccessDefault.FULL,
) -> EffectiveAccess:
    return resolve_access(
        owner_id=OWNER,
        default_access=default,
        policies=policies,
        reader_id=reader,
        reader_group_ids=groups,
        reader_attributes=attributes or {},
    )


def test_the_owner_sees_everything_whatever_the_policies() -> None:
    policies = [policy(USER, OWNER, [values("region", "west")], ["amount"])]
    access = resolve(policies, reader=OWNER, default=DatasetAccessDefault.NONE)
    assert access.full and access.any_rows
    assert access.policies == () and access.hidden_columns == ()
    assert access.row_condition is None and access.readable_condition is None


def test_a_user_policy_applies_alone() -> None:
    mine = policy(USER, READER, [values("region", "west")], ["amount"])
    access = resolve([mine, policy(USER, "usr_other", hidden=["region"])])
    assert access.policies == (mine,)
    assert access.row_condition == ((("region", ("west",)),),)
    assert access.hidden_columns == ("amount",)
    assert access.readable_condition == "region in (west)"
    assert not access.full and access.any_rows


def test_a_user_policy_wins_over_the_readers_group_policies() -> None:
    mine = policy(USER, READER, [values("region", "west")])
    group = policy(GROUP, "grp_a", [values("region", "east")], ["amount"])
    access = resolve([group, mine], groups=["grp_a"])
    assert access.policies == (mine,)
    assert access.row_condition == ((("region", ("west",)),),)
    assert access.hidden_columns == ()


def test_one_group_policy() -> None:
    group = policy(GROUP, "grp_a", [values("region", "east", "west")], ["amount"])
    access = resolve([group, policy(GROUP, "grp_other", hidden=["region"])], groups=["grp_a"])
    assert access.policies == (group,)
    assert access.row_condition == ((("region", ("east", "west")),),)
    assert access.hidden_columns == ("amount",)
    assert access.readable_condition == "region in (east, west)"


def test_two_groups_union_their_rows_and_intersect_their_hidden_columns() -> None:
    a = policy(GROUP, "grp_a", [values("region", "west")], ["amount", "cost"])
    b = policy(GROUP, "grp_b", [values("country", "fr")], ["cost", "margin"])
    access = resolve([a, b], groups=["grp_b", "grp_a"])
    assert access.policies == (a, b)
    assert access.row_condition == ((("country", ("fr",)),), (("region", ("west",)),))
    assert access.hidden_columns == ("cost",)
    assert access.readable_condition == "(region in (west)) OR (country in (fr))"


def test_a_group_without_row_filters_shows_every_row_to_its_members() -> None:
    a = policy(GROUP, "grp_a", [values("region", "west")], ["amount"])
    b = policy(GROUP, "grp_b", hidden=["amount"])
    access = resolve([a, b], groups=["grp_a", "grp_b"])
    assert access.row_condition is None and access.readable_condition is None
    assert access.hidden_columns == ("amount",) and not access.full


def test_policies_of_groups_the_reader_is_not_in_do_not_apply() -> None:
    access = resolve([policy(GROUP, "grp_a", hidden=["amount"])], groups=["grp_b"])
    assert access.full and access.policies == ()


def test_no_policy_gets_the_default_full() -> None:
    access = resolve([], default=DatasetAccessDefault.FULL)
    assert access.full and access.any_rows and access.policies == ()


def test_no_policy_gets_the_default_none() -> None:
    access = resolve([policy(USER, "usr_other")], default=DatasetAccessDefault.NONE)
    assert not access.full and not access.any_rows
    assert access.row_condition == () and access.hidden_columns == ()
    assert access.readable_condition == "no rows"


def test_an_attribute_filter_takes_the_readers_attribute() -> None:
    mine = policy(USER, READER, [values("region", "west"), attribute("country", "country")])
    access = resolve([mine], attributes={"country": "fr"})
    assert access.row_condition == ((("country", ("fr",)), ("region", ("west",))),)
    assert access.readable_condition == "region in (west) AND country = user.country"


def test_a_list_attribute_matches_any_of_its_values() -> None:
    mine = policy(USER, READER, [attribute("country", "countries")])
    access = resolve([mine], attributes={"countries": ["it", "fr", "fr"]})
    assert access.row_condition == ((("country", ("fr", "it")),),)


def test_a_missing_attribute_matches_no_rows() -> None:
    mine = policy(USER, READER, [attribute("country", "country")], ["amount"])
    access = resolve([mine], attributes={"region": "west"})
    assert not access.any_rows and access.row_condition == ()
    assert access.hidden_columns == ("amount",)
    assert access.readable_condition == "country = user.country"


def test_an_empty_list_attribute_matches_no_rows() -> None:
    access = resolve([policy(USER, READER, [attribute("country", "c")])], attributes={"c": []})
    assert not access.any_rows


def test_a_missing_attribute_drops_only_its_own_group_policy() -> None:
    a = policy(GROUP, "grp_a", [attribute("country", "country")])
    b = policy(GROUP, "grp_b", [values("region", "west")])
    access = resolve([a, b], groups=["grp_a", "grp_b"])
    assert access.row_condition == ((("region", ("west",)),),)
    assert access.any_rows


def test_filters_on_one_column_intersect() -> None:
    mine = policy(USER, READER, [values("region", "west", "east"), attribute("region", "r")])
    assert resolve([mine], attributes={"r": ["east", "north"]}).row_condition == (
        (("region", ("east",)),),
    )
    assert not resolve([mine], attributes={"r": "north"}).any_rows


def test_an_empty_values_list_matches_no_rows() -> None:
    assert not resolve([policy(USER, READER, [values("region")])]).any_rows


def test_the_canonical_form_is_the_same_for_the_same_access() -> None:
    """Readers who see the same share a key, however the policies were written."""
    a = resolve(
        [policy(USER, READER, [values("region", "west", "east"), values("country", "fr")])],
        attributes={},
    )
    b = resolve(
        [
            policy(
                USER,
                "usr_b",
                [values("country", "fr", "fr"), attribute("region", "regions")],
            )
        ],
        reader="usr_b",
        attributes={"regions": ["west", "east"]},
    )
    assert a.canonical() == b.canonical() and hash(a.canonical()) == hash(b.canonical())
    assert a.fingerprint() == b.fingerprint()
    other = resolve([policy(USER, READER, [values("region", "west")])])
    assert other.fingerprint() != a.fingerprint()
    assert resolve([]).fingerprint() != resolve([], default=DatasetAccessDefault.NONE).fingerprint()


def test_group_order_does_not_change_the_result() -> None:
    a = policy(GROUP, "grp_a", [values("region", "west")], ["x", "y"])
    b = policy(GROUP, "grp_b", [values("region", "east")], ["y"])
    one = resolve([a, b], groups=["grp_a", "grp_b"])
    two = resolve([b, a], groups=["grp_b", "grp_a"])
    assert one == two


def test_row_filters_must_name_a_column_and_exactly_one_source() -> None:
    columns = {"region", "country"}
    with pytest.raises(BadUserInput) as unknown:
        check_row_filters([values("region", "w"), values("nope", "x")], columns)
    assert unknown.value.field == "rowFilters[1].column"
    with pytest.raises(BadUserInput) as both:
        check_row_filters([PolicyRowFilter("region", values=("w",), user_attribute="r")], columns)
    assert both.value.field == "rowFilters[0]"
    with pytest.raises(BadUserInput) as neither:
        check_row_filters([PolicyRowFilter("region")], columns)
    assert neither.value.field == "rowFilters[0]"
    assert check_row_filters([attribute("country", "c")], columns) == (attribute("country", "c"),)


def test_hidden_columns_must_exist() -> None:
    with pytest.raises(BadUserInput) as unknown:
        check_hidden_columns(["region", "nope"], {"region"})
    assert unknown.value.field == "hiddenColumns[1]"
    assert check_hidden_columns(["region", "region"], {"region"}) == ("region",)


@pytest.mark.parametrize(
    "value",
    [
        "text",
        ["a"],
        {"n": 1},
        {"n": ["a", 2]},
        {"n": {"x": "y"}},
        {"": "x"},
        {f"k{i}": "v" for i in range(51)},
        {"n": ["v"] * 101},
        {"n": "v" * 1001},
    ],
)
def test_attributes_are_bounded_strings_or_lists_of_strings(value: object) -> None:
    with pytest.raises(BadUserInput) as refused:
        check_attributes(value)
    assert refused.value.field is not None and refused.value.field.startswith("attributes")


def test_attributes_are_kept_as_given() -> None:
    assert check_attributes({"country": "fr", "regions": ["west", "east"], "none": []}) == {
        "country": "fr",
        "regions": ["west", "east"],
        "none": [],
    }
