from __future__ import annotations

import time

from tilegraph.domain.ids import new_id, prefix_of, type_name_of
from tilegraph.domain.passwords import password_problems
from tilegraph.domain.permissions import PermissionLevel, highest


def test_password_policy() -> None:
    assert password_problems("Good-passw0rd") == []
    assert password_problems("Aa1!aaaa") == []
    assert "must be at least 8 characters" in password_problems("Aa1!aaa")
    assert password_problems("aaaaaaa1!") == ["must contain an upper-case letter"]
    assert password_problems("AAAAAAA1!") == ["must contain a lower-case letter"]
    assert password_problems("Aaaaaaaa!") == ["must contain a digit"]
    assert password_problems("Aaaaaaaa1") == ["must contain a symbol"]
    assert password_problems("Aa1!" + "é" * 35) == ["must be at most 72 bytes in UTF-8"]
    assert password_problems(" Good-passw0rd") == ["must not start or end with blanks"]
    assert password_problems("Good-passw0rd\n") == ["must not start or end with blanks"]
    for invisible in "\u200b\u200c\u200d\u2060\ufeff":
        assert password_problems(f"Good{invisible}passw0rd") == [
            "must contain a symbol",
            "must not contain invisible (zero-width) characters",
        ]


def test_ids_are_prefixed_unique_and_time_ordered() -> None:
    first = new_id("usr")
    time.sleep(0.002)
    second = new_id("usr")
    assert first.startswith("usr_") and len(first) == 4 + 26
    assert first < second
    assert len({new_id("grp") for _ in range(1000)}) == 1000
    assert prefix_of("dash_abc") == "dash" and type_name_of("dash_abc") == "Dashboard"
    assert prefix_of("nope") is None and prefix_of("xyz_abc") is None and prefix_of("usr_") is None


def test_permission_levels_order_and_combine() -> None:
    assert PermissionLevel.OWNER.allows(PermissionLevel.EDITOR)
    assert not PermissionLevel.VIEWER.allows(PermissionLevel.EDITOR)
    assert highest([None, PermissionLevel.VIEWER, PermissionLevel.EDITOR]) is PermissionLevel.EDITOR
    assert highest([None, None]) is None


def test_a_card_is_lent_only_where_its_owner_put_it() -> None:
    from tilegraph.domain.dashboards import Layout, LayoutItem, card_lent

    def lent(dashboard_owner: str, placers: set[str | None], level: PermissionLevel | None) -> bool:
        return card_lent(
            card_owner="ann",
            dashboard_owner=dashboard_owner,
            placers=placers,
            card_owner_level=level,
        )

    assert lent("ann", {"bob"}, PermissionLevel.OWNER)  # her own dashboard
    assert lent("bob", {"ann"}, PermissionLevel.EDITOR)  # she placed it, still an editor
    assert not lent("bob", {"ann"}, PermissionLevel.VIEWER)  # demoted since
    assert not lent("bob", {"ann"}, None)  # her share was revoked
    assert not lent("bob", {"bob"}, PermissionLevel.EDITOR)  # bob's copy, shared back to her
    assert not lent("bob", {None}, PermissionLevel.EDITOR)  # placed before anyone was recorded

    kept = Layout(items=(LayoutItem("card_a", 0, 0, 6, 2, "ann"),))
    edited = Layout(items=(LayoutItem("card_a", 6, 0, 6, 2), LayoutItem("card_b", 0, 2, 6, 2)))
    saved = edited.placed_by("bob", kept)
    assert [i.added_by for i in saved.items] == ["ann", "bob"]
    assert saved.placers_of("card_a") == {"ann"}
    assert {i.added_by for i in kept.placed_by("bob").items} == {"bob"}  # a copy is bob's
    assert LayoutItem.from_item(saved.items[1].to_item()) == saved.items[1]
