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
