"""The workspace directory's rules: keys made from names, files that are the same bytes for
the same workspace, and files read back into the workspace they were written from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.validation import check_workspace_key
from tilegraph.local.workspace_files import (
    CardSpec,
    DashboardSpec,
    FilterSpec,
    FilterViewSpec,
    Keyed,
    LayoutItemSpec,
    TransformSpec,
    Workspace,
    WorkspaceFileError,
    assign_keys,
    changed_fields,
    read_workspace,
    render_workspace,
    slugify,
    write_workspace,
)


def _workspace() -> Workspace:
    card = CardSpec(
        key="revenue",
        name="Revenue",
        type="CODE",
        code="def render(dataset, filters, params):\n    return 'x'\n",
        datasets=("Sales", "Regions"),
        description="Two lines\nof text",
        params={"z": 1, "a": {"y": [3, 1], "b": None}},
    )
    note = CardSpec(key="note", name="Note", type="TEXT", code="<b>hi</b>", datasets=())
    transform = TransformSpec(
        key="clean",
        name="Clean",
        code="result = df_0",
        inputs=("Sales",),
        schedule_cron="0 * * * *",
        schedule_enabled=True,
        params={"k": 2.5},
    )
    dashboard = DashboardSpec(
        key="sales",
        name="Sales",
        columns=12,
        row_height=80,
        items=(LayoutItemSpec("revenue", 0, 0, 6, 4), LayoutItemSpec("note", 6, 0, 6, 2)),
        filters=(FilterSpec("f_region", "CATEGORY", "region", "Region", True, ("N", "S")),),
        views=(
            FilterViewSpec("West", {"f_region": ["W"]}, True, False),
            FilterViewSpec("East", {"f_region": ["E"]}, False, True),
        ),
    )
    return Workspace(
        cards={"revenue": card, "note": note},
        transforms={"clean": transform},
        dashboards={"sales": dashboard},
    )


def test_names_become_keys_and_keys_follow_the_rule() -> None:
    assert slugify("Revenue by Region!", "card") == "revenue-by-region"
    assert slugify("Ünïcode Café", "card") == "unicode-cafe"
    assert slugify("snake_case name", "card") == "snake_case-name"
    assert slugify("!!!", "card") == "card"
    assert slugify("日本語", "dashboard") == "dashboard"
    long = slugify("word " * 60, "card")
    assert len(long) <= 90 and not long.endswith("-")
    for good in ("a", "sales-2", "x_y", "0" * 100):
        assert check_workspace_key(good) == good
    for bad in ("", "Sales", "a b", "a/b", "é", "0" * 101):
        with pytest.raises(BadUserInput) as refused:
            check_workspace_key(bad)
        assert refused.value.field == "workspaceKey"


def test_keys_are_kept_and_new_ones_deduplicated_oldest_first() -> None:
    t = [datetime(2025, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
    objects = [
        Keyed("c3", "Sales", t[2], None),
        Keyed("c1", "Sales", t[0], None),
        Keyed("c0", "Other", t[3], "sales"),  # already holds the plain key
        Keyed("c2b", "Sales", t[1], None),
        Keyed("c2a", "Sales", t[1], None),  # same time: the smaller id first
    ]
    assert assign_keys(objects, "card") == {
        "c0": "sales",
        "c1": "sales-2",
        "c2a": "sales-3",
        "c2b": "sales-4",
        "c3": "sales-5",
    }
    assert assign_keys(list(reversed(objects)), "card") == assign_keys(objects, "card")


def test_files_are_deterministic_block_yaml_without_ids(tmp_path: Path) -> None:
    files = render_workspace(_workspace())
    assert sorted(files) == [
        "cards/note.html",
        "cards/note.yaml",
        "cards/revenue.py",
        "cards/revenue.yaml",
        "dashboards/sales.yaml",
        "transforms/clean.py",
        "transforms/clean.yaml",
    ]
    assert files["cards/revenue.yaml"].decode() == (
        "key: revenue\n"
        "name: Revenue\n"
        "description: |-\n"
        "  Two lines\n"
        "  of text\n"
        "type: CODE\n"
        "datasets:\n"
        "- Sales\n"
        "- Regions\n"
        "params:\n"
        "  a:\n"
        "    b: null\n"
        "    y:\n"
        "    - 3\n"
        "    - 1\n"
        "  z: 1\n"
    )
    dashboard = files["dashboards/sales.yaml"].decode()
    assert dashboard.index("name: East") < dashboard.index("name: West")  # views by name
    assert "{" not in dashboard and dashboard.endswith("\n")
    assert files["cards/note.html"] == b"<b>hi</b>"  # the code exactly as stored
    # The same workspace, its dicts in another order: the same bytes.
    shuffled = _workspace()
    card = shuffled.cards["revenue"]
    reordered = CardSpec(**{**card.__dict__, "params": {"a": {"b": None, "y": [3, 1]}, "z": 1}})
    assert (
        render_workspace(
            Workspace(
                {**shuffled.cards, "revenue": reordered}, shuffled.transforms, shuffled.dashboards
            )
        )
        == files
    )


def test_written_files_read_back_into_the_same_workspace(tmp_path: Path) -> None:
    workspace = _workspace()
    written = write_workspace(tmp_path, workspace)
    assert len(written) == 7
    assert read_workspace(tmp_path) == Workspace(
        workspace.cards,
        workspace.transforms,
        {
            "sales": DashboardSpec(
                **{
                    **workspace.dashboards["sales"].__dict__,
                    "views": tuple(
                        sorted(workspace.dashboards["sales"].views, key=lambda v: v.name)
                    ),
                }
            )
        },
    )
    assert write_workspace(tmp_path, workspace) == []  # nothing to rewrite
    # A card that is gone loses its files; other files are left alone.
    (tmp_path / "README.md").write_text("notes")
    smaller = Workspace({"revenue": workspace.cards["revenue"]}, {}, {})
    assert sorted(write_workspace(tmp_path, smaller)) == [
        "cards/note.html",
        "cards/note.yaml",
        "dashboards/sales.yaml",
        "transforms/clean.py",
        "transforms/clean.yaml",
    ]
    assert (tmp_path / "README.md").exists()
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["revenue.py", "revenue.yaml"]


def test_a_directory_without_workspace_folders_is_refused(tmp_path: Path) -> None:
    """A mistyped path is not an empty workspace (which --prune would empty the server to)."""
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(WorkspaceFileError, match="not a workspace directory"):
        read_workspace(tmp_path)
    with pytest.raises(WorkspaceFileError, match="not a directory"):
        read_workspace(tmp_path / "missing")
    assert write_workspace(tmp_path / "empty", Workspace()) == []
    assert read_workspace(tmp_path / "empty") == Workspace()


def test_changed_fields_name_what_differs() -> None:
    card = _workspace().cards["revenue"]
    edited = CardSpec(**{**card.__dict__, "code": "new", "params": None})
    assert changed_fields(card, edited) == ["code", "params"]
    assert changed_fields(card, card) == []


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("cards/a.yaml", "key: b\nname: A\ntype: CODE\n", "must match the file name"),
        ("cards/a.yaml", "key: a\nname: A\ntype: CODE\ncolour: red\n", "unknown field(s) colour"),
        ("cards/a.yaml", "key: a\ntype: CODE\n", "missing field(s) name"),
        ("cards/a.yaml", "key: a\nname: A\ntype: CHART\n", "`type` must be one of"),
        ("cards/a.yaml", "key: a\nname: A\ntype: CODE\n", "missing (the code of a)"),
        ("cards/A.yaml", "key: A\nname: A\ntype: CODE\n", "lower-case letters"),
        ("cards/a.yaml", "key: [a\n", "not valid YAML"),
        (
            "dashboards/d.yaml",
            "key: d\nname: D\nlayout:\n  items:\n  - {card: ghost, x: 0, y: 0, w: 1, h: 1}\n",
            "shows card 'ghost', which has no file",
        ),
        (
            "dashboards/d.yaml",
            "key: d\nname: D\nfilterViews:\n- name: V\n- name: V\n",
            "two filter views have the same name",
        ),
        (
            "transforms/t.yaml",
            "key: t\nname: T\ninputs: [S]\nschedule: {cron: '* * * * *', enabled: 'yes'}\n",
            "`enabled` must be true or false",
        ),
    ],
)
def test_a_bad_file_is_named_with_the_reason(
    tmp_path: Path, path: str, content: str, message: str
) -> None:
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(content)
    with pytest.raises(WorkspaceFileError) as refused:
        read_workspace(tmp_path)
    assert message in str(refused.value)
    assert str(target.parent / target.stem) in str(refused.value)  # the file (or its code's)
