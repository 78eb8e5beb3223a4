from __future__ import annotations

from dataclasses import dataclass

import pytest

from tilegraph.domain.errors import BadUserInput, NotFound
from tilegraph.domain.ownership import all_owned, mine, owned
from tilegraph.domain.users import Principal, Role

ME = Principal("usr_me", Role.USER, "j", 0)


@dataclass
class Thing:
    id: str
    owner_id: str


def test_owned_hides_what_others_own() -> None:
    mine = Thing("t1", "usr_me")
    assert owned(mine, ME, "thing") is mine
    for record in (None, Thing("t2", "usr_other")):
        with pytest.raises(NotFound, match="No such thing") as raised:
            owned(record, ME, "thing")
        assert raised.value.field == "id"


def test_mine_is_none_for_what_others_own() -> None:
    thing = Thing("t1", "usr_me")
    assert mine(thing, ME) is thing
    assert mine(Thing("t2", "usr_other"), ME) is None
    assert mine(None, ME) is None


def test_all_owned_keeps_order_and_refuses_duplicates_and_strangers() -> None:
    found = {"a": Thing("a", "usr_me"), "b": Thing("b", "usr_me"), "c": Thing("c", "usr_x")}
    assert [t.id for t in all_owned(found, ["b", "a"], ME, "dataset", field="ids")] == ["b", "a"]
    with pytest.raises(BadUserInput):
        all_owned(found, ["a", "a"], ME, "dataset", field="ids")
    with pytest.raises(NotFound, match="dataset: c"):
        all_owned(found, ["a", "c"], ME, "dataset", field="ids")
    with pytest.raises(NotFound, match="dataset: zz"):
        all_owned(found, ["zz"], ME, "dataset", field="ids")
